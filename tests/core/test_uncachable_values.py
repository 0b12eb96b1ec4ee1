"""A value without a fingerprint leaves that one step uncached, with one warning that names the
step, the input or param, and its type; the run goes on."""

from __future__ import annotations

import logging
import threading
from typing import Any

import pytest

from flowyml import Pipeline, step


def lock_pipeline() -> Pipeline:
    @step(outputs=["guard"])
    def make_guard() -> Any:
        return threading.Lock()

    @step(inputs=["guard"], outputs=["n"])
    def use_guard(guard: Any) -> int:
        with guard:
            return 1

    return Pipeline("p", auto_discover=True)


def test_a_step_with_an_input_without_a_fingerprint_runs_uncached(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)

    result = lock_pipeline().run()

    assert result["n"] == 1
    assert result.step_results["use_guard"].cache_key is None
    assert "step 'use_guard' is not cached: input 'guard' (lock)" in caplog.text


def test_the_warning_is_given_once_per_process(caplog: pytest.LogCaptureFixture) -> None:
    pipeline = lock_pipeline()
    caplog.set_level(logging.WARNING)

    pipeline.run()
    pipeline.run()

    assert caplog.text.count("step 'use_guard' is not cached") == 1


def test_a_global_without_a_fingerprint_is_named() -> None:
    namespace: dict[str, Any] = {"__name__": "steps", "step": step, "threading": threading}
    exec(
        "CONNECTION = threading.Lock()\n"
        "@step(outputs=['x'])\n"
        "def read():\n"
        "    return CONNECTION.locked()\n",
        namespace,
    )

    result = Pipeline("p", auto_discover=True).run()

    assert result["x"] is False
    assert result.step_results["read"].cache_key is None
