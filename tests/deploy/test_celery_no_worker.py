"""A run whose task sits on a queue no worker listens to can still be ended.

Only a worker records a task as revoked, so dagster-celery's loop, after revoking such a task on
termination, would wait for it forever (every further SIGINT or SIGTERM is swallowed by Dagster's
interrupt handling; only SIGKILL ends the run). ``celery_executor`` gives up on a revoked task
after ``REVOKE_WAIT_SECONDS``. Only Redis is started here: no worker, no Postgres.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import dagster as dg
from e2e.e2e_support import make_dagster_home, wait_until
from servers.redis_server import redis_server

from flowyml_dagster.celery_executor import REVOKE_WAIT_SECONDS

REPO = Path(__file__).resolve().parents[2]
STARTED_TIMEOUT = 120.0  # the subprocess imports Dagster on a loaded machine
# From SIGINT to the process gone: the revoke wait, then the run's end and the CLI's exit.
ENDED_TIMEOUT = REVOKE_WAIT_SECONDS + 45.0

DEFINITIONS = textwrap.dedent(
    """
    import os
    from flowyml import Pipeline, step
    from flowyml_dagster import build_definitions
    from flowyml_dagster.celery_executor import celery_executor

    @step(outputs=["value"], pipeline="unserved")
    def produce() -> int:
        return 1

    executor = celery_executor.configured(
        {"broker": os.environ["BROKER"], "backend": os.environ["BACKEND"]}
    )
    defs = build_definitions([Pipeline("unserved", auto_discover=True)], executor=executor)
    """
)


def _submitted(instance: dg.DagsterInstance) -> str | None:
    runs = instance.get_runs()
    if not runs:
        return None
    logs = instance.all_logs(runs[0].run_id)
    return runs[0].run_id if any("Submitting celery task" in e.message for e in logs) else None


def test_interrupting_a_run_whose_task_no_worker_takes_ends_it_within_the_revoke_wait(
    tmp_path: Path,
) -> None:
    (tmp_path / "unserved.py").write_text(DEFINITIONS, encoding="utf-8")
    home = make_dagster_home(tmp_path / "home", queued_runs=False)
    with redis_server(tmp_path / "redis") as redis:
        env = {
            **os.environ,
            "DAGSTER_HOME": str(home),
            "BROKER": redis.url(0),
            "BACKEND": redis.url(1),
            "PYTHONPATH": os.pathsep.join([str(REPO), str(tmp_path)]),
        }
        dagster = Path(sys.executable).with_name("dagster")
        command = [str(dagster), "job", "execute", "-f", "unserved.py", "-j", "unserved"]
        process = subprocess.Popen(
            command, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            with dg.DagsterInstance.from_config(str(home)) as instance:
                run_id = wait_until(
                    lambda: _submitted(instance), timeout=STARTED_TIMEOUT, what="the task"
                )
                process.send_signal(signal.SIGINT)

                process.wait(timeout=ENDED_TIMEOUT)

                run = instance.get_run_by_id(run_id)
                assert run is not None
                assert run.status in (dg.DagsterRunStatus.CANCELED, dg.DagsterRunStatus.FAILURE)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
