"""A worker killed (SIGKILL, its whole process group: a machine lost) in the middle of a step.

Tasks are acknowledged late (``task_acks_late``), so the killed worker's task stays
unacknowledged in Redis; after the broker's visibility timeout another worker's consumer puts it
back on its queue and runs it. The bound: visibility timeout (``VISIBILITY_TIMEOUT``) plus
kombu's restore interval (10 s) plus the step itself. The run then succeeds; the step that had
finished before the kill is not run again.
"""

from __future__ import annotations

import os
import signal
import subprocess
import uuid
from pathlib import Path

import dagster as dg
from deploy_pipelines import FRAGILE_QUEUE
from deploy_support import (
    VISIBILITY_TIMEOUT,
    Daemon,
    Deployment,
    launch_command,
    run_log,
    start_worker,
    wait_for_status,
    wait_for_worker,
)
from e2e.e2e_support import stopped_cleanly, wait_until

LAUNCH_TIMEOUT = 120.0
KOMBU_RESTORE_INTERVAL = 10.0  # kombu's Redis transport looks for expired unacked tasks this often
REDELIVERY_BOUND = VISIBILITY_TIMEOUT + KOMBU_RESTORE_INTERVAL + 60.0  # + a slow step on 2 cores
SLOW_STEP = "slow_second"


def _pid_in(pid_file: Path) -> int | None:
    text = pid_file.read_text(encoding="utf-8") if pid_file.exists() else ""
    return int(text) if text else None


def test_a_task_whose_worker_is_killed_is_redelivered_to_another_worker_and_the_run_succeeds(
    deployment: Deployment, daemon: Daemon, tmp_path: Path
) -> None:
    pid_file = tmp_path / "step.pid"
    run_id = str(uuid.uuid4())
    config = {"ops": {SLOW_STEP: {"config": {"pid_file": str(pid_file), "seconds": 4.0}}}}
    doomed = start_worker(
        "fragile-a", FRAGILE_QUEUE, config_yaml=deployment.celery_yaml, env=deployment.env,
        cwd=tmp_path,
    )  # fmt: skip
    with stopped_cleanly(doomed.server):
        wait_for_worker(doomed)
        subprocess.run(
            launch_command(daemon.workspace, "fragile", run_id, config),
            env=deployment.env, check=True, capture_output=True, timeout=LAUNCH_TIMEOUT,
        )  # fmt: skip
        wait_until(lambda: _pid_in(pid_file), timeout=LAUNCH_TIMEOUT, what="the slow step")
        os.killpg(doomed.server.pgid, signal.SIGKILL)
        doomed.server.process.wait(timeout=30)
    pid_file.unlink()

    heir = start_worker(
        "fragile-b", FRAGILE_QUEUE, config_yaml=deployment.celery_yaml, env=deployment.env,
        cwd=tmp_path,
    )  # fmt: skip
    with stopped_cleanly(heir.server):
        wait_for_worker(heir)
        status = wait_for_status(deployment.instance, run_id, timeout=REDELIVERY_BOUND)

    assert status == dg.DagsterRunStatus.SUCCESS
    log = run_log(deployment.instance, run_id)
    tasks = log.celery_workers()
    assert [node.split("@")[0] for step, node in tasks if step == SLOW_STEP] == [
        "fragile-a",
        "fragile-b",
    ]
    assert [step for step, _ in tasks].count("quick_first") == 1
    assert log.materializations()["fragile/second"]["flowyml/cache"] == "miss"
