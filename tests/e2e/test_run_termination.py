"""``terminateRun`` on a run stuck in a long step, through ``dagster dev``'s GraphQL API.

The step (``locations/e2e_long_step_location.py``) has a ``timeout``, so its body sleeps in a
forked child of the Dagster step process; terminating the run must end the run worker, the step
process and that child, not only mark the run canceled.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from e2e_support import (
    Deployment,
    LongStepProcesses,
    RunEvents,
    dagster_dev,
    launch_run,
    long_step_config,
    run_events,
    terminate_run,
    wait_for_long_step,
    wait_for_run,
    wait_until_gone,
)

LOCATION = "e2e_long_step"
GONE_TIMEOUT = 60.0  # Dagster interrupts the step; the step kills its child within seconds

pytestmark = pytest.mark.timeout(600)


@dataclass(frozen=True)
class TerminatedRun:
    status: str
    events: RunEvents
    processes: LongStepProcesses


@pytest.fixture(scope="module")
def long_step_dev(
    long_step_workspace: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    root = tmp_path_factory.mktemp("long-step-dev")
    with dagster_dev("long-step-dev", long_step_workspace, root, [LOCATION]) as deployment:
        yield deployment


@pytest.fixture(scope="module")
def terminated_run(
    long_step_dev: Deployment, tmp_path_factory: pytest.TempPathFactory
) -> TerminatedRun:
    """A run launched, left until its step sleeps, then terminated through GraphQL."""
    client = long_step_dev.client
    pid_file = tmp_path_factory.mktemp("terminated-run") / "pids.json"
    run_id = launch_run(
        client, "long_running", location=LOCATION, run_config=long_step_config(pid_file)
    )
    processes = wait_for_long_step(client, run_id, pid_file)

    terminate_run(client, run_id)

    status = wait_for_run(client, run_id)
    return TerminatedRun(status, run_events(client, run_id), processes)


def test_terminate_run_cancels_a_run_stuck_in_a_long_step(terminated_run: TerminatedRun) -> None:
    assert terminated_run.status == "CANCELED", terminated_run.events.failure_summary()
    kinds = [e.get("eventType") for e in terminated_run.events.events]
    assert "RUN_CANCELED" in kinds
    assert "STEP_SUCCESS" not in kinds


def test_terminated_run_leaves_no_process_behind(terminated_run: TerminatedRun) -> None:
    processes = terminated_run.processes

    survivors = wait_until_gone(processes.tree, timeout=GONE_TIMEOUT)

    assert processes.timeout_child not in survivors, "the step's timeout child outlived the run"
    assert processes.step not in survivors, "the step process outlived the run"
    assert survivors == [], "\n".join(str(p) for p in survivors)
