"""Helpers of the reliability tests: run jobs on a real Dagster instance, read what happened back
from its storage, run pipelines in subprocesses, and check that processes are really gone.

Not a test module; imported by the tests of this directory.
"""

from __future__ import annotations

import copy
import inspect
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
from dagster import DagsterEventType
from dagster._serdes import serialize_value

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
PYTHON = sys.executable
CACHE_RESOURCE = "flowyml_cache"
# flowyml's own warnings (cache problems) logged in a step worker land in the run's event log.
INSTANCE_OVERRIDES: dict[str, Any] = {
    "python_logs": {"managed_python_loggers": ["flowyml"], "python_log_level": "INFO"}
}


# --- processes ----------------------------------------------------------------------------------


def process_running(pid: int) -> bool:
    """True while ``pid`` is a live process (a zombie waiting to be reaped counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8")
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rpartition(")")[2].split()[0] not in ("Z", "X")


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.02) -> bool:
    """Poll ``predicate`` until it holds or ``timeout`` seconds pass; its last value."""
    give_up = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= give_up:
            return predicate()
        time.sleep(interval)
    return True


def survivors(pids: list[int], timeout: float) -> list[int]:
    """Wait up to ``timeout`` seconds for ``pids`` to end; those still running."""
    wait_until(lambda: not any(process_running(pid) for pid in pids), timeout)
    return [pid for pid in pids if process_running(pid)]


def lines(path: Path) -> list[str]:
    """The lines a step wrote to ``path`` (none if it never wrote)."""
    if not path.exists():
        return []
    return path.read_text(encoding="utf-8").splitlines()


def pids_in(path: Path) -> list[int]:
    """Every pid a step recorded in ``path`` (whitespace-separated, one or more per line)."""
    return [int(token) for line in lines(path) for token in line.split()]


def python_env(**extra: str) -> dict[str, str]:
    """The environment of a child Python that imports this checkout and this directory."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(REPO_ROOT), str(HERE), env.get("PYTHONPATH")) if p
    )
    env.update(extra)
    return env


def start_python(code: str, *, log: Path, **env: str) -> subprocess.Popen[bytes]:
    """Start ``python -c code`` in its own session, its output going to ``log``."""
    with log.open("wb") as output:
        return subprocess.Popen(
            [PYTHON, "-c", textwrap.dedent(code)],
            cwd=str(HERE),
            env=python_env(**env),
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


# --- Dagster ------------------------------------------------------------------------------------


def reconstructable(job_fn: Callable[[], dg.JobDefinition]) -> Any:
    """``dagster.reconstructable(job_fn)``, with this directory as the working directory.

    ``dagster.reconstructable`` points at the module with the *current* directory as working
    directory, and Python 3.11's forkserver ignores the parent's ``sys.path``: a step worker would
    not find ``fault_pipelines``. The pointer is otherwise the same.
    """
    return dg.build_reconstructable_job(
        job_fn.__module__,
        job_fn.__name__,
        reconstructor_working_directory=str(Path(inspect.getfile(job_fn)).parent),
    )


def run_config(job: dg.JobDefinition, *, cache_dir: Path | str, **params: Any) -> dict[str, Any]:
    """The job's default run config, plus the cache directory and ``params`` on each op taking them.

    The cache directory goes through the cache resource's config: worker processes fork from a
    server that does not see environment variables set after it started.
    """
    ops: dict[str, Any] = copy.deepcopy(dict((job.run_config or {}).get("ops", {})))
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
    seconds: float = 0.0

    @property
    def succeeded(self) -> bool:
        return self.status is dg.DagsterRunStatus.SUCCESS

    def entries(self, event_type: DagsterEventType | None = None) -> list[dg.EventLogEntry]:
        if event_type is None:
            return list(self.instance.all_logs(self.run_id))
        return list(self.instance.all_logs(self.run_id, of_type=event_type))

    def events(self, event_type: DagsterEventType) -> list[dg.DagsterEvent]:
        return [e.dagster_event for e in self.entries(event_type) if e.dagster_event is not None]

    def step_keys(self, event_type: DagsterEventType) -> list[str]:
        return [event.step_key or "" for event in self.events(event_type)]

    def failure(self, step_key: str) -> Any:
        """The STEP_FAILURE data of ``step_key`` (there must be exactly one)."""
        (found,) = [
            e.step_failure_data
            for e in self.events(DagsterEventType.STEP_FAILURE)
            if e.step_key == step_key
        ]
        return found

    def failure_text(self, step_key: str) -> str:
        """What the STEP_FAILURE of ``step_key`` says: its error with the whole cause chain
        (each exception with its traceback), as the UI shows it."""
        error = self.failure(step_key).error
        return error.to_string() if error is not None else ""

    def materializations(self) -> dict[dg.AssetKey, dg.AssetMaterialization]:
        """The run's materializations by asset key (the last one of each key)."""
        found: dict[dg.AssetKey, dg.AssetMaterialization] = {}
        for event in self.events(DagsterEventType.ASSET_MATERIALIZATION):
            materialization = event.step_materialization_data.materialization
            found[materialization.asset_key] = materialization
        return found

    def metadata(self, key: dg.AssetKey) -> dict[str, Any]:
        return {k: v.value for k, v in self.materializations()[key].metadata.items()}

    def log_messages(self) -> list[str]:
        """The text of every plain log message of the run (what ``context.log`` and managed
        Python loggers wrote)."""
        return [e.user_message for e in self.entries() if e.dagster_event is None]

    def event_log_text(self) -> str:
        """The whole event log, serialized as Dagster stores it."""
        return "\n".join(serialize_value(entry) for entry in self.entries())


def execute(
    job_fn: Callable[[], dg.JobDefinition],
    instance: dg.DagsterInstance,
    config: Mapping[str, Any] | None = None,
    reexecution_options: dg.ReexecutionOptions | None = None,
) -> Run:
    """Execute the job ``job_fn`` returns as Dagster launches it, and wait for the end."""
    started = time.monotonic()
    with dg.execute_job(
        reconstructable(job_fn),
        instance=instance,
        run_config=dict(config or {}),
        reexecution_options=reexecution_options,
    ) as result:
        run_id = result.run_id
    record = instance.get_run_by_id(run_id)
    assert record is not None
    return Run(run_id, record.status, instance, time.monotonic() - started)
