"""Shared by the Dagster-backed tests: run jobs for real and read what happened back.

Jobs run with ``dagster.execute_job`` on a real instance, every step in a worker process of the
executor the definitions install; outcomes are read from the instance's event log and storage.
Also the fixtures both ``tests/dagster`` and ``tests/reliability`` use (their conftests import
them). Not a test module.
"""

from __future__ import annotations

import copy
import importlib
import inspect
import os
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from dagster import DagsterEventType
from dagster._serdes import serialize_value

from flowyml.core.cache_store import CACHE_DIR_ENV

# flowyml's own warnings (cache problems) logged in a step worker land in the run's event log.
INSTANCE_OVERRIDES: dict[str, Any] = {
    "python_logs": {"managed_python_loggers": ["flowyml"], "python_log_level": "INFO"}
}


# --- fixtures -----------------------------------------------------------------------------------


@pytest.fixture
def instance(tmp_path: Path) -> Iterator[dg.DagsterInstance]:
    """A real Dagster instance (SQLite storage, filesystem IO manager) in a temp dir."""
    home = tmp_path / "dagster-home"
    home.mkdir()
    with dg.instance_for_test(overrides=INSTANCE_OVERRIDES, temp_dir=str(home)) as test_instance:
        yield test_instance


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """Where steps, in whatever process they run, record what they did."""
    path = tmp_path / "work"
    path.mkdir()
    return path


@pytest.fixture
def cache_dir(tmp_path: Path) -> Path:
    """The flowyml cache of one test's runs."""
    return tmp_path / "step-cache"


@pytest.fixture(scope="module")
def module_tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A temp dir shared by the tests of one module (for a run several tests look at)."""
    return tmp_path_factory.mktemp("module")


@pytest.fixture(scope="module", autouse=True)
def module_cache_dir(module_tmp: Path) -> Iterator[None]:
    """Module-scoped fixtures run before the per-test cache directory is set: give them one too,
    so nothing a module sets up reads or writes the user's own flowyml cache."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FLOWYML_CACHE_DIR", str(module_tmp / "default-cache"))
        yield


@pytest.fixture(scope="module")
def module_instance(module_tmp: Path) -> Iterator[dg.DagsterInstance]:
    """A real Dagster instance shared by the tests of one module."""
    home = module_tmp / "dagster-home"
    home.mkdir()
    with dg.instance_for_test(overrides=INSTANCE_OVERRIDES, temp_dir=str(home)) as test_instance:
        yield test_instance


# --- processes and files ------------------------------------------------------------------------


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


# --- Dagster ------------------------------------------------------------------------------------


def reconstructable(
    job_fn: Callable[[], dg.JobDefinition], cache_dir: Path | str | None = None
) -> Any:
    """``dagster.reconstructable(job_fn)``, with this directory as the working directory, and
    rebuilt in each worker with ``cache_dir`` as its flowyml cache.

    ``dagster.reconstructable`` points at the module with the *current* directory as working
    directory, and Python 3.11's forkserver ignores the parent's ``sys.path``: a step worker would
    not find ``fault_pipelines``. The cache location is not run config (whoever launches a run
    must not choose where pickles are loaded from): a deployment fixes it in its code location's
    environment, and here each worker sets it before it builds the job.
    """
    return dg.build_reconstructable_job(
        __name__,
        rebuild_job.__name__,
        reconstructable_args=(job_fn.__module__, job_fn.__name__, str(cache_dir or "")),
        reconstructor_working_directory=str(Path(inspect.getfile(job_fn)).parent),
    )


def rebuild_job(module: str, name: str, cache_dir: str) -> dg.JobDefinition:
    """In a worker: the job of ``module.name``, with ``cache_dir`` as the flowyml cache."""
    if cache_dir:
        os.environ[CACHE_DIR_ENV] = cache_dir
    return getattr(importlib.import_module(module), name)()


class LaunchConfig(dict[str, Any]):
    """Run config, and the flowyml cache directory the run's code location is built with."""

    def __init__(self, config: Mapping[str, Any], cache_dir: Path | str | None) -> None:
        super().__init__(config)
        self.cache_dir = cache_dir


def run_config(job: dg.JobDefinition, *, cache_dir: Path | str, **params: Any) -> LaunchConfig:
    """The job's default run config plus ``params`` on each op taking them, launched with
    ``cache_dir`` as the flowyml cache (see :func:`reconstructable`)."""
    ops: dict[str, Any] = copy.deepcopy(dict((job.run_config or {}).get("ops", {})))
    for node in job.graph.node_defs:
        schema = node.config_schema
        config_type = schema.as_field().config_type if schema is not None else None
        fields = getattr(config_type, "fields", {})
        values = {name: value for name, value in params.items() if name in fields}
        if values:
            ops.setdefault(node.name, {}).setdefault("config", {}).update(values)
    return LaunchConfig({"ops": ops} if ops else {}, cache_dir)


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

    def materialized_by(self) -> dict[dg.AssetKey, str]:
        """The step key (op) that materialized each asset in this run."""
        return {
            event.step_materialization_data.materialization.asset_key: event.step_key or ""
            for event in self.events(DagsterEventType.ASSET_MATERIALIZATION)
        }

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
        reconstructable(job_fn, getattr(config, "cache_dir", None)),
        instance=instance,
        run_config=dict(config or {}),
        reexecution_options=reexecution_options,
    ) as result:
        run_id = result.run_id
    record = instance.get_run_by_id(run_id)
    assert record is not None
    return Run(run_id, record.status, instance, time.monotonic() - started)


def metadata_values(materialization: dg.AssetMaterialization) -> dict[str, Any]:
    return {key: value.value for key, value in materialization.metadata.items()}
