"""Helpers of the Dagster tests: run a job for real and read what happened from the instance.

Not a test module. Jobs run with ``dagster.execute_job`` of a reconstructable job on a real
instance, so every step runs in a worker process of the executor the definitions install (the
forkserver multiprocess executor of ``build_definitions``); the tests read the outcome back from
the instance's event log and storage, never from in-memory objects.
"""

from __future__ import annotations

import copy
import inspect
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
from dagster import DagsterEventType

CACHE_RESOURCE = "flowyml_cache"


def run_config(job: dg.JobDefinition, *, cache_dir: Path, **params: Any) -> dict[str, Any]:
    """The job's default run config, plus the cache directory and ``params`` on each op taking them.

    The overrides go into a copy of the default, as the Launchpad does (a partial op config is
    tested on its own in ``test_dagster_config``). The cache directory goes through
    the cache resource's config: the executor's worker processes fork from a server that does not
    see environment variables a test sets after that server started.
    """
    default = job.run_config or {}
    ops: dict[str, Any] = copy.deepcopy(dict(default.get("ops", {})))
    for node in job.graph.node_defs:
        schema = node.config_schema
        config_type = schema.as_field().config_type if schema is not None else None
        fields = getattr(config_type, "fields", {})
        values = {name: value for name, value in params.items() if name in fields}
        if values:
            ops.setdefault(node.name, {}).setdefault("config", {}).update(values)
    config: dict[str, Any] = {
        "resources": {CACHE_RESOURCE: {"config": {"cache_dir": str(cache_dir)}}}
    }
    if ops:
        config["ops"] = ops
    return config


@dataclass(frozen=True)
class Run:
    """A finished run, read back from the instance."""

    run_id: str
    status: dg.DagsterRunStatus
    instance: dg.DagsterInstance

    @property
    def succeeded(self) -> bool:
        return self.status is dg.DagsterRunStatus.SUCCESS

    def entries(self, event_type: DagsterEventType) -> list[dg.EventLogEntry]:
        """The run's event log entries of ``event_type``, in order (with their timestamps)."""
        return list(self.instance.all_logs(self.run_id, of_type=event_type))

    def events(self, event_type: DagsterEventType) -> list[dg.DagsterEvent]:
        """The run's events of ``event_type``, in order, from the instance's event log."""
        entries = self.entries(event_type)
        return [entry.dagster_event for entry in entries if entry.dagster_event is not None]

    def step_keys(self, event_type: DagsterEventType) -> list[str]:
        return [event.step_key or "" for event in self.events(event_type)]

    def materializations(self) -> dict[dg.AssetKey, dg.AssetMaterialization]:
        """The run's materializations by asset key (the last one of each key)."""
        found: dict[dg.AssetKey, dg.AssetMaterialization] = {}
        for event in self.events(DagsterEventType.ASSET_MATERIALIZATION):
            materialization = event.step_materialization_data.materialization
            found[materialization.asset_key] = materialization
        return found

    def materialized_by(self) -> dict[dg.AssetKey, str]:
        """The step key (op) that materialized each asset in this run."""
        return {
            event.step_materialization_data.materialization.asset_key: event.step_key or ""
            for event in self.events(DagsterEventType.ASSET_MATERIALIZATION)
        }


def execute(
    job_fn: Callable[[], dg.JobDefinition],
    instance: dg.DagsterInstance,
    config: Mapping[str, Any] | None = None,
) -> Run:
    """Execute the job ``job_fn`` returns, as Dagster would launch it, and wait for the end.

    ``job_fn`` is a module-level function of a support module; the job is rebuilt from it in
    every worker process. Rather than ``dagster.reconstructable``, which would point at the
    module with the current directory as working directory, the pointer names this directory:
    Python 3.11's forkserver ignores the parent's ``sys.path``, so a worker would not find the
    module otherwise.
    """
    recon_job = dg.build_reconstructable_job(
        job_fn.__module__,
        job_fn.__name__,
        reconstructor_working_directory=str(Path(inspect.getfile(job_fn)).parent),
    )
    with dg.execute_job(recon_job, instance=instance, run_config=dict(config or {})) as result:
        run_id = result.run_id
    record = instance.get_run_by_id(run_id)
    assert record is not None
    return Run(run_id=run_id, status=record.status, instance=instance)


def metadata_values(materialization: dg.AssetMaterialization) -> dict[str, Any]:
    return {key: value.value for key, value in materialization.metadata.items()}


def lines(path: Path) -> list[str]:
    """The lines a step wrote to ``path`` (none if it never wrote)."""
    if not path.exists():
        return []
    return path.read_text(encoding="utf-8").splitlines()


def process_is_running(pid: int) -> bool:
    """True while ``pid`` is a live process (a zombie waiting to be reaped counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8")
    except FileNotFoundError:
        return False
    state = stat.rpartition(")")[2].split()[0]
    return state not in ("Z", "X")


def wait_until_gone(pids: list[int], timeout: float = 20.0) -> list[int]:
    """Wait up to ``timeout`` seconds for ``pids`` to end; return those still running."""
    deadline = time.monotonic() + timeout
    running = [pid for pid in pids if process_is_running(pid)]
    while running and time.monotonic() < deadline:
        time.sleep(0.05)
        running = [pid for pid in running if process_is_running(pid)]
    return running
