"""Resource requirements become the ``dagster-k8s/config`` op tag that dagster-k8s renders.

The tag is parsed and rendered by dagster-k8s itself (``get_user_defined_k8s_config`` and
``construct_dagster_k8s_job``, what ``k8s_job_executor`` does for each step), and the tests
assert on the Kubernetes ``V1Job`` that comes out.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dagster as dg
import dagster_pipelines as pipelines
import pytest
from dagster_k8s.job import (
    USER_DEFINED_K8S_CONFIG_KEY,
    DagsterK8sJobConfig,
    construct_dagster_k8s_job,
    get_user_defined_k8s_config,
)
from kubernetes.client import V1Job
from run_support import execute, lines, run_config

from flowyml import Pipeline, step
from flowyml_dagster import build_definitions
from flowyml_dagster.constants import GPU_POOL, K8S_CONFIG_TAG


def rendered_job(op_name: str) -> V1Job:
    """The Kubernetes Job that dagster-k8s would launch for ``op_name``'s step."""
    op = pipelines.resourced_job().graph.node_named(op_name).definition
    return construct_dagster_k8s_job(
        DagsterK8sJobConfig(job_image="flowyml:test", dagster_home="/opt/dagster/home"),
        args=["dagster", "api", "execute_step"],
        job_name=f"dagster-step-{op_name.replace('_', '-')}",
        user_defined_k8s_config=get_user_defined_k8s_config(op.tags),
    )


def container_resources(job: V1Job) -> dict[str, Any]:
    (container,) = job.spec.template.spec.containers
    return {"requests": container.resources.requests, "limits": container.resources.limits}


def test_the_op_tag_is_the_key_dagster_k8s_reads() -> None:
    assert K8S_CONFIG_TAG == USER_DEFINED_K8S_CONFIG_KEY


def test_gpu_requirements_become_container_requests_and_limits() -> None:
    resources = container_resources(rendered_job("gpu_big"))

    assert resources == {
        "requests": {"cpu": "4", "memory": "16Gi", "nvidia.com/gpu": "2"},
        "limits": {"memory": "16Gi", "nvidia.com/gpu": "2"},
    }


def test_gpu_steps_tolerate_the_gpu_taint_and_the_users_tolerations() -> None:
    tolerations = rendered_job("gpu_big").spec.template.spec.tolerations

    rendered = [(t.key, t.operator, t.value, t.effect) for t in tolerations]

    assert sorted(rendered, key=str) == sorted(
        [
            ("nvidia.com/gpu", "Exists", None, "NoSchedule"),
            ("dedicated", "Equal", "ml", "NoSchedule"),
        ],
        key=str,
    )


def test_required_node_labels_become_the_pods_node_selector() -> None:
    pod = rendered_job("gpu_big").spec.template.spec

    assert pod.node_selector == pipelines.GPU_NODE_LABEL


def test_a_gpu_count_alone_requests_and_limits_one_nvidia_gpu() -> None:
    resources = container_resources(rendered_job("gpu_small"))

    assert resources == {"requests": {"nvidia.com/gpu": "1"}, "limits": {"nvidia.com/gpu": "1"}}


def test_a_cpu_step_gets_a_cpu_request_a_memory_limit_and_no_gpu_toleration() -> None:
    job = rendered_job("cpu_only")

    assert container_resources(job) == {
        "requests": {"cpu": "500m", "memory": "1Gi"},
        "limits": {"memory": "1Gi"},
    }
    assert not job.spec.template.spec.tolerations


def test_gpu_steps_are_in_the_gpu_pool_and_cpu_steps_in_none() -> None:
    job = pipelines.resourced_job()

    pools = {node.name: node.definition.pool for node in job.graph.nodes}

    assert pools == {"gpu_big": GPU_POOL, "gpu_small": GPU_POOL, "cpu_only": None}


@pytest.mark.timeout(300)
def test_gpu_steps_run_one_at_a_time_when_the_gpu_pool_has_one_slot(
    instance: dg.DagsterInstance, workdir: Path, cache_dir: Path
) -> None:
    instance.event_log_storage.set_concurrency_slots(GPU_POOL, 1)
    config = run_config(pipelines.resourced_job(), cache_dir=cache_dir, workdir=str(workdir))

    run = execute(pipelines.resourced_job, instance, config)

    assert run.succeeded
    intervals = sorted(
        (float(start), float(end))
        for _, start, end in map(str.split, lines(workdir / "gpu.intervals"))
    )
    assert len(intervals) == 2
    (_, first_end), (second_start, _) = intervals
    assert first_end <= second_start


def test_zero_gpus_in_a_resources_dict_is_a_cpu_step() -> None:
    @step(outputs=["no/gpu"], resources={"gpu": 0, "cpu": "1"}, register=False)
    def no_gpu() -> str:
        return "cpu"

    defs = build_definitions([Pipeline("zero_gpus", steps=[no_gpu])])
    op = defs.resolve_job_def("zero_gpus").graph.node_named("no_gpu").definition
    container = construct_dagster_k8s_job(
        DagsterK8sJobConfig(job_image="flowyml:test", dagster_home="/opt/dagster/home"),
        args=["dagster", "api", "execute_step"],
        job_name="dagster-step-no-gpu",
        user_defined_k8s_config=get_user_defined_k8s_config(op.tags),
    ).spec.template.spec.containers[0]

    assert container.resources.requests == {"cpu": "1"}
    assert not container.resources.limits
    assert op.pool is None
