"""Resource requirements become the ``dagster-k8s/config`` op tag that dagster-k8s renders.

The tag is parsed and rendered by dagster-k8s itself (``get_user_defined_k8s_config`` and
``construct_dagster_k8s_job``, what ``k8s_job_executor`` does for each step), and the tests
assert on the Kubernetes ``V1Job`` that comes out: with the node selector a translator gives the
GPU type, and merged with the step's own ``dagster-k8s/config`` tag.
"""

from __future__ import annotations

import json
import sys
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

from flowyml import (
    GPUConfig,
    NodeAffinity,
    Pipeline,
    PipelineDefinitionError,
    ResourceRequirements,
    step,
)
from flowyml_dagster import FlowymlTranslator, build_definitions
from flowyml_dagster.constants import GPU_POOL, K8S_CONFIG_TAG

T4 = ResourceRequirements(cpu="4", memory="8Gi", gpu=GPUConfig(gpu_type="nvidia-tesla-t4"))
TRAIN_TAG = "step 'train': tags['dagster-k8s/config']: "
NON_ROOT = {
    "run_as_non_root": True,
    "allow_privilege_escalation": False,
    "read_only_root_filesystem": True,
}


class GKETranslator(FlowymlTranslator):
    """GKE labels GPU nodes with the accelerator, spelt as flowyml's gpu_type already is."""

    def get_node_selector(self, resources: ResourceRequirements) -> dict[str, str]:
        if resources.gpu is None or resources.gpu.gpu_type == "generic":
            return {}
        return {"cloud.google.com/gke-accelerator": resources.gpu.gpu_type}


def rendered_job(op_name: str, job: dg.JobDefinition | None = None) -> V1Job:
    """The Kubernetes Job that dagster-k8s would launch for ``op_name``'s step."""
    op = (job or pipelines.resourced_job()).graph.node_named(op_name).definition
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


def job_of(*steps: Any, translator: FlowymlTranslator | None = None) -> dg.JobDefinition:
    defs = build_definitions([Pipeline("k8s", steps=list(steps))], translator=translator)
    return defs.resolve_job_def("k8s")


def gpu_step(resources: ResourceRequirements = T4, **tags: Any) -> Any:
    @step(outputs=["model"], resources=resources, tags=tags, register=False)
    def train() -> str:
        return "model"

    return train


# --- the GPU type's node selector -------------------------------------------------------------


def test_the_gpu_type_selects_no_nodes_by_default() -> None:
    pod = rendered_job("train", job_of(gpu_step())).spec.template.spec

    assert pod.node_selector is None


def test_a_translator_can_select_gke_nodes_with_the_gpu_type() -> None:
    job = job_of(gpu_step(), translator=GKETranslator())

    pod = rendered_job("train", job).spec.template.spec

    assert pod.node_selector == {"cloud.google.com/gke-accelerator": "nvidia-tesla-t4"}


def test_the_translators_node_selector_joins_the_required_node_labels() -> None:
    resources = T4.model_copy(update={"node_affinity": NodeAffinity(required={"pool": "ml"})})
    job = job_of(gpu_step(resources), translator=GKETranslator())

    pod = rendered_job("train", job).spec.template.spec

    assert pod.node_selector == {
        "cloud.google.com/gke-accelerator": "nvidia-tesla-t4",
        "pool": "ml",
    }


def test_a_node_selector_contradicting_the_required_node_labels_fails_the_build() -> None:
    with pytest.raises(PipelineDefinitionError) as raised:
        build_definitions([pipelines.RESOURCED], translator=GKETranslator())

    assert "step 'gpu_big': resources:" in str(raised.value)
    assert "cloud.google.com/gke-accelerator" in str(raised.value)


def test_a_node_selector_that_is_no_kubernetes_label_fails_the_build() -> None:
    class Spaced(FlowymlTranslator):
        def get_node_selector(self, resources: ResourceRequirements) -> dict[str, str]:
            return {"gpu": "Tesla T4"}

    with pytest.raises(PipelineDefinitionError, match="step 'train': resources: 'Tesla T4'"):
        job_of(gpu_step(), translator=Spaced())


# --- the step's own dagster-k8s/config tag ------------------------------------------------------


def own_config(config: dict[str, Any] | str) -> dict[str, Any]:
    return {"dagster-k8s/config": config}


def test_a_steps_own_security_context_is_merged_with_its_resources() -> None:
    train = gpu_step(**own_config({"container_config": {"security_context": NON_ROOT}}))

    (container,) = rendered_job("train", job_of(train)).spec.template.spec.containers

    assert {key: getattr(container.security_context, key) for key in NON_ROOT} == NON_ROOT
    assert container.resources.limits == {"memory": "8Gi", "nvidia.com/gpu": "1"}


