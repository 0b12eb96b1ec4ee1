"""A code location for the end-to-end tests: a pipeline scheduled every minute, running by default.

``dagster dev`` on this location lets the scheduler daemon launch a run within about a minute,
with no one switching the schedule on in the UI.
"""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg

from flowyml import Pipeline, step
from flowyml_dagster import build_definitions


@step(outputs=["heartbeat/tick"], cache=False)
def tick() -> str:
    """The time this run's step ran."""
    return datetime.now(UTC).isoformat()


heartbeat = Pipeline(
    "heartbeat",
    auto_discover=True,
    schedule="* * * * *",
    description="A one-step pipeline the scheduler launches every minute.",
)

defs = build_definitions([heartbeat], schedule_status=dg.DefaultScheduleStatus.RUNNING)
