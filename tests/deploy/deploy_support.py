"""Support for the deployment tests: a Postgres-backed ``DAGSTER_HOME``, Celery workers as
real processes, the deployment's place on the object store, and reading a run's events back from
the instance's event log.

Not a test module; imported by the tests of this directory.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import s3fs
from e2e.e2e_support import (
    READY_TIMEOUT,
    REPO_ROOT,
    RUN_TIMEOUT,
    ServerProcess,
    executable,
    free_port,
    start_server,
    wait_until,
)
from servers.environment import server_environment
from servers.object_store import S3Server
from servers.postgres_server import PostgresServer
from servers.redis_server import RedisServer

LOCATIONS = Path(__file__).resolve().parent / "locations"
LOCATION_MODULE = "celery_location"
EXAMPLES = REPO_ROOT / "examples"
DEFAULT_QUEUE = "dagster"  # dagster-celery's default queue
GPU_QUEUE = "gpu"
MAX_CONCURRENT_RUNS = 2
# Seconds after which Redis hands an unacknowledged task to another worker. Any worker with the
# setting restores *every* task older than it, also one still running on a live worker, so it
# must exceed the longest step: an hour (Redis's default) for the session's workers; only the
# worker-loss test's own workers use a short one, to see a redelivery within the test.
VISIBILITY_TIMEOUT = 3600
# Seconds between a worker's sweeps for such tasks. kombu sweeps every 10 s but scans Redis only
# every 10th sweep (``unacked_restore_throttle``): 100 s. Throttle 1: the interval is the period.
RESTORE_INTERVAL = 10


def code_path() -> str:
    """``PYTHONPATH`` for processes that load the test location: it, the examples, this one's."""
    parts = [str(LOCATIONS), str(EXAMPLES), os.environ.get("PYTHONPATH", "")]
    return os.pathsep.join(p for p in parts if p)


def celery_settings(
    redis: RedisServer,
    *,
    visibility_timeout: int = VISIBILITY_TIMEOUT,
    restore_interval: int = RESTORE_INTERVAL,
) -> dict[str, Any]:
    """A worker's config (``-y``): the executor's broker and backend, and late acknowledgement."""
    return {
        "broker": redis.url(0),
        "backend": redis.url(1),
        "config_source": {
            # Acknowledge a task when it ends, not when it starts: a task whose worker dies is
            # not lost but goes back to the queue (after the visibility timeout).
            "task_acks_late": True,
            "task_reject_on_worker_lost": True,
            "broker_transport_options": {
                "visibility_timeout": visibility_timeout,
                "unacked_restore_interval": restore_interval,
                "unacked_restore_throttle": 1,
            },
        },
    }


def write_celery_yaml(path: Path, settings: Mapping[str, Any]) -> Path:
    """A worker's ``-y`` file; JSON is valid YAML."""
    path.write_text(json.dumps({"execution": {"config": dict(settings)}}), encoding="utf-8")
    return path


def write_dagster_home(path: Path, postgres: PostgresServer) -> Path:
    """A ``DAGSTER_HOME`` whose runs, events and schedules live in ``postgres``; runs launched
    through the instance wait in the daemon's queue, ``MAX_CONCURRENT_RUNS`` at a time."""
    path.mkdir(parents=True, exist_ok=True)
    config = {
        "telemetry": {"enabled": False},
        "storage": postgres.dagster_storage(),
        "run_coordinator": {
            "module": "dagster.core.run_coordinator",
            "class": "QueuedRunCoordinator",
            "config": {
                "max_concurrent_runs": MAX_CONCURRENT_RUNS,
                # Look at the queue every second (default 5), launching in parallel threads.
                "dequeue_interval_seconds": 1,
                "dequeue_use_threads": True,
            },
        },
        "local_artifact_storage": {
            "module": "dagster.core.storage.root",
            "class": "LocalArtifactStorage",
            "config": {"base_dir": str(path / "storage")},
        },
    }
    (path / "dagster.yaml").write_text(json.dumps(config, indent=2), encoding="utf-8")
    return path


# Read by the code location's IO manager (``locations/celery_location.py``).
VALUES_BUCKET_ENV = "DEPLOY_VALUES_BUCKET"
VALUES_PREFIX_ENV = "DEPLOY_VALUES_PREFIX"