def test_a_steps_own_config_may_be_json_text() -> None:
    train = gpu_step(**own_config(json.dumps({"job_metadata": {"labels": {"team": "ml"}}})))

    job = rendered_job("train", job_of(train))

    assert job.metadata.labels["team"] == "ml"
    assert job.spec.template.spec.containers[0].resources.requests["nvidia.com/gpu"] == "1"


def test_a_steps_own_config_may_use_kubernetes_camel_case() -> None:
    train = gpu_step(
        **own_config({"container_config": {"securityContext": {"runAsNonRoot": True}}})
    )

    (container,) = rendered_job("train", job_of(train)).spec.template.spec.containers

    assert container.security_context.run_as_non_root is True
    assert container.resources.requests["nvidia.com/gpu"] == "1"


def test_the_tags_value_wins_for_a_cpu_or_memory_leaf_resources_also_set() -> None:
    bigger = {"container_config": {"resources": {"limits": {"memory": "12Gi"}}}}

    (container,) = rendered_job(
        "train", job_of(gpu_step(**own_config(bigger)))
    ).spec.template.spec.containers

    assert container.resources.limits == {"memory": "12Gi", "nvidia.com/gpu": "1"}
    assert container.resources.requests["memory"] == "8Gi"


def test_the_tags_tolerations_are_added_to_the_gpu_toleration() -> None:
    spot = {"key": "spot", "operator": "Exists", "effect": "NoSchedule"}
    train = gpu_step(**own_config({"pod_spec_config": {"tolerations": [spot]}}))

    tolerations = rendered_job("train", job_of(train)).spec.template.spec.tolerations

    assert [t.key for t in tolerations] == ["nvidia.com/gpu", "spot"]


def test_a_tag_changing_the_gpu_limit_fails_the_build_naming_step_and_field() -> None:
    no_gpu = {"container_config": {"resources": {"limits": {"nvidia.com/gpu": "0"}}}}

    with pytest.raises(PipelineDefinitionError) as raised:
        job_of(gpu_step(**own_config(no_gpu)))

    assert str(raised.value).startswith(TRAIN_TAG)
    assert "container_config.resources.limits.nvidia.com/gpu is '0'" in str(raised.value)


def test_a_tag_giving_the_gpu_limit_as_the_same_number_builds_with_resources_spelling() -> None:
    same = {"container_config": {"resources": {"limits": {"nvidia.com/gpu": 1}}}}

    job = rendered_job("train", job_of(gpu_step(**own_config(same))))

    assert container_resources(job)["limits"]["nvidia.com/gpu"] == "1"


def test_a_tag_adding_another_vendors_gpu_fails_the_build_naming_step_and_field() -> None:
    amd_too = {"container_config": {"resources": {"limits": {"amd.com/gpu": "1"}}}}

    with pytest.raises(PipelineDefinitionError) as raised:
        job_of(gpu_step(**own_config(amd_too)))

    assert str(raised.value).startswith(TRAIN_TAG)
    assert "container_config.resources.limits.amd.com/gpu is another GPU" in str(raised.value)


@pytest.mark.parametrize(
    ("config", "field"),
    [
        (
            {"container_config": {"resources": {"limits": None}}},
            "container_config.resources.limits",
        ),
        ({"pod_spec_config": {"node_selector": None}}, "pod_spec_config.node_selector"),
    ],
    ids=["limits", "node_selector"],
)
def test_a_null_section_in_a_tag_fails_the_build_naming_step_and_field(
    config: dict[str, Any], field: str
) -> None:
    with pytest.raises(PipelineDefinitionError) as raised:
        job_of(gpu_step(**own_config(config)))

    assert str(raised.value).startswith(TRAIN_TAG)
    assert f"{field} is null" in str(raised.value)


def test_a_tag_moving_the_pod_off_the_gpu_type_fails_the_build() -> None:
    elsewhere = {"pod_spec_config": {"node_selector": {"cloud.google.com/gke-accelerator": "none"}}}

    with pytest.raises(PipelineDefinitionError) as raised:
        job_of(gpu_step(**own_config(elsewhere)), translator=GKETranslator())

    assert "pod_spec_config.node_selector.cloud.google.com/gke-accelerator" in str(raised.value)


def test_a_tag_that_is_not_json_fails_the_build_naming_the_step() -> None:
    with pytest.raises(PipelineDefinitionError) as raised:
        job_of(gpu_step(**own_config("{not json")))

    assert str(raised.value).startswith(TRAIN_TAG)


