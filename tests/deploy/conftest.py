"""Fixtures of the deployment tests: one Redis (Celery's broker and results), one PostgreSQL
(the Dagster instance's storage), one S3 server (SeaweedFS: the flowyml cache and the units'
values) and two Celery workers (queues ``dagster`` and ``gpu``) for the whole session, each
started here in its own process group and stopped here by it.

Runs are launched as a deployment launches them: from a ``DagsterInstance`` on the Postgres
``DAGSTER_HOME``, the run's steps submitted to the workers through the broker. No process of the
deployment shares a local directory with another: the cache is ``FLOWYML_CACHE_DIR=s3://...``
(signed with ``FLOWYML_CACHE_SECRET``) and values go through dagster-aws's ``S3PickleIOManager``,
both on the one S3 server, each under a prefix of the deployment's (``ObjectStorage``).
Every test of this directory gets the ``deploy`` marker.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
from deploy_support import (
    DEFAULT_QUEUE,
    EXAMPLES,
    GPU_QUEUE,
    LOCATIONS,
    Daemon,
    Deployment,
    ObjectStorage,
    celery_settings,
    deployment_env,
    start_code_server,
    start_daemon,
    start_worker,
    wait_for_worker,
    write_celery_yaml,
    write_dagster_home,
    write_grpc_workspace,
)
from e2e.e2e_support import stopped_cleanly
from servers.object_store import (  # noqa: F401 - imported fixtures are registered for this directory
    TEST_BUCKET,
    S3Server,
    s3_server,
)
from servers.postgres_server import postgres_server
from servers.redis_server import redis_server

HERE = Path(__file__).resolve().parent
# The tests import the code location (its job functions for ``dagster.reconstructable``); the
# workers find it on their PYTHONPATH (``deployment_env``).
sys.path[:0] = [str(LOCATIONS), str(EXAMPLES)]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "deploy: test against a Celery + Postgres deployment")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.deploy)


@pytest.fixture(scope="session")
def deployment(
    tmp_path_factory: pytest.TempPathFactory,
    s3_server: S3Server,  # noqa: F811 - the imported fixture, requested
) -> Iterator[Deployment]:
    root = tmp_path_factory.mktemp("deploy")
    storage = ObjectStorage.on(s3_server, TEST_BUCKET, root)
    with contextlib.ExitStack() as stack:
        postgres = stack.enter_context(postgres_server())
        redis = stack.enter_context(redis_server(root / "redis"))
        home = write_dagster_home(root / "dagster_home", postgres)
        user_cache = root / "user-cache"
        celery_yaml = write_celery_yaml(root / "celery.yaml", celery_settings(redis))
        env = deployment_env(home, redis, storage.environment(), user_cache=user_cache)
        # The test process launches runs and runs their executor: it sees what the
        # deployment's processes see (instance, Celery URLs, object store; the IO manager's
        # config is resolved from it when a run is planned).
        patch = stack.enter_context(pytest.MonkeyPatch.context())
        for key in (
            "DAGSTER_HOME",
            "CELERY_BROKER_URL",
            "CELERY_RESULT_BACKEND",
            *storage.environment(),
        ):
            patch.setenv(key, env[key])
        # Opened first, so the tables exist before any other process (two workers at once would
        # race to create them).
        instance = stack.enter_context(dg.DagsterInstance.from_config(str(home)))
        workers = [
            start_worker(name, queue, config_yaml=celery_yaml, env=env, cwd=root)
            for name, queue in (("default", DEFAULT_QUEUE), ("gpu", GPU_QUEUE))
        ]
        for worker in workers:
            stack.enter_context(stopped_cleanly(worker.server))
        for worker in workers:
            wait_for_worker(worker)
        yield Deployment(
            redis, postgres, home, storage, user_cache, celery_yaml, env, *workers, instance
        )


@pytest.fixture(scope="session")
def daemon(deployment: Deployment, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    root = tmp_path_factory.mktemp("deploy-daemon")
    with stopped_cleanly(start_code_server(deployment.env, root)) as code_server:
        assert code_server.port is not None
        workspace = write_grpc_workspace(root / "workspace.yaml", code_server.port)
        with stopped_cleanly(start_daemon(workspace, deployment.env, root)) as daemon:
            yield Daemon(code_server, daemon, workspace)