@dataclass(frozen=True)
class ObjectStorage:
    """The deployment's part of the session's S3 server: the flowyml cache under one prefix of
    ``bucket``, the units' values (the IO manager's) under another, and the cache's secret."""

    server: S3Server
    bucket: str
    cache_prefix: str
    values_prefix: str
    cache_secret: str
    no_aws_config: Path  # a file that does not exist: no profile of the user's is read

    @classmethod
    def on(cls, server: S3Server, bucket: str, root: Path) -> ObjectStorage:
        """Fresh prefixes and a fresh secret in ``bucket``; ``root`` is the deployment's folder."""
        prefix = f"deploy-{secrets.token_hex(4)}"
        return cls(
            server=server,
            bucket=bucket,
            cache_prefix=f"{prefix}/flowyml-cache",
            values_prefix=f"{prefix}/values",
            cache_secret=secrets.token_urlsafe(32),
            no_aws_config=root / "no-aws-config",
        )

    def environment(self) -> dict[str, str]:
        """What every process of the deployment needs to use the store: the standard ``AWS_*``
        variables, ``FLOWYML_CACHE_DIR`` as an ``s3://`` URL with its secret, the values' place."""
        return {
            **self.server.environment(),
            "AWS_CONFIG_FILE": str(self.no_aws_config),
            "AWS_SHARED_CREDENTIALS_FILE": str(self.no_aws_config),
            "FLOWYML_CACHE_DIR": f"s3://{self.bucket}/{self.cache_prefix}",
            "FLOWYML_CACHE_SECRET": self.cache_secret,
            VALUES_BUCKET_ENV: self.bucket,
            VALUES_PREFIX_ENV: self.values_prefix,
        }

    def objects(self, prefix: str) -> set[str]:
        """The keys of the objects under ``prefix`` now, relative to it."""
        filesystem = s3fs.S3FileSystem(
            key=self.server.access_key_id,
            secret=self.server.secret_access_key,
            endpoint_url=self.server.endpoint_url,
            skip_instance_cache=True,
        )
        root = f"{self.bucket}/{prefix}"
        return {path.removeprefix(f"{root}/") for path in filesystem.find(root)}


def deployment_env(
    dagster_home: Path, redis: RedisServer, storage: Mapping[str, str], *, user_cache: Path
) -> dict[str, str]:
    """The environment of every process of the deployment: its instance, where it keeps the
    flowyml cache and values (``storage``), the Celery URLs the code location reads, and the test
    location on the path. ``user_cache`` is its processes' ``XDG_CACHE_HOME``, where a cache with
    no location configured would land, so a test can tell that nothing did."""
    return server_environment(
        DAGSTER_HOME=str(dagster_home),
        **storage,
        XDG_CACHE_HOME=str(user_cache),
        CELERY_BROKER_URL=redis.url(0),
        CELERY_RESULT_BACKEND=redis.url(1),
        PYTHONPATH=code_path(),
        PYTHONUNBUFFERED="1",
        # ``dagster-celery worker start`` runs ``celery`` from PATH: this virtualenv's first.
        PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
    )


@dataclass(frozen=True)
class Worker:
    """A ``dagster-celery`` worker: the Celery node ``name@host`` on ``queue``."""

    server: ServerProcess
    name: str
    queue: str

    def pids(self) -> set[int]:
        return {p.pid for p in self.server.processes()}


def start_worker(
    name: str,
    queue: str,
    *,
    config_yaml: Path,
    env: Mapping[str, str],
    cwd: Path,
    preload: str = LOCATION_MODULE,
) -> Worker:
    """``dagster-celery worker start`` on ``queue``, one task at a time per pool process.

    The code location (``preload``) is imported once, before the pool forks (``-i``), not by
    each pool process at its first task. Gossip, mingle and heartbeats are off: two workers on
    two cores need not chat.
    """
    argv = [
        executable("dagster-celery"), "worker", "start",
        "-A", "dagster_celery.app", "-y", str(config_yaml), "-q", queue, "-n", name,
        "-i", preload,
        "--", "--concurrency=2", "--without-gossip", "--without-mingle", "--without-heartbeat",
    ]  # fmt: skip
    return Worker(start_server(f"celery-{name}", argv, env=env, cwd=cwd), name, queue)


def wait_for_worker(worker: Worker, *, timeout: float = READY_TIMEOUT) -> Worker:
    """Wait for the worker's ``ready.`` line (its pool is up and it consumes its queue)."""

    def ready() -> bool | None:
        worker.server.check_running()
        return True if " ready." in worker.server.log_tail(200) else None

    wait_until(ready, timeout=timeout, what=f"celery worker {worker.name}", interval=0.5)
    return worker


@dataclass(frozen=True)
class Deployment:
    """The session's servers, the instance on them and the environment of its processes."""

    redis: RedisServer
    postgres: PostgresServer
    dagster_home: Path
    storage: ObjectStorage
    user_cache: Path
    celery_yaml: Path
    env: dict[str, str]
    default_worker: Worker
    gpu_worker: Worker
    instance: dg.DagsterInstance


# --- the event log -----------------------------------------------------------------------------