@pytest.mark.parametrize(
    "config",
    [
        {"pod_config": {}},
        {"container_config": {"security_context": {"run_as_nonroot": True}}},
    ],
    ids=["unknown-part", "kubernetes-key-typo"],
)
def test_a_tag_dagster_k8s_refuses_fails_the_build_naming_the_step(config: dict[str, Any]) -> None:
    with pytest.raises(PipelineDefinitionError) as raised:
        job_of(gpu_step(**own_config(config)))

    assert str(raised.value).startswith(TRAIN_TAG)


def test_a_tag_without_dagster_k8s_installed_fails_the_build_saying_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "dagster_k8s.job", None)  # import fails as if not installed
    train = gpu_step(**own_config({"job_metadata": {"labels": {"team": "ml"}}}))

    with pytest.raises(PipelineDefinitionError) as raised:
        job_of(train)

    assert str(raised.value).startswith(TRAIN_TAG)
    assert "pip install 'flowyml-dagster[k8s]'" in str(raised.value)


def test_a_step_without_resources_keeps_its_own_config() -> None:
    @step(
        outputs=["report"],
        tags=own_config({"job_metadata": {"labels": {"team": "ml"}}}),
        register=False,
    )
    def report() -> str:
        return "report"

    job = rendered_job("report", job_of(report))

    assert job.metadata.labels["team"] == "ml"


# --- execution groups ---------------------------------------------------------------------------


def grouped(first_config: dict[str, Any], second_config: dict[str, Any]) -> list[Any]:
    @step(
        outputs=["a"],
        execution_group="unit",
        resources=T4,
        tags=own_config(first_config),
        register=False,
    )
    def first() -> int:
        return 1

    @step(
        inputs=["a"],
        outputs=["b"],
        execution_group="unit",
        tags=own_config(second_config),
        register=False,
    )
    def second(a: int) -> int:
        return a

    return [first, second]


def test_the_steps_of_an_execution_group_bring_their_own_configs_together() -> None:
    steps = grouped(
        {"container_config": {"security_context": {"run_as_non_root": True}}},
        {"job_metadata": {"labels": {"team": "ml"}}},
    )

    job = rendered_job("unit", job_of(*steps))

    assert job.spec.template.spec.containers[0].security_context.run_as_non_root is True
    assert job.metadata.labels["team"] == "ml"


def test_two_grouped_steps_giving_one_leaf_two_values_fail_the_build_naming_both() -> None:
    steps = grouped(
        {"container_config": {"security_context": {"run_as_user": 1000}}},
        {"container_config": {"security_context": {"run_as_user": 2000}}},
    )

    with pytest.raises(PipelineDefinitionError) as raised:
        job_of(*steps)

    assert "steps 'first' and 'second'" in str(raised.value)
    assert "container_config.security_context.run_as_user to 1000 and 2000" in str(raised.value)


@pytest.mark.parametrize(
    ("first_item", "second_item", "field"),
    [
        (
            {"container_config": {"env": [{"name": "A", "value": "1"}]}},
            {"container_config": {"env": [{"name": "A", "value": "2"}]}},
            "container_config.env[name='A']",
        ),
        (
            {"pod_spec_config": {"volumes": [{"name": "data", "empty_dir": {}}]}},
            {"pod_spec_config": {"volumes": [{"name": "data", "secret": {"secret_name": "s"}}]}},
            "pod_spec_config.volumes[name='data']",
        ),
        (
            {"container_config": {"volume_mounts": [{"name": "a", "mount_path": "/data"}]}},
            {"container_config": {"volume_mounts": [{"name": "b", "mount_path": "/data"}]}},
            "container_config.volume_mounts[mount_path='/data']",
        ),
    ],
    ids=["env", "volumes", "volume_mounts"],
)
def test_two_grouped_steps_giving_one_named_item_two_contents_fail_the_build_naming_both(
    first_item: dict[str, Any], second_item: dict[str, Any], field: str
) -> None:
    with pytest.raises(PipelineDefinitionError) as raised:
        job_of(*grouped(first_item, second_item))

    assert "steps 'first' and 'second'" in str(raised.value)
    assert f"set {field} to " in str(raised.value)


def test_two_grouped_steps_giving_different_env_vars_bring_them_together() -> None:
    steps = grouped(
        {"container_config": {"env": [{"name": "A", "value": "1"}]}},
        {"container_config": {"env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]}},
    )

    env = rendered_job("unit", job_of(*steps)).spec.template.spec.containers[0].env

    assert [(e.name, e.value) for e in env if e.name in ("A", "B")] == [("A", "1"), ("B", "2")]
