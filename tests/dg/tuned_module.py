"""Copied into the test project as ``<project>/tuned.py``: steps whose YAML overrides matter.

``flaky`` fails its first attempt (it leaves a marker file) and succeeds on a retry, which only
the YAML gives it; ``sleepy`` sleeps far longer than the ``timeout`` only the YAML gives it.
Not a test module.
"""

from __future__ import annotations

import time
from pathlib import Path

from flowyml import Pipeline, Step, step
from flowyml_dagster import FlowymlTranslator

ATTEMPTED = Path(__file__).with_name("flaky-attempted")
SLEEP_SECONDS = 30


@step(outputs=["tuned/flaky"])
def flaky() -> str:
    """Fails once, then succeeds."""
    if not ATTEMPTED.exists():
        ATTEMPTED.touch()
        raise RuntimeError("first attempt fails")
    return "second attempt"


@step(outputs=["tuned/slept"])
def sleepy() -> str:
    """Takes half a minute."""
    time.sleep(SLEEP_SECONDS)
    return "awake"


tuned = Pipeline.from_steps(flaky, sleepy, name="tuned")


class TunedTranslator(FlowymlTranslator):
    """Named by the YAML's ``translator:``: every asset in the group ``tuned_group``."""

    def get_group_name(self, step: Step) -> str:
        return "tuned_group"
