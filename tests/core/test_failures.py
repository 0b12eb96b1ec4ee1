"""A failing step fails the run, blocks what depends on it, and leaves the rest alone."""

from __future__ import annotations

import os
import threading

from core_support import CallLog

from flowyml import Pipeline, StepStatus, step


def test_a_failing_step_fails_the_run() -> None:
    @step(outputs=["model"])
    def train() -> str:
        raise ValueError("loss is NaN")

    result = Pipeline("fail").add_step(train).run()

    assert not result.success
    assert result.state == "failed"
    assert result.failed_steps == ["train"]
    assert result.step_results["train"].status is StepStatus.FAILED
    assert not result.step_results["train"].success


def test_steps_depending_on_a_failed_step_are_upstream_failed_and_not_run(
    calls: CallLog,
) -> None:
    @step(outputs=["model"])
    def train() -> str:
        calls.record("train")
        raise ValueError("loss is NaN")

    @step(inputs=["model"], outputs=["metrics"])
    def evaluate(model: str) -> float:
        calls.record("evaluate")
        return 1.0

    @step(inputs=["metrics"], outputs=["report"])
    def report(metrics: float) -> str:
        calls.record("report")
        return "r"

    result = Pipeline("fail").add_step(train).add_step(evaluate).add_step(report).run()

    assert result.step_results["evaluate"].status is StepStatus.UPSTREAM_FAILED
    assert result.step_results["report"].status is StepStatus.UPSTREAM_FAILED
    assert result.step_results["evaluate"].reason == "upstream step 'train' failed"
    assert calls.names() == ["train"]
    assert result.failed_steps == ["train"]


def test_independent_branches_still_run_when_a_step_fails(calls: CallLog) -> None:
    @step(outputs=["data"])
    def load() -> int:
        calls.record("load")
        return 1

    @step(inputs=["data"], outputs=["model"])
    def train(data: int) -> str:
        calls.record("train")
        raise ValueError("loss is NaN")

    @step(inputs=["data"], outputs=["profile"])
    def profile(data: int) -> str:
        calls.record("profile")
        return "profiled"

    @step(outputs=["docs"])
    def docs() -> str:
        calls.record("docs")
        return "built"

    pipeline = Pipeline("fail")
    for made in (load, train, profile, docs):
        pipeline.add_step(made)

    result = pipeline.run()

    assert sorted(calls.names()) == ["docs", "load", "profile", "train"]
    assert {n: r.status for n, r in result.step_results.items()} == {
        "load": StepStatus.SUCCESS,
        "train": StepStatus.FAILED,
        "profile": StepStatus.SUCCESS,
        "docs": StepStatus.SUCCESS,
    }
    assert result["profile"] == "profiled"
    assert result["docs"] == "built"


def test_the_error_holds_the_type_the_message_and_the_users_raise_line() -> None:
    @step(outputs=["model"])
    def train() -> str:
        raise ValueError("loss is NaN at epoch 3")

    error = Pipeline("fail").add_step(train).run().step_results["train"].error

    assert error is not None
    assert error.type == "ValueError"
    assert error.message == "loss is NaN at epoch 3"
    assert 'raise ValueError("loss is NaN at epoch 3")' in error.traceback
    assert "in train" in error.traceback


def test_the_error_of_a_step_run_in_a_child_process_holds_the_users_raise_line() -> None:
    @step(outputs=["model"], timeout=30)
    def train() -> str:
        raise KeyError("missing column 'label'")

    error = Pipeline("fail").add_step(train).run().step_results["train"].error

    assert error is not None
    assert error.type == "KeyError"
    assert "missing column 'label'" in error.message
    assert "raise KeyError(\"missing column 'label'\")" in error.traceback


def test_a_step_whose_process_dies_without_a_result_fails_as_crashed() -> None:
    @step(outputs=["model"], timeout=30)
    def train() -> str:
        os._exit(3)

    outcome = Pipeline("fail").add_step(train).run().step_results["train"]

    assert outcome.status is StepStatus.FAILED
    assert outcome.error is not None
    assert outcome.error.type == "StepCrashedError"
    assert "step 'train'" in outcome.error.message
    assert "code 3" in outcome.error.message


def test_a_result_that_cannot_leave_the_child_process_fails_naming_the_output() -> None:
    @step(outputs=["lock"], timeout=30)
    def make_lock() -> object:
        return threading.Lock()

    outcome = Pipeline("fail").add_step(make_lock).run().step_results["make_lock"]

    assert outcome.status is StepStatus.FAILED
    assert outcome.error is not None
    assert outcome.error.type == "StepOutputError"
    assert "'lock'" in outcome.error.message


def test_a_failed_step_reports_how_long_it_ran() -> None:
    @step
    def train() -> None:
        raise ValueError("boom")

    outcome = Pipeline("fail").add_step(train).run().step_results["train"]

    assert outcome.duration_seconds > 0
