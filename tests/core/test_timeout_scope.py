"""``timeout`` covers the whole attempt: the condition, the cache key, the cache read and the
function, so nothing a step brings can hang a run past its deadline."""

from __future__ import annotations

import time
from typing import Any

import pytest

from flowyml import Pipeline, StepStatus, StepTimeoutError, step

HANG_SECONDS = 60


def hang(*_: Any) -> bool:
    time.sleep(HANG_SECONDS)
    return True


def assert_timed_out(result: Any, name: str, started: float) -> None:
    assert result.step_results[name].status is StepStatus.FAILED
    assert result.step_results[name].error.type == StepTimeoutError.__qualname__
    assert time.monotonic() - started < HANG_SECONDS / 2


@pytest.mark.timeout(HANG_SECONDS)
def test_a_condition_that_hangs_is_ended_at_the_steps_timeout() -> None:
    @step(outputs=["x"], timeout=0.5, condition=lambda: hang())
    def gated() -> int:
        return 1

    started = time.monotonic()
    result = Pipeline("p", auto_discover=True).run()

    assert_timed_out(result, "gated", started)


@pytest.mark.timeout(HANG_SECONDS)
def test_a_cache_key_function_that_hangs_is_ended_at_the_steps_timeout() -> None:
    @step(outputs=["x"], timeout=0.5, cache=lambda inputs, params: hang())
    def keyed() -> int:
        return 1

    started = time.monotonic()
    result = Pipeline("p", auto_discover=True).run()

    assert_timed_out(result, "keyed", started)


class SlowToHash:
    """An input whose fingerprint (its pickle) takes for ever."""

    def __reduce__(self) -> Any:
        hang()
        return (SlowToHash, ())


@pytest.mark.timeout(HANG_SECONDS)
def test_an_input_whose_fingerprint_hangs_is_ended_at_the_steps_timeout() -> None:
    @step(inputs=["slow"], outputs=["x"], timeout=0.5)
    def consume(slow: Any) -> int:
        return 1

    started = time.monotonic()
    result = Pipeline("p", auto_discover=True, enable_cache=True).run(inputs={"slow": SlowToHash()})

    assert_timed_out(result, "consume", started)
