"""``execution_group``: a group's steps run back to back as one unit with merged resources."""

from __future__ import annotations

import pytest
from core_support import CallLog

from flowyml import (
    GPUConfig,
    Pipeline,
    PipelineDefinitionError,
    ResourceRequirements,
    StepStatus,
    step,
)


def diamond(calls: CallLog, group: str | None) -> Pipeline:
    """prepare(g) → train(g), with an independent ``report`` declared between them.

    Without grouping, the dependency order is prepare, report, train: report interleaves.
    """

    @step(outputs=["data"], execution_group=group, resources={"cpu": "500m", "memory": "8Gi"})
    def prepare() -> int:
        calls.record("prepare")
        return 1

    @step(outputs=["report"])
    def report() -> str:
        calls.record("report")
        return "r"

    @step(
        inputs=["data"],
        outputs=["model"],
        execution_group=group,
        resources={"cpu": 2, "memory": "4Gi", "gpu": 1},
    )
    def train(data: int) -> int:
        calls.record("train")
        return data + 1

    return Pipeline("grouped").add_step(prepare).add_step(report).add_step(train)


def test_without_a_group_an_independent_step_runs_between_the_two_steps(
    calls: CallLog,
) -> None:
    diamond(calls, group=None).run()

    assert calls.names() == ["prepare", "report", "train"]


def test_the_steps_of_a_group_run_back_to_back(calls: CallLog) -> None:
    result = diamond(calls, group="training").run()

    assert result.success
    order = calls.names()
    assert sorted(order) == ["prepare", "report", "train"]
    assert order.index("train") == order.index("prepare") + 1


def test_a_group_is_one_unit_of_the_graph_with_its_steps_in_order(calls: CallLog) -> None:
    graph = diamond(calls, group="training").build()

    units = {unit.name: unit for unit in graph.units}
    assert set(units) == {"training", "report"}
    assert [s.name for s in units["training"].steps] == ["prepare", "train"]
    assert units["training"].group == "training"
    assert units["report"].group is None
    assert [s.name for s in units["report"].steps] == ["report"]


def test_a_group_unit_carries_the_merged_resources_of_its_steps(calls: CallLog) -> None:
    graph = diamond(calls, group="training").build()

    [unit] = [u for u in graph.units if u.group == "training"]
    assert unit.resources == ResourceRequirements(
        cpu=2, memory="8Gi", gpu=GPUConfig(gpu_type="generic", count=1)
    )


def test_a_group_that_a_step_outside_it_both_needs_and_feeds_is_an_error_at_build() -> None:
    @step(outputs=["a"], execution_group="g")
    def first() -> int:
        return 1

    @step(inputs=["a"], outputs=["b"])
    def outside(a: int) -> int:
        return a

    @step(inputs=["b"], outputs=["c"], execution_group="g")
    def last(b: int) -> int:
        return b

    pipeline = Pipeline("split").add_step(first).add_step(outside).add_step(last)

    with pytest.raises(PipelineDefinitionError, match="'g'"):
        pipeline.build()


def test_a_group_whose_steps_need_different_gpu_types_is_an_error_at_build() -> None:
    @step(outputs=["a"], execution_group="g", resources={"gpu": {"type": "nvidia-a100"}})
    def first() -> int:
        return 1

    @step(outputs=["b"], execution_group="g", resources={"gpu": {"type": "nvidia-v100"}})
    def second() -> int:
        return 2

    with pytest.raises(PipelineDefinitionError, match="execution group 'g'"):
        Pipeline("gpus").add_step(first).add_step(second).build()


def test_a_group_stops_at_its_first_failing_step(calls: CallLog) -> None:
    @step(outputs=["a"], execution_group="g")
    def first() -> int:
        calls.record("first")
        raise RuntimeError("broken")

    @step(inputs=["a"], outputs=["b"], execution_group="g")
    def second(a: int) -> int:
        calls.record("second")
        return a

    @step(outputs=["c"], execution_group="g")
    def independent() -> int:
        calls.record("independent")
        return 3

    result = Pipeline("g").add_step(first).add_step(second).add_step(independent).run()

    assert calls.names() == ["first"]
    for name in ("second", "independent"):
        assert result.step_results[name].status is StepStatus.UPSTREAM_FAILED
        assert (
            result.step_results[name].reason == "execution group 'g' stopped at failed step 'first'"
        )


def test_a_group_does_not_start_when_a_value_it_needs_was_skipped(calls: CallLog) -> None:
    @step(outputs=["gate"], condition=lambda: False)
    def gated() -> int:
        return 1

    @step(inputs=["gate"], outputs=["a"], execution_group="g")
    def needs_gate(gate: int) -> int:
        calls.record("needs_gate")
        return gate

    @step(outputs=["b"], execution_group="g")
    def independent() -> int:
        calls.record("independent")
        return 2

    result = Pipeline("g").add_step(gated).add_step(needs_gate).add_step(independent).run()

    assert result.success
    assert calls.names() == []
    for name in ("needs_gate", "independent"):
        assert result.step_results[name].status is StepStatus.SKIPPED
        assert result.step_results[name].reason == (
            "execution group 'g' needs a value of step 'gated', which was skipped"
        )
