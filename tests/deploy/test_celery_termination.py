"""Ending a step on a Celery worker: at its timeout, and when its run is terminated."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import dagster as dg
from celery_location import stubborn_job
from deploy_pipelines import STUBBORN_TIMEOUT
from deploy_support import Daemon, Deployment, launch_command, run_log, wait_for_status
from e2e.e2e_support import process_info, wait_until, wait_until_gone

# From the terminate request to the step's process being gone: the revoke's round trip through
# the broker, SIGTERM, and a loaded machine's scheduling.
GONE_TIMEOUT = 15.0
LAUNCH_TIMEOUT = 120.0  # ``dagster job launch`` imports Dagster, then the daemon dequeues
STUBBORN_STEP = "ignore_sigterm"
LONG_STEP = "sleep_long"


def test_a_step_ignoring_sigterm_is_killed_at_its_timeout_in_the_worker_and_retried(
    deployment: Deployment,
) -> None:
    with dg.execute_job(dg.reconstructable(stubborn_job), deployment.instance) as result:
        assert not result.success
        log = run_log(deployment.instance, result.run_id)
    timed_out = f"exceeded its timeout of {STUBBORN_TIMEOUT:g}s and was killed"
    retries = log.events(dg.DagsterEventType.STEP_UP_FOR_RETRY)
    assert [e.step_key for e in retries] == [STUBBORN_STEP]
    assert timed_out in retries[0].step_retry_data.error.to_string()  # type: ignore[union-attr]
    assert log.step_keys(dg.DagsterEventType.STEP_RESTARTED) == [STUBBORN_STEP]
    failures = log.events(dg.DagsterEventType.STEP_FAILURE)
    assert [e.step_key for e in failures] == [STUBBORN_STEP]
    user_failure = failures[0].step_failure_data.user_failure_data
    assert user_failure is not None and timed_out in str(user_failure.description)
    tasks = log.celery_workers()
    assert [step for step, _ in tasks] == [STUBBORN_STEP, STUBBORN_STEP], "two attempts on workers"


def _pid_in(pid_file: Path) -> int | None:
    text = pid_file.read_text(encoding="utf-8") if pid_file.exists() else ""
    return int(text) if text else None


def test_terminating_the_run_ends_its_step_on_the_worker_within_seconds(
    deployment: Deployment, daemon: Daemon, tmp_path: Path
) -> None:
    pid_file = tmp_path / "step.pid"
    run_id = str(uuid.uuid4())
    config = {"ops": {LONG_STEP: {"config": {"pid_file": str(pid_file)}}}}
    subprocess.run(
        launch_command(daemon.workspace, "long", run_id, config),
        env=deployment.env, check=True, capture_output=True, timeout=LAUNCH_TIMEOUT,
    )  # fmt: skip
    pid = wait_until(lambda: _pid_in(pid_file), timeout=LAUNCH_TIMEOUT, what="the long step")
    step = process_info(pid)
    assert step is not None and pid in deployment.default_worker.pids()

    assert deployment.instance.run_launcher.terminate(run_id)

    assert wait_until_gone([step], timeout=GONE_TIMEOUT) == []
    assert wait_for_status(deployment.instance, run_id) == dg.DagsterRunStatus.CANCELED
