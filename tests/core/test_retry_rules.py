"""One retry loop (``run_attempts``) and one rule of what is not retried, for every runner."""

from __future__ import annotations

import pytest
from core_support import CallLog

from flowyml import Pipeline, StepOutputError, StepStatus, step
from flowyml.core.errors import StepParamError
from flowyml.core.execution import retryable


def test_a_step_with_retry_zero_is_called_once(calls: CallLog) -> None:
    @step(outputs=["x"])
    def flaky() -> int:
        calls.record("flaky")
        raise RuntimeError("down")

    result = Pipeline("p", auto_discover=True).run()

    assert result.step_results["flaky"].status is StepStatus.FAILED
    assert calls.count("flaky") == 1


def test_in_an_execution_group_a_failing_step_does_not_rerun_its_predecessors(
    calls: CallLog,
) -> None:
    @step(outputs=["x"], execution_group="g", retry=2)
    def first() -> int:
        calls.record("first")
        return 1

    @step(inputs=["x"], outputs=["y"], execution_group="g")
    def second(x: int) -> int:
        calls.record("second")
        raise RuntimeError("down")

    Pipeline("p", auto_discover=True).run()

    assert calls.names() == ["first", "second"]


@pytest.mark.parametrize(
    ("error", "again"),
    [
        (RuntimeError("x"), True),
        (StepOutputError("s", "bad shape"), False),
        (StepParamError("s", "bad type"), False),
        (KeyboardInterrupt(), False),
    ],
)
def test_what_is_retried(error: BaseException, again: bool) -> None:
    assert retryable(error) is again
