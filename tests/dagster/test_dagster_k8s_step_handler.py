"""dagster-k8s's own step handler launches the example's GPU step: the Kubernetes Job it creates.

No cluster runs here. ``K8sStepHandler`` (what ``k8s_job_executor`` hands each step to) is given,
as dagster-k8s's own tests do, a batch API that keeps the Job instead of sending it; everything
else is real: the example ``training`` pipeline built with a GKE translator, a ``K8sRunLauncher``
instance, the run, the execution plan, the op's ``dagster-k8s/config`` tag and the step's command.
"""

from __future__ import annotations

import base64
import importlib
import sys
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from dagster._core.definitions.job_base import InMemoryJob
from dagster._core.execution.api import create_execution_plan
from dagster._core.execution.context.system import PlanData, PlanOrchestrationContext
from dagster._core.execution.context_creation_job import create_context_free_log_manager
from dagster._core.execution.retries import RetryMode
from dagster._core.executor.init import InitExecutorContext
from dagster._core.executor.step_delegating.step_handler.base import StepHandlerContext
from dagster._core.test_utils import create_run_for_test
from dagster._grpc.types import ExecuteStepArgs
from dagster._serdes import deserialize_value
from dagster_k8s import k8s_job_executor
from dagster_k8s.container_context import K8sContainerContext
from dagster_k8s.executor import K8sStepHandler
from kubernetes.client import V1Container, V1Job
from run_support import reconstructable

from flowyml import ResourceRequirements
from flowyml.core.step import get_step_registry
from flowyml_dagster import FlowymlTranslator, build_definitions

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
IMAGE = "registry.example.com/flowyml-digits:1.0"
NAMESPACE = "ml-jobs"
# A kubeconfig for a cluster nobody calls: dagster-k8s loads one before it builds any client.
KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters: [{name: none, cluster: {server: "https://127.0.0.1:6443"}}]
users: [{name: none, user: {token: none}}]
contexts: [{name: none, context: {cluster: none, user: none}}]
current-context: none
"""


class GKETranslator(FlowymlTranslator):
    """GKE labels GPU nodes with their accelerator, spelt as the example's ``gpu_type`` is."""

    def get_node_selector(self, resources: ResourceRequirements) -> dict[str, str]:
        if resources.gpu is None or resources.gpu.gpu_type == "generic":
            return {}
        return {"cloud.google.com/gke-accelerator": resources.gpu.gpu_type}


class KeptJobs:
    """The Kubernetes batch API, keeping each Job it is asked to create instead of sending it."""

    def __init__(self) -> None:
        self.created: list[tuple[str, V1Job]] = []

    def create_namespaced_job(self, body: V1Job, namespace: str, **_: Any) -> V1Job:
        self.created.append((namespace, body))
        return body


def training_job() -> dg.JobDefinition:
    """The example ``training`` job on GKE, run by ``k8s_job_executor``."""
    digits = importlib.import_module("digits_pipelines")
    defs = build_definitions(
        [digits.training], translator=GKETranslator(), executor=k8s_job_executor
    )
    return defs.resolve_job_def("training")


