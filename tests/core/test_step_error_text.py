"""``StepResult.error``: an ``ErrorInfo``, read as ``"<type>: <message>"``, keeping the parts."""

from __future__ import annotations

import copy
import pickle
import time

import pytest

from flowyml import ErrorInfo, Pipeline, StepResult, step


def _failed_result() -> StepResult:
    @step(outputs=["value"])
    def explode() -> int:
        raise ValueError("Bad Thing")

    return Pipeline("p", steps=[explode]).run().step_results["explode"]


def test_the_error_of_a_failed_step_is_a_string() -> None:
    result = _failed_result()

    assert isinstance(result.error, ErrorInfo)
    assert isinstance(result.error, str)


def test_the_error_reads_as_type_colon_message() -> None:
    result = _failed_result()

    assert result.error == "ValueError: Bad Thing"
    assert str(result.error) == "ValueError: Bad Thing"


def test_string_methods_work_on_the_error() -> None:
    result = _failed_result()
    assert result.error is not None

    assert "bad thing" in result.error.lower()
    assert "Bad Thing" in result.error


def test_the_error_keeps_the_exception_type_name() -> None:
    result = _failed_result()
    assert result.error is not None

    assert result.error.type == "ValueError"


def test_the_error_keeps_the_exception_message() -> None:
    result = _failed_result()
    assert result.error is not None

    assert result.error.message == "Bad Thing"


def test_the_error_traceback_shows_the_raising_line() -> None:
    result = _failed_result()
    assert result.error is not None

    assert 'raise ValueError("Bad Thing")' in result.error.traceback
    assert "Traceback" in result.error.traceback


def test_the_error_of_a_timed_out_step_mentions_the_timeout() -> None:
    @step(outputs=["value"], timeout=0.5)
    def slow() -> int:
        time.sleep(30)
        return 1

    started = time.monotonic()
    result = Pipeline("p", steps=[slow]).run().step_results["slow"]

    assert time.monotonic() - started < 20
    assert not result.success
    assert result.error is not None
    assert "timeout" in result.error


def test_the_error_survives_a_pickle_round_trip() -> None:
    error = _failed_result().error
    assert error is not None

    restored = pickle.loads(pickle.dumps(error))

    assert isinstance(restored, ErrorInfo)
    assert restored == "ValueError: Bad Thing"
    assert (restored.type, restored.message, restored.traceback) == (
        error.type,
        error.message,
        error.traceback,
    )


def test_the_error_survives_a_deep_copy() -> None:
    error = _failed_result().error
    assert error is not None

    copied = copy.deepcopy(error)

    assert isinstance(copied, ErrorInfo)
    assert copied == "ValueError: Bad Thing"
    assert (copied.type, copied.message, copied.traceback) == (
        error.type,
        error.message,
        error.traceback,
    )


def test_a_successful_step_has_no_error() -> None:
    @step(outputs=["value"])
    def fine() -> int:
        return 1

    result = Pipeline("p", steps=[fine]).run().step_results["fine"]

    assert result.success
    assert result.error is None


class UnprintableError(Exception):
    def __str__(self) -> str:
        raise ZeroDivisionError("no text for you")


def test_an_exception_whose_str_raises_is_still_a_failed_step() -> None:
    @step(outputs=["out"], register=False)
    def explode() -> int:
        raise UnprintableError()

    result = Pipeline("p", steps=[explode]).run()

    error = result.step_results["explode"].error
    assert error is not None
    assert error.type == "UnprintableError"
    assert "ZeroDivisionError" in error.message


def test_the_error_is_read_only() -> None:
    @step(outputs=["out"], register=False)
    def explode() -> int:
        raise ValueError("Bad Thing")

    error = Pipeline("p", steps=[explode]).run().step_results["explode"].error
    assert error is not None

    with pytest.raises(AttributeError):
        error.type = "Other"  # type: ignore[misc]
