"""``condition``: a false condition skips the step and everything that needs its outputs."""

from __future__ import annotations

from typing import Any

import pytest
from core_support import CallLog

from flowyml import Pipeline, PipelineDefinitionError, StepStatus, context, step


def test_a_condition_receives_the_steps_params_by_name() -> None:
    seen: list[dict[str, Any]] = []

    def big_enough(threshold: float) -> bool:
        seen.append({"threshold": threshold})
        return True

    @step(outputs=["x"], condition=big_enough)
    def train(threshold: float) -> float:
        return threshold

    Pipeline("cond", context=context(threshold=0.7)).add_step(train).run()

    assert seen == [{"threshold": 0.7}]


def test_a_condition_receives_context_values_the_step_does_not_take() -> None:
    seen: list[bool] = []

    def enabled_only(enabled: bool) -> bool:
        seen.append(enabled)
        return enabled

    @step(outputs=["x"], condition=enabled_only)
    def train() -> int:
        return 1

    result = Pipeline("cond", context={"enabled": False}).add_step(train).run()

    assert seen == [False]
    assert result.step_results["train"].skipped


def test_a_condition_receives_upstream_values_by_input_and_parameter_name() -> None:
    seen: list[tuple[Any, Any]] = []

    @step(outputs=["metrics", "data/raw"])
    def evaluate() -> tuple[dict[str, float], list[int]]:
        return {"accuracy": 0.95}, [1, 2]

    def good_enough(metrics: dict[str, float], raw: list[int]) -> bool:
        seen.append((metrics, raw))
        return metrics["accuracy"] > 0.9

    @step(inputs=["metrics", "data/raw"], outputs=["deployed"], condition=good_enough)
    def deploy(metrics: dict[str, float], raw: list[int]) -> bool:
        return True

    result = Pipeline("cond").add_step(evaluate).add_step(deploy).run()

    assert seen == [({"accuracy": 0.95}, [1, 2])]
    assert result["deployed"] is True


def test_a_condition_with_star_star_kwargs_receives_every_value_of_the_step() -> None:
    seen: list[dict[str, Any]] = []

    def record_all(**values: Any) -> bool:
        seen.append(values)
        return True

    @step(inputs=["rows"], outputs=["total"], condition=record_all)
    def total(data: list[int], scale: int = 2) -> int:
        return sum(data) * scale

    Pipeline("cond").add_step(total).run(inputs={"rows": [1, 2]})

    assert seen == [{"rows": [1, 2], "data": [1, 2], "scale": 2}]


def test_a_true_condition_lets_the_step_run(calls: CallLog) -> None:
    @step(outputs=["x"], condition=lambda: True)
    def train() -> int:
        calls.record("train")
        return 1

    result = Pipeline("cond").add_step(train).run()

    assert result["x"] == 1
    assert calls.names() == ["train"]


def test_a_false_condition_skips_the_step_without_calling_it(calls: CallLog) -> None:
    @step(outputs=["x"], condition=lambda: False)
    def train() -> int:
        calls.record("train")
        return 1

    result = Pipeline("cond").add_step(train).run()

    outcome = result.step_results["train"]
    assert outcome.status is StepStatus.SKIPPED
    assert outcome.skipped
    assert not outcome.success
    assert outcome.output is None
    assert calls.names() == []
    assert "x" not in result
    with pytest.raises(KeyError, match="train"):
        result["x"]


def test_a_skipped_step_skips_everything_that_needs_its_outputs_transitively(
    calls: CallLog,
) -> None:
    @step(outputs=["model"], condition=lambda: False)
    def train() -> str:
        calls.record("train")
        return "m"

    @step(inputs=["model"], outputs=["metrics"])
    def evaluate(model: str) -> float:
        calls.record("evaluate")
        return 1.0

    @step(inputs=["metrics"], outputs=["report"])
    def report(metrics: float) -> str:
        calls.record("report")
        return "r"

    result = Pipeline("cond").add_step(train).add_step(evaluate).add_step(report).run()

    statuses = {name: r.status for name, r in result.step_results.items()}
    assert statuses == {
        "train": StepStatus.SKIPPED,
        "evaluate": StepStatus.SKIPPED,
        "report": StepStatus.SKIPPED,
    }
    assert calls.names() == []


def test_a_skipped_branch_does_not_stop_independent_branches_and_the_run_succeeds(
    calls: CallLog,
) -> None:
    @step(outputs=["data"])
    def load() -> int:
        calls.record("load")
        return 1

    @step(inputs=["data"], outputs=["deployed"], condition=lambda: False)
    def deploy(data: int) -> bool:
        calls.record("deploy")
        return True

    @step(inputs=["deployed"], outputs=["notified"])
    def notify(deployed: bool) -> bool:
        calls.record("notify")
        return True

    @step(inputs=["data"], outputs=["report"])
    def report(data: int) -> str:
        calls.record("report")
        return "ok"

    pipeline = Pipeline("cond")
    for made in (load, deploy, notify, report):
        pipeline.add_step(made)

    result = pipeline.run()

    assert result.success
    assert result.state == "completed"
    assert result.failed_steps == []
    assert result["report"] == "ok"
    assert sorted(calls.names()) == ["load", "report"]
    assert result.step_results["notify"].skipped


def test_a_condition_asking_for_an_unknown_name_is_an_error_at_build() -> None:
    def needs_flag(flag: bool) -> bool:
        return flag

    @step(outputs=["x"], condition=needs_flag)
    def train() -> int:
        return 1

    with pytest.raises(PipelineDefinitionError, match="flag"):
        Pipeline("cond").add_step(train).build()
