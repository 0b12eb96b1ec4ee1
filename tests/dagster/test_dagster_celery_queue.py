"""Which Celery queue each unit's task goes to, read as dagster-celery reads it.

``core_celery_execution_loop`` takes a step's queue from its ``DAGSTER_CELERY_QUEUE_TAG`` and
falls back to the app's default queue; the tests read the execution plan the same way. That the
tasks really reach the named workers is ``tests/deploy/test_celery_runs.py``'s.
"""

from __future__ import annotations

import dagster as dg
import pytest
from dagster._core.execution.api import create_execution_plan
from dagster_celery.defaults import task_default_queue
from dagster_celery.tags import DAGSTER_CELERY_QUEUE_TAG

from flowyml import GPUConfig, Pipeline, ResourceRequirements, step
from flowyml.core.errors import PipelineDefinitionError
from flowyml.core.graph import ExecutionUnit
from flowyml_dagster import FlowymlTranslator, build_definitions


class GpuQueueTranslator(FlowymlTranslator):
    def get_celery_queue(self, unit: ExecutionUnit) -> str | None:
        return "gpu" if unit.resources is not None and unit.resources.gpu is not None else None


def queues(translator: FlowymlTranslator) -> dict[str, str]:
    @step(outputs=["features"], pipeline="celery_queues")
    def featurize() -> list[int]:
        return [1, 2]

    @step(
        inputs=["features"],
        outputs=["model"],
        pipeline="celery_queues",
        resources=ResourceRequirements(gpu=GPUConfig(gpu_type="nvidia-t4", count=1)),
    )
    def fit(features: list[int]) -> int:
        return sum(features)

    pipeline = Pipeline("celery_queues", auto_discover=True)
    defs = build_definitions([pipeline], translator=translator, executor=dg.in_process_executor)
    plan = create_execution_plan(defs.resolve_job_def("celery_queues"))
    return {
        key: plan.get_step_by_key(key).tags.get(DAGSTER_CELERY_QUEUE_TAG, task_default_queue)
        for key in plan.step_keys_to_execute
    }


def test_by_default_every_unit_goes_to_the_default_queue() -> None:
    assert queues(FlowymlTranslator()) == {"featurize": "dagster", "fit": "dagster"}


def test_an_override_of_get_celery_queue_routes_gpu_units_to_the_gpu_queue() -> None:
    assert queues(GpuQueueTranslator()) == {"featurize": "dagster", "fit": "gpu"}


def build_with_queue(translator: FlowymlTranslator, tags: dict[str, str] | None = None) -> None:
    @step(outputs=["value"], pipeline="queued", tags=tags)
    def produce() -> int:
        return 1

    build_definitions([Pipeline("queued", auto_discover=True)], translator=translator)


@pytest.mark.parametrize("queue", ["", "gpu\n", " gpu", "g pu", "gpu\x00", 5, ["gpu"]], ids=repr)
def test_a_queue_get_celery_queue_gives_no_worker_could_listen_to_fails_the_build(
    queue: object,
) -> None:
    class Routing(FlowymlTranslator):
        def get_celery_queue(self, unit: ExecutionUnit) -> str | None:
            return queue  # type: ignore[return-value]

    with pytest.raises(PipelineDefinitionError) as raised:
        build_with_queue(Routing())

    assert "op 'produce': FlowymlTranslator.get_celery_queue:" in str(raised.value)
    assert repr(queue) in str(raised.value)


@pytest.mark.parametrize("queue", ["", "gpu\n", " gpu", "g pu"], ids=repr)
def test_a_queue_tag_no_worker_could_listen_to_fails_the_build(queue: str) -> None:
    with pytest.raises(PipelineDefinitionError) as raised:
        build_with_queue(FlowymlTranslator(), tags={DAGSTER_CELERY_QUEUE_TAG: queue})

    assert f"step 'produce': tags['{DAGSTER_CELERY_QUEUE_TAG}']:" in str(raised.value)
