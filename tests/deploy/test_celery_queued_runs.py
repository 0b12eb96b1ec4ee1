"""Four runs launched at once through the instance's queue: the daemon keeps two running at a
time (``MAX_CONCURRENT_RUNS``), each on the Celery workers, on the Postgres instance."""

from __future__ import annotations

import subprocess
import uuid

import dagster as dg
from deploy_support import (
    MAX_CONCURRENT_RUNS,
    Daemon,
    Deployment,
    launch_command,
    run_log,
    wait_for_status,
)
from e2e.e2e_support import RUN_TIMEOUT

LAUNCHES = 4
LAUNCH_TIMEOUT = 180.0  # four ``dagster job launch`` processes at once, on two cores
ASSETS = {"parity/numbers", "parity/total", "parity/mean"}
STEPS = ["numbers", "publish", "sums"]


def _most_at_once(records: list[dg.RunRecord]) -> int:
    """The largest number of the runs that were running at the same moment."""
    edges = sorted(
        [(r.start_time, 1) for r in records if r.start_time is not None]
        + [(r.end_time, -1) for r in records if r.end_time is not None]
    )
    running = most = 0
    for _, change in edges:
        running += change
        most = max(most, running)
    return most


def test_four_queued_launches_all_succeed_two_at_a_time_with_every_event_recorded(
    deployment: Deployment, daemon: Daemon
) -> None:
    run_ids = [str(uuid.uuid4()) for _ in range(LAUNCHES)]
    launches = [
        subprocess.Popen(
            launch_command(daemon.workspace, "parity", run_id),
            env=deployment.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for run_id in run_ids
    ]
    for launch in launches:
        output, _ = launch.communicate(timeout=LAUNCH_TIMEOUT)
        assert launch.returncode == 0, output.decode(errors="replace")

    statuses = [wait_for_status(deployment.instance, r, timeout=RUN_TIMEOUT) for r in run_ids]

    assert statuses == [dg.DagsterRunStatus.SUCCESS] * LAUNCHES
    records = deployment.instance.get_run_records(dg.RunsFilter(run_ids=run_ids))
    assert _most_at_once(list(records)) <= MAX_CONCURRENT_RUNS
    for run_id in run_ids:
        log = run_log(deployment.instance, run_id)
        assert log.materializations().keys() == ASSETS, run_id
        assert sorted(log.step_keys(dg.DagsterEventType.STEP_SUCCESS)) == STEPS, run_id
        assert len(log.events(dg.DagsterEventType.RUN_SUCCESS)) == 1, run_id