@dataclass(frozen=True)
class RunLog:
    """One run's events as the instance's event log holds them."""

    records: list[dg.EventLogEntry]

    def events(self, event_type: dg.DagsterEventType) -> list[dg.DagsterEvent]:
        return [
            r.dagster_event
            for r in self.records
            if r.dagster_event is not None and r.dagster_event.event_type == event_type
        ]

    def materializations(self) -> dict[str, dict[str, Any]]:
        """Asset key (``"model/classifier"``) → its materialization's metadata values."""
        found: dict[str, dict[str, Any]] = {}
        for event in self.events(dg.DagsterEventType.ASSET_MATERIALIZATION):
            materialization = event.event_specific_data.materialization  # type: ignore[union-attr]
            found[materialization.asset_key.to_user_string()] = {
                k: v.value for k, v in materialization.metadata.items()
            }
        return found

    def observations(self) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        for event in self.events(dg.DagsterEventType.ASSET_OBSERVATION):
            observation = event.event_specific_data.asset_observation  # type: ignore[union-attr]
            found[observation.asset_key.to_user_string()] = {
                k: v.value for k, v in observation.metadata.items()
            }
        return found

    def step_keys(self, event_type: dg.DagsterEventType) -> list[str]:
        return [e.step_key for e in self.events(event_type) if e.step_key is not None]

    def celery_workers(self) -> list[tuple[str, str]]:
        """``(step key, Celery node)`` of each task a worker started, from dagster-celery's
        engine events, in order."""
        found: list[tuple[str, str]] = []
        for event in self.events(dg.DagsterEventType.ENGINE_EVENT):
            metadata = getattr(event.event_specific_data, "metadata", None) or {}
            node = metadata.get("Celery worker")
            if event.step_key is not None and node is not None:
                found.append((event.step_key, str(node.value)))
        return found


def run_log(instance: dg.DagsterInstance, run_id: str) -> RunLog:
    return RunLog(list(instance.all_logs(run_id)))


# --- launching through the instance's queue and the daemon ---------------------------------------

CODE_LOCATION = "deploy_location"
TERMINAL = frozenset(
    {dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED}
)


@dataclass(frozen=True)
class Daemon:
    """The deployment's code server and daemon: runs launched through the instance's queue."""

    code_server: ServerProcess
    daemon: ServerProcess
    workspace: Path


def start_code_server(env: Mapping[str, str], cwd: Path) -> ServerProcess:
    """``dagster api grpc`` serving the test location: what the daemon launches runs from."""
    port = free_port()
    argv = [
        executable("dagster"), "api", "grpc", "-h", "127.0.0.1", "-p", str(port),
        "-f", str(LOCATIONS / "celery_location.py"), "-a", "defs", "-d", str(LOCATIONS),
        "--location-name", CODE_LOCATION,
    ]  # fmt: skip
    server = start_server("deploy-code-server", argv, env=env, cwd=cwd, port=port)

    def ready() -> bool | None:
        server.check_running()
        return True if "Started Dagster code server" in server.log_tail(200) else None

    wait_until(ready, timeout=READY_TIMEOUT, what="the deployment's code server", interval=0.5)
    return server


def write_grpc_workspace(path: Path, port: int) -> Path:
    entry = {"grpc_server": {"host": "127.0.0.1", "port": port, "location_name": CODE_LOCATION}}
    path.write_text(json.dumps({"load_from": [entry]}), encoding="utf-8")
    return path


def start_daemon(workspace: Path, env: Mapping[str, str], cwd: Path) -> ServerProcess:
    """``dagster-daemon run``: it takes queued runs off the instance's queue and launches them."""
    argv = [executable("dagster-daemon"), "run", "-w", str(workspace)]
    server = start_server("deploy-daemon", argv, env=env, cwd=cwd)

    def ready() -> bool | None:
        server.check_running()
        return True if "QueuedRunCoordinatorDaemon" in server.log_tail(200) else None

    wait_until(ready, timeout=READY_TIMEOUT, what="the dagster daemon", interval=0.5)
    return server


def launch_command(
    workspace: Path, job: str, run_id: str, run_config: Mapping[str, Any] | None = None
) -> list[str]:
    """``dagster job launch`` of ``job`` through ``workspace`` (the daemon's, so the run's
    location is one the daemon knows); the run joins the instance's queue."""
    return [
        executable("dagster"), "job", "launch", "-w", str(workspace), "-j", job,
        "--run-id", run_id, "--config-json", json.dumps(dict(run_config or {})),
    ]  # fmt: skip


def wait_for_status(
    instance: dg.DagsterInstance,
    run_id: str,
    statuses: frozenset[dg.DagsterRunStatus] = TERMINAL,
    *,
    timeout: float = RUN_TIMEOUT,
) -> dg.DagsterRunStatus:
    def reached() -> dg.DagsterRunStatus | None:
        run = instance.get_run_by_id(run_id)
        return run.status if run is not None and run.status in statuses else None

    return wait_until(reached, timeout=timeout, what=f"run {run_id} to reach {set(statuses)}")
