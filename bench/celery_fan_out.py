"""Wall time of a fan-out on two Celery workers against the multiprocess executor.

Run with ``.venv/bin/python bench/celery_fan_out.py`` on a machine with Debian's
``redis-server`` and ``postgresql``. The pipeline (``_fan_out_location.py``) is 40 independent
steps of 0.2 s each, so the work is 8 s of sleeping and the rest is orchestration: the Celery
executor submits a task per step through Redis and polls results once a second, each worker runs
two at a time; the multiprocess executor forks a process per step from a preloaded server. The
same Postgres instance holds both runs, as in a deployment. Each job runs once to warm up
(workers' first task loads the job), then once timed. For information only: the ratio depends on
the cores and on ``max_concurrent`` versus the workers' concurrency.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
from _harness import Row, print_table, private_dirs, run_scenarios

HERE = Path(__file__).resolve().parent
TESTS = HERE.parent / "tests"
# The test suite's server fixtures (Redis, PostgreSQL, workers) start and stop what this needs.
sys.path[:0] = [str(HERE), str(TESTS), str(TESTS / "deploy")]

from _fan_out_location import WIDTH, celery_job, multiprocess_job  # noqa: E402
from deploy_support import (  # noqa: E402
    celery_settings,
    deployment_env,
    start_worker,
    wait_for_worker,
    write_celery_yaml,
    write_dagster_home,
)
from e2e.e2e_support import stopped_cleanly  # noqa: E402
from servers.postgres_server import postgres_server  # noqa: E402
from servers.redis_server import redis_server  # noqa: E402

# The Celery workers of the deployment; each runs ``CONCURRENCY`` tasks at a time (deploy_support).
WORKERS = ("bench-a", "bench-b")
CONCURRENCY = 2


def timed(
    job: dg.ReconstructableJob, instance: dg.DagsterInstance, run_config: dict | None = None
) -> float:
    """Wall time of one run of ``job`` on ``instance``, launch to result."""
    started = time.perf_counter()
    with dg.execute_job(job, instance, run_config=run_config) as result:
        if not result.success:
            raise RuntimeError("the fan-out run failed")
    return time.perf_counter() - started


@contextlib.contextmanager
def celery_deployment(root: Path) -> Iterator[dg.DagsterInstance]:
    """PostgreSQL, Redis and two Celery workers (``WORKERS`` x ``CONCURRENCY`` slots) preloading
    ``_fan_out_location``; yields the instance runs are launched on. Every server is stopped."""
    with contextlib.ExitStack() as stack:
        postgres = stack.enter_context(postgres_server(name="bench-postgres"))
        redis = stack.enter_context(redis_server(root / "redis", name="bench-redis"))
        home = write_dagster_home(root / "dagster_home", postgres)
        storage = {"FLOWYML_CACHE_DIR": str(root / "cache")}
        env = deployment_env(home, redis, storage, user_cache=root / "user-cache")
        env["PYTHONPATH"] = os.pathsep.join([str(HERE), env["PYTHONPATH"]])
        os.environ.update({k: env[k] for k in ("CELERY_BROKER_URL", "CELERY_RESULT_BACKEND")})
        instance = stack.enter_context(dg.DagsterInstance.from_config(str(home)))
        config = write_celery_yaml(root / "celery.yaml", celery_settings(redis))
        workers = []
        for name in WORKERS:
            worker = start_worker(name, "dagster", config_yaml=config, env=env, cwd=root,
                                  preload="_fan_out_location")  # fmt: skip
            stack.enter_context(stopped_cleanly(worker.server))
            workers.append(worker)
        for worker in workers:
            wait_for_worker(worker)
        yield instance


def fan_out(root: Path) -> list[Row]:
    with celery_deployment(root) as instance:
        seconds = {}
        for name, job in (("celery", celery_job), ("multiprocess", multiprocess_job)):
            timed(dg.reconstructable(job), instance)
            seconds[name] = timed(dg.reconstructable(job), instance)
    ratio = seconds["celery"] / seconds["multiprocess"]
    return [
        Row(f"{WIDTH} steps of 0.2 s, 2 Celery workers x 2", f"{seconds['celery']:.1f} s"),
        Row(f"{WIDTH} steps of 0.2 s, multiprocess executor", f"{seconds['multiprocess']:.1f} s"),
        Row("celery / multiprocess wall time", f"{ratio:.2f}"),
    ]


def main() -> None:
    with private_dirs() as spare:
        spare.mkdir()
        print_table(run_scenarios([lambda: fan_out(spare)]))


if __name__ == "__main__":
    main()