@pytest.fixture(scope="module")
def kubeconfig(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("kube") / "config"
    path.write_text(KUBECONFIG, encoding="utf-8")
    return str(path)


@pytest.fixture(scope="module")
def k8s_instance(kubeconfig: str) -> Iterator[dg.DagsterInstance]:
    launcher = {
        "job_image": IMAGE,
        "job_namespace": NAMESPACE,
        "dagster_home": "/opt/dagster/dagster_home",
        "instance_config_map": "dagster-instance",
        "service_account_name": "dagster",
        "load_incluster_config": False,
        "kubeconfig_file": kubeconfig,
    }
    overrides = {
        "run_launcher": {"module": "dagster_k8s", "class": "K8sRunLauncher", "config": launcher}
    }
    with dg.instance_for_test(overrides=overrides) as instance:
        yield instance


@pytest.fixture(scope="module")
def example_job() -> Iterator[dg.JobDefinition]:
    """The example imported afresh into an empty step registry, which is restored afterwards
    (this runs before the per-test ``empty_registry``; the job is built once for the module)."""
    registry = get_step_registry()
    saved = registry.get_all()
    registry.clear()
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.syspath_prepend(str(EXAMPLES))
            patch.delitem(sys.modules, "digits_pipelines", raising=False)
            yield training_job()
    finally:
        registry.clear()
        for step in saved:
            registry.register(step)


@pytest.fixture(scope="module")
def launched(
    k8s_instance: dg.DagsterInstance, example_job: dg.JobDefinition, kubeconfig: str
) -> tuple[str, V1Job, str]:
    """(namespace, Job, run id) of launching the example's GPU step ``train`` on Kubernetes."""
    run = create_run_for_test(k8s_instance, job_name="training")
    plan = create_execution_plan(example_job)
    job = InMemoryJob(example_job)
    executor = k8s_job_executor.executor_creation_fn(
        InitExecutorContext(
            job=job,
            executor_def=k8s_job_executor,
            executor_config={
                "retries": {"disabled": {}},
                "load_incluster_config": False,
                "kubeconfig_file": kubeconfig,
            },
            instance=k8s_instance,
        )
    )
    plan_context = PlanOrchestrationContext(
        plan_data=PlanData(
            job=job,
            dagster_run=run,
            instance=k8s_instance,
            execution_plan=plan,
            raise_on_error=True,
            retry_mode=RetryMode.DISABLED,
        ),
        log_manager=create_context_free_log_manager(k8s_instance, run),
        executor=executor,
        output_capture=None,
    )
    origin = reconstructable(training_job).get_python_origin()
    batch_api = KeptJobs()
    handler = K8sStepHandler(
        image=None,  # the run launcher's
        container_context=K8sContainerContext(),
        load_incluster_config=False,
        kubeconfig_file=kubeconfig,
        k8s_client_batch_api=batch_api,
    )
    context = StepHandlerContext(
        instance=k8s_instance,
        plan_context=plan_context,
        steps=plan.steps,
        execute_step_args=ExecuteStepArgs(origin, run.run_id, ["train"]),
        dagster_run=run,
    )

    list(handler.launch_step(context))

    ((namespace, job),) = batch_api.created
    return namespace, job, run.run_id


def container_of(job: V1Job) -> V1Container:
    (container,) = job.spec.template.spec.containers
    return container


def test_the_gpu_step_is_one_job_in_the_run_launchers_namespace_and_image(
    launched: tuple[str, V1Job, str],
) -> None:
    namespace, job, _ = launched

    assert namespace == NAMESPACE
    assert container_of(job).image == IMAGE
    assert job.spec.template.spec.service_account_name == "dagster"


def test_the_container_runs_dagster_execute_step_for_the_train_step_of_the_run(
    launched: tuple[str, V1Job, str],
) -> None:
    _, job, run_id = launched
    container = container_of(job)
    env = {var.name: var.value for var in container.env}

    step_args = deserialize_value(
        zlib.decompress(base64.b64decode(env["DAGSTER_COMPRESSED_EXECUTE_STEP_ARGS"])).decode(),
        ExecuteStepArgs,
    )

    assert container.args[-2:] == ["api", "execute_step"]
    assert (step_args.run_id, step_args.step_keys_to_execute) == (run_id, ["train"])
    assert env["DAGSTER_RUN_STEP_KEY"] == "train"


def test_the_gpu_steps_resources_are_its_requests_and_limits(
    launched: tuple[str, V1Job, str],
) -> None:
    resources = container_of(launched[1]).resources

    assert resources.requests == {"cpu": "4", "memory": "8Gi", "nvidia.com/gpu": "1"}
    assert resources.limits == {"memory": "8Gi", "nvidia.com/gpu": "1"}


def test_the_gpu_type_selects_gke_nodes_with_that_accelerator(
    launched: tuple[str, V1Job, str],
) -> None:
    pod = launched[1].spec.template.spec

    assert pod.node_selector == {"cloud.google.com/gke-accelerator": "nvidia-tesla-t4"}


def test_the_pod_tolerates_the_gpu_nodes_taint(launched: tuple[str, V1Job, str]) -> None:
    tolerations = launched[1].spec.template.spec.tolerations

    assert [(t.key, t.operator, t.effect) for t in tolerations] == [
        ("nvidia.com/gpu", "Exists", "NoSchedule")
    ]


def test_the_steps_own_security_context_is_merged_in(launched: tuple[str, V1Job, str]) -> None:
    security = container_of(launched[1]).security_context

    assert security.run_as_non_root is True
    assert security.allow_privilege_escalation is False
