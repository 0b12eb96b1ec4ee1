"""A worker killed (SIGKILL to its whole process group: a machine lost) in the middle of a step.

The workers acknowledge a task when it ends (``task_acks_late``), so the dead worker's task stays
unacknowledged in Redis; once it is older than the visibility timeout, the other worker's
consumer puts it back on its queue (it looks every ``RESTORE_INTERVAL`` seconds) and runs it. The
bound: the visibility timeout plus the restore interval plus the step and the run's own
overhead. The run then succeeds, and the step that had finished before the kill is not run
again.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import uuid
from pathlib import Path

import dagster as dg
from deploy_pipelines import FRAGILE_QUEUE
from deploy_support import (
    Daemon,
    Deployment,
    celery_settings,
    launch_command,
    run_log,
    start_worker,
    wait_for_status,
    wait_for_worker,
    write_celery_yaml,
)
from e2e.e2e_support import stopped_cleanly, wait_until

LAUNCH_TIMEOUT = 120.0
# Seconds. Longer than the slow step (4 s) and its loading on a worker, or the surviving worker's
# own sweep hands the task it is running out again (a second run of the step); short enough for
# the test. Nothing else runs on these two workers' queue.
SHORT_VISIBILITY = 15
RESTORE_INTERVAL = 1
REDELIVERY_BOUND = SHORT_VISIBILITY + RESTORE_INTERVAL + 60.0  # + the run's rest, on 2 cores
SLOW_STEP = "slow_second"


def _pid_in(pid_file: Path) -> int | None:
    text = pid_file.read_text(encoding="utf-8") if pid_file.exists() else ""
    return int(text) if text else None


def test_a_task_whose_worker_is_killed_is_redelivered_to_the_other_worker_and_the_run_succeeds(
    deployment: Deployment, daemon: Daemon, tmp_path: Path
) -> None:
    settings = celery_settings(
        deployment.redis, visibility_timeout=SHORT_VISIBILITY, restore_interval=RESTORE_INTERVAL
    )
    config_yaml = write_celery_yaml(tmp_path / "celery.yaml", settings)
    pid_file = tmp_path / "step.pid"
    run_id = str(uuid.uuid4())
    with contextlib.ExitStack() as stack:
        workers = [
            start_worker(name, FRAGILE_QUEUE, config_yaml=config_yaml, env=deployment.env,
                         cwd=tmp_path)
            for name in ("fragile-a", "fragile-b")
        ]  # fmt: skip
        for worker in workers:
            stack.enter_context(stopped_cleanly(worker.server))
        for worker in workers:
            wait_for_worker(worker)
        config = {"ops": {SLOW_STEP: {"config": {"pid_file": str(pid_file), "seconds": 4.0}}}}
        subprocess.run(
            launch_command(daemon.workspace, "fragile", run_id, config),
            env=deployment.env, check=True, capture_output=True, timeout=LAUNCH_TIMEOUT,
        )  # fmt: skip
        pid = wait_until(lambda: _pid_in(pid_file), timeout=LAUNCH_TIMEOUT, what="the slow step")
        doomed, heir = sorted(workers, key=lambda w: pid not in w.pids())
        assert pid in doomed.pids(), "the step runs on one of the two workers"
        os.killpg(doomed.server.pgid, signal.SIGKILL)

        status = wait_for_status(deployment.instance, run_id, timeout=REDELIVERY_BOUND)

    assert status == dg.DagsterRunStatus.SUCCESS
    log = run_log(deployment.instance, run_id)
    tasks = log.celery_workers()
    ran_on = [node.split("@")[0] for step, node in tasks if step == SLOW_STEP]
    assert ran_on == [doomed.name, heir.name]
    assert [step for step, _ in tasks].count("quick_first") == 1
