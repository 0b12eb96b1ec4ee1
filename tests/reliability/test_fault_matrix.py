"""Faults during a run, on the plain runner and on a real Dagster instance (multiprocess executor).

Each fault is injected by a step of ``fault_pipelines``: it raises, hangs ignoring SIGTERM, kills
its own process, returns what cannot be pickled, fails once then recovers, is terminated while it
sleeps; or the cache on disk is damaged, shared by concurrent runs, or not writable. A module
fixture runs each scenario once per runner; the tests then each check one behaviour of it.
Steps report through files in a ``workdir`` (processes don't share memory).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg
import fault_pipelines as fp
import pytest
from dagster import DagsterEventType
from reliability_support import lines, pids_in, start_python
from run_support import Run, execute, run_config, survivors, wait_until

from flowyml import CacheStore, Pipeline, StepStatus
from flowyml.core.cache_store import _MAGIC, SECRET_KEY_FILE
from flowyml.core.isolation import TERM_GRACE_SECONDS
from flowyml_dagster import FlowymlTranslator
from flowyml_dagster.constants import CACHE_METADATA_KEY, STEP_METADATA_KEY

RUNNERS = ["plain", "dagster"]
GONE_SECONDS = 15.0  # SIGTERM, TERM_GRACE_SECONDS, SIGKILL: far less on a quiet machine
STARTUP_SECONDS = 120.0  # a subprocess importing Dagster and starting a run, on 2 slow cores
RUN_BOUND_SECONDS = 120.0  # a failed run must end well within this, never hang
TRANSLATOR = FlowymlTranslator()


# --- what a run looked like, whatever ran it ----------------------------------------------------


@dataclass(frozen=True)
class Observed:
    """One run of a pipeline, read back the same way from either runner.

    ``status`` per step is ``success``, ``failed`` or ``not run``; ``errors`` holds everything a
    failed step's error says (traceback, cause chain); ``values`` holds the stored value of every
    output the run produced (plain: the result's outputs; Dagster: each materialized asset,
    loaded back from the instance's IO manager); ``cache`` is the cache status of each step
    that produced outputs (``hit``, ``miss`` or ``off``).
    """

    runner: str
    succeeded: bool
    status: Mapping[str, str]
    errors: Mapping[str, str]
    values: Mapping[str, Any]
    durations: Mapping[str, float]
    cache: Mapping[str, str]
    seconds: float
    workdir: Path
    run: Run | None = None
    warnings: list[str] = field(default_factory=list)

    def calls(self, name: str) -> int:
        """How many times a step recorded a call (or attempt) in ``<name>.calls/.attempts``."""
        return len(lines(self.workdir / f"{name}.calls")) + len(
            lines(self.workdir / f"{name}.attempts")
        )


class FlowymlWarnings(logging.Handler):
    """Collects the warnings flowyml logs in this process while it is attached."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())

    def __enter__(self) -> FlowymlWarnings:
        logging.getLogger("flowyml").addHandler(self)
        return self

    def __exit__(self, *exc: object) -> None:
        logging.getLogger("flowyml").removeHandler(self)


def observe_plain(
    pipeline: Pipeline, workdir: Path, cache_dir: Path | None = None, **context: Any
) -> Observed:
    """Run ``pipeline`` on the plain runner, in this process (timeout steps fork from it)."""
    runnable = Pipeline(pipeline.name, context=pipeline.context, cache_dir=cache_dir)
    for member in pipeline.steps:
        runnable.add_step(member)
    started = time.monotonic()
    with FlowymlWarnings() as warnings:
        result = runnable.run(context={"workdir": str(workdir), **context})
    seconds = time.monotonic() - started
    status = {
        name: {StepStatus.SUCCESS: "success", StepStatus.FAILED: "failed"}.get(r.status, "not run")
        for name, r in result.step_results.items()
    }
    errors = {
        name: f"{r.error.type}: {r.error.message}\n{r.error.traceback}"
        for name, r in result.step_results.items()
        if r.error is not None
    }
    cache = {
        name: "hit" if r.cached else ("miss" if r.cache_key else "off")
        for name, r in result.step_results.items()
        if r.success
    }
    durations = {name: r.duration_seconds for name, r in result.step_results.items()}
    return Observed(
        "plain", result.success, status, errors, dict(result.outputs), durations, cache, seconds,
        workdir, warnings=warnings.messages,
    )  # fmt: skip


def observe_dagster(
    job_fn: Callable[[], dg.JobDefinition],
    pipeline: Pipeline,
    instance: dg.DagsterInstance,
    workdir: Path,
    cache_dir: Path,
    reexecute: Run | None = None,
) -> Observed:
    """Run ``job_fn``'s job with ``execute_job`` (or re-execute ``reexecute`` from failure)."""
    config = run_config(job_fn(), cache_dir=cache_dir, workdir=str(workdir))
    options = dg.ReexecutionOptions.from_failure(reexecute.run_id, instance) if reexecute else None
    run = execute(job_fn, instance, config, reexecution_options=options)
    return read_dagster_run(run, pipeline, workdir)


def read_dagster_run(run: Run, pipeline: Pipeline, workdir: Path) -> Observed:
    """What ``run`` did to each step of ``pipeline``, from the instance's event log and storage."""
    defs = fp.definitions(pipeline)
    keys = {
        output: TRANSLATOR.get_asset_key(member, output)
        for member in pipeline.steps
        for output in member.output_names
    }
    materialized = run.materializations()
    values = {
        output: defs.load_asset_value(key, instance=run.instance)
        for output, key in keys.items()
        if key in materialized
    }
    op_of = op_names(pipeline)
    failed_ops = set(run.step_keys(DagsterEventType.STEP_FAILURE))
    status: dict[str, str] = {}
    errors: dict[str, str] = {}
    cache: dict[str, str] = {}
    for member in pipeline.steps:
        if all(output in values for output in member.output_names):
            status[member.name] = "success"
            metadata = run.metadata(keys[member.output_names[0]])
            cache[member.name] = str(metadata.get(CACHE_METADATA_KEY))
        elif op_of[member.name] in failed_ops and failed_step(run, op_of[member.name]) in (
            member.name,
            op_of[member.name],
        ):
            status[member.name] = "failed"
            errors[member.name] = run.failure_text(op_of[member.name])
        else:
            status[member.name] = "not run"
    return Observed(
        "dagster", run.succeeded, status, errors, values, op_durations(run, op_of), cache,
        run.seconds, workdir, run,
        warnings=[m for m in run.log_messages() if "flowyml" in m or "cache" in m],
    )  # fmt: skip


def op_names(pipeline: Pipeline) -> dict[str, str]:
    """The Dagster op (step key) that runs each step: its group's name, or its own."""
    return {
        member.name: TRANSLATOR.get_op_name(unit)
        for unit in pipeline.build().units
        for member in unit.steps
    }


def failed_step(run: Run, op_name: str) -> str:
    """The flowyml step an op's failure names (``flowyml/step`` metadata), else the op."""
    user_data = run.failure(op_name).user_failure_data
    if user_data is not None and STEP_METADATA_KEY in user_data.metadata:
        return str(user_data.metadata[STEP_METADATA_KEY].value)
    return op_name


def op_durations(run: Run, op_of: Mapping[str, str]) -> dict[str, float]:
    """Seconds from the last (re)start of each step's op to its end, from the event log."""
    starts: dict[str, float] = {}
    ends: dict[str, float] = {}
    begin = (DagsterEventType.STEP_START, DagsterEventType.STEP_RESTARTED)
    finish = (
        DagsterEventType.STEP_SUCCESS,
        DagsterEventType.STEP_FAILURE,
        DagsterEventType.STEP_UP_FOR_RETRY,
    )
    for entry in run.entries():
        event = entry.dagster_event
        if event is None or event.step_key is None:
            continue
        if event.event_type in begin:
            starts[event.step_key] = entry.timestamp
        elif event.event_type in finish and event.step_key in starts:
            ends[event.step_key] = entry.timestamp
    return {
        name: ends[op] - starts[op] for name, op in op_of.items() if op in ends and op in starts
    }


def fresh(path: Path) -> Path:
    path.mkdir(parents=True)
    return path


def observe(
    runner: str,
    pipeline: Pipeline,
    job_fn: Callable[[], dg.JobDefinition],
    root: Path,
    instance: dg.DagsterInstance,
) -> Observed:
    """Run a scenario on ``runner`` with a fresh workdir and cache below ``root``."""
    workdir = fresh(root / f"{pipeline.name}-{runner}")
    cache_dir = root / f"{pipeline.name}-{runner}-cache"
    if runner == "plain":
        return observe_plain(pipeline, workdir, cache_dir)
    return observe_dagster(job_fn, pipeline, instance, workdir, cache_dir)


# --- a step raises: retried per policy, then the run fails with the user's traceback ------------


@pytest.fixture(scope="module", params=RUNNERS)
def raised(
    request: pytest.FixtureRequest, module_tmp: Path, module_instance: dg.DagsterInstance
) -> Observed:
    return observe(request.param, fp.RAISING, fp.raising_job, module_tmp, module_instance)


def test_a_raising_step_is_attempted_once_more_per_retry(raised: Observed) -> None:
    assert raised.calls("raising_broken") == fp.BROKEN_RETRIES + 1


def test_a_step_that_keeps_raising_fails_the_run(raised: Observed) -> None:
    assert not raised.succeeded
    assert raised.status["raising_broken"] == "failed"


def test_the_failure_carries_the_users_raise_line(raised: Observed) -> None:
    error = raised.errors["raising_broken"]

    assert f'fault_pipelines.py", line {fp.RAISE_LINE}, in raising_broken' in error
    assert fp.BROKEN_RAISE in error
    assert f"ValueError: {fp.BROKEN_MESSAGE}" in error


def test_steps_that_finished_before_the_failure_keep_their_outputs(raised: Observed) -> None:
    assert raised.status["raising_source"] == "success"
    assert raised.values["raising/source"] == [1, 2, 3]


def test_independent_branches_finish_despite_the_failure(raised: Observed) -> None:
    assert raised.values["raising/branch"] == "branch"
    assert raised.values["raising/branch_end"] == "branch end"


def test_dependants_of_the_failed_step_never_run(raised: Observed) -> None:
    assert raised.status["raising_after"] == "not run"
    assert raised.calls("raising_after") == 0
    assert "raising/after" not in raised.values


# --- a step hangs and ignores SIGTERM: killed at its timeout, no process left -------------------


@pytest.fixture(scope="module", params=RUNNERS)
def hung(
    request: pytest.FixtureRequest, module_tmp: Path, module_instance: dg.DagsterInstance
) -> Observed:
    return observe(request.param, fp.HANGING, fp.hanging_job, module_tmp, module_instance)


def test_a_step_ignoring_sigterm_is_killed_at_its_timeout(hung: Observed) -> None:
    bound = fp.HANG_TIMEOUT + TERM_GRACE_SECONDS + GONE_SECONDS

    assert hung.status["hanging_stubborn"] == "failed"
    assert f"timeout of {fp.HANG_TIMEOUT}s" in hung.errors["hanging_stubborn"]
    assert fp.HANG_TIMEOUT <= hung.durations["hanging_stubborn"] < bound


def test_a_step_killed_at_its_timeout_leaves_no_process_behind(hung: Observed) -> None:
    pids = pids_in(hung.workdir / "hanging_stubborn.pids")

    assert len(pids) == 1
    assert survivors(pids, GONE_SECONDS) == []


def test_steps_beside_a_hung_step_finish(hung: Observed) -> None:
    assert hung.values["hanging/branch"] == "branch"


# --- a step kills its own process: a failed step, a failed run, nothing hangs -------------------


@pytest.fixture(scope="module")
def crashed_plain(module_tmp: Path, module_instance: dg.DagsterInstance) -> Observed:
    return observe("plain", fp.CRASHING_PLAIN, fp.crashing_job, module_tmp, module_instance)


@pytest.fixture(scope="module")
def crashed_dagster(module_tmp: Path, module_instance: dg.DagsterInstance) -> Observed:
    return observe("dagster", fp.CRASHING, fp.crashing_job, module_tmp, module_instance)


CRASH_CASES = [
    pytest.param("plain", "crash_exit_timeout", id="plain-os._exit-timeout"),
    pytest.param("plain", "crash_sigkill_timeout", id="plain-sigkill-timeout"),
    pytest.param("dagster", "crash_exit_timeout", id="dagster-os._exit-timeout"),
    pytest.param("dagster", "crash_sigkill_timeout", id="dagster-sigkill-timeout"),
    pytest.param("dagster", "crash_exit", id="dagster-os._exit"),
    pytest.param("dagster", "crash_sigkill", id="dagster-sigkill"),
]


def crashed(request: pytest.FixtureRequest, runner: str) -> Observed:
    observed: Observed = request.getfixturevalue(f"crashed_{runner}")
    return observed


@pytest.mark.parametrize(("runner", "name"), CRASH_CASES)
def test_a_step_that_kills_its_process_is_a_failed_step(
    request: pytest.FixtureRequest, runner: str, name: str
) -> None:
    observed = crashed(request, runner)

    assert observed.status[name] == "failed"
    assert len(pids_in(observed.workdir / f"{name}.pids")) == 1


@pytest.mark.parametrize(("runner", "name"), CRASH_CASES)
def test_the_crash_is_reported_as_such(
    request: pytest.FixtureRequest, runner: str, name: str
) -> None:
    observed = crashed(request, runner)
    if "timeout" in name:  # flowyml's child process died: a StepCrashedError naming the step
        how = "killed by SIGKILL" if "sigkill" in name else "exited with code 1"
        expected = [f"step '{name}'", "StepCrashedError", how]
    else:  # Dagster's step process itself died
        expected = ["ChildProcessCrashException"]

    assert all(text in observed.errors[name] for text in expected), observed.errors[name]


@pytest.mark.parametrize("runner", RUNNERS)
def test_a_run_with_a_crashed_step_ends_failed_and_does_not_hang(
    request: pytest.FixtureRequest, runner: str
) -> None:
    observed = crashed(request, runner)

    assert not observed.succeeded
    assert observed.seconds < RUN_BOUND_SECONDS


@pytest.mark.parametrize("runner", RUNNERS)
def test_other_steps_outputs_survive_a_crashed_step(
    request: pytest.FixtureRequest, runner: str
) -> None:
    observed = crashed(request, runner)

    assert observed.values["crashing/healthy"] == [4, 5, 6]
    assert observed.values["crashing/healthy_sum"] == 15
    assert observed.status["crash_after_exit"] == "not run"
    assert observed.calls("crash_after_exit") == 0


# --- a step returns something that cannot be pickled --------------------------------------------


@pytest.fixture(scope="module")
def unpicklable_plain(module_tmp: Path, module_instance: dg.DagsterInstance) -> Observed:
    return observe("plain", fp.UNPICKLABLE_PLAIN, fp.unpicklable_job, module_tmp, module_instance)


@pytest.fixture(scope="module")
def unpicklable_dagster(module_tmp: Path, module_instance: dg.DagsterInstance) -> Observed:
    return observe("dagster", fp.UNPICKLABLE, fp.unpicklable_job, module_tmp, module_instance)


UNPICKLABLE_TIMEOUT_CASES = [
    pytest.param("plain", "unpicklable_lock_timeout", id="plain-lock-timeout"),
    pytest.param("plain", "unpicklable_lambda_timeout", id="plain-lambda-timeout"),
    pytest.param("dagster", "unpicklable_lock_timeout", id="dagster-lock-timeout"),
    pytest.param("dagster", "unpicklable_lambda_timeout", id="dagster-lambda-timeout"),
]


def unpicklable(request: pytest.FixtureRequest, runner: str) -> Observed:
    observed: Observed = request.getfixturevalue(f"unpicklable_{runner}")
    return observed


@pytest.mark.parametrize(
    ("runner", "name"),
    [
        *UNPICKLABLE_TIMEOUT_CASES,
        pytest.param("dagster", "unpicklable_lock", id="dagster-lock"),
        pytest.param("dagster", "unpicklable_lambda", id="dagster-lambda"),
    ],
)
def test_an_unpicklable_output_fails_naming_the_step_and_the_output(
    request: pytest.FixtureRequest, runner: str, name: str
) -> None:
    observed = unpicklable(request, runner)
    output = name.replace("unpicklable_", "unpicklable/")
    error = observed.errors.get(name, "")

    assert observed.status[name] == "failed"
    assert "StepOutputError" in error
    assert f"step '{name}'" in error
    assert f"output '{output}'" in error
    assert "cannot be pickled" in error


@pytest.mark.parametrize(
    ("runner", "name"),
    [
        *UNPICKLABLE_TIMEOUT_CASES,
        pytest.param("dagster", "unpicklable_lock", id="dagster-lock"),
        pytest.param("dagster", "unpicklable_lambda", id="dagster-lambda"),
    ],
)
def test_an_unpicklable_output_is_not_retried(
    request: pytest.FixtureRequest, runner: str, name: str
) -> None:
    observed = unpicklable(request, runner)

    assert observed.calls(name) == 1


@pytest.mark.parametrize("runner", RUNNERS)
def test_steps_beside_an_unpicklable_output_finish(
    request: pytest.FixtureRequest, runner: str
) -> None:
    assert unpicklable(request, runner).values["unpicklable/fine"] == "fine"


# --- running again after a failure: only the failed step and its dependants run -----------------


@dataclass(frozen=True)
class Rerun:
    first: Observed
    second: Observed
    visited: frozenset[str]  # steps the second run executed (a cache hit counts)

    def called_again(self) -> set[str]:
        return {
            name
            for name in self.first.status
            if len(lines(self.first.workdir / f"{name}.calls")) > 1
        }


@pytest.fixture(scope="module")
def rerun_plain(module_tmp: Path) -> Rerun:
    """The plain runner has no re-execution: the pipeline runs again on the same cache."""
    workdir = fresh(module_tmp / "rerun-plain")
    cache_dir = module_tmp / "rerun-plain-cache"
    first = observe_plain(fp.RERUN, workdir, cache_dir)
    second = observe_plain(fp.RERUN, workdir, cache_dir)
    return Rerun(first, second, frozenset(second.status))


@pytest.fixture(scope="module")
def rerun_dagster(module_tmp: Path, module_instance: dg.DagsterInstance) -> Rerun:
    """Dagster: ``execute_job`` with ``ReexecutionOptions.from_failure`` of the failed run."""
    workdir = fresh(module_tmp / "rerun-dagster")
    cache_dir = module_tmp / "rerun-dagster-cache"
    first = observe_dagster(fp.rerun_job, fp.RERUN, module_instance, workdir, cache_dir)
    assert first.run is not None
    second = observe_dagster(
        fp.rerun_job, fp.RERUN, module_instance, workdir, cache_dir, reexecute=first.run
    )
    assert second.run is not None
    started = set(second.run.step_keys(DagsterEventType.STEP_START))
    op_of = op_names(fp.RERUN)
    return Rerun(first, second, frozenset(n for n, op in op_of.items() if op in started))


@pytest.fixture(params=RUNNERS)
def rerun(request: pytest.FixtureRequest) -> Rerun:
    found: Rerun = request.getfixturevalue(f"rerun_{request.param}")
    return found


def test_the_first_run_fails_at_the_flagged_step(rerun: Rerun) -> None:
    assert not rerun.first.succeeded
    assert rerun.first.status["rerun_fit"] == "failed"
    assert rerun.first.status["rerun_prepare"] == "success"


def test_running_again_after_a_failure_succeeds(rerun: Rerun) -> None:
    assert rerun.second.succeeded
    assert rerun.second.values["rerun/report"] == "mean=25.0"


def test_running_again_calls_only_the_failed_step_and_its_dependants(rerun: Rerun) -> None:
    assert rerun.called_again() == {"rerun_fit"}
    assert len(lines(rerun.first.workdir / "rerun_report.calls")) == 1
    for finished in ("rerun_source", "rerun_prepare", "rerun_side"):
        assert len(lines(rerun.first.workdir / f"{finished}.calls")) == 1


def test_finished_steps_executed_again_are_cache_hits(rerun: Rerun) -> None:
    finished = {name for name, status in rerun.first.status.items() if status == "success"}
    executed_again = finished & rerun.visited

    assert executed_again, "the scenario must execute a finished step again"
    assert {name: rerun.second.cache[name] for name in executed_again} == dict.fromkeys(
        executed_again, "hit"
    )


def test_reexecution_from_failure_starts_only_the_failed_op_and_its_dependants(
    rerun_dagster: Rerun,
) -> None:
    assert rerun_dagster.second.run is not None

    started = set(rerun_dagster.second.run.step_keys(DagsterEventType.STEP_START))

    assert started == {"fit", "rerun_report"}


# --- a run terminated while a step (with a timeout) sleeps in its child process -----------------


@dataclass(frozen=True)
class Terminated:
    step_pids: list[int]  # the step's process (Dagster's step worker, or the plain runner)
    child_pid: int  # the timeout's child running the step function
    runner: subprocess.Popen[bytes]
    status: dg.DagsterRunStatus | None
    log: Path


def wait_for_pids(path: Path, runner: subprocess.Popen[bytes], log: Path) -> list[int]:
    """The pids the sleeping step wrote, once it wrote them (the run must still be going)."""
    started = wait_until(lambda: bool(pids_in(path)) or runner.poll() is not None, STARTUP_SECONDS)
    assert started and runner.poll() is None, log.read_text(errors="replace")
    return pids_in(path)


def interrupt(runner: subprocess.Popen[bytes]) -> None:
    """SIGINT to the run's process only (not its group), as Ctrl-C or a run termination does."""
    os.kill(runner.pid, signal.SIGINT)
    try:
        runner.wait(timeout=RUN_BOUND_SECONDS)
    except subprocess.TimeoutExpired:
        runner.kill()
        runner.wait()
        raise


@pytest.fixture(scope="module")
def terminated_plain(module_tmp: Path) -> Iterator[Terminated]:
    workdir = fresh(module_tmp / "terminate-plain")
    log = module_tmp / "terminate-plain.log"
    runner = start_python(
        f"""
        import fault_pipelines as fp
        fp.TERMINATE.run(context={{"workdir": {str(workdir)!r}}})
        """,
        log=log,
    )
    try:
        step_pid, child_pid = wait_for_pids(workdir / "terminate_sleeper.pids", runner, log)
        assert step_pid == runner.pid
        interrupt(runner)
        yield Terminated([step_pid], child_pid, runner, None, log)
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.wait()


@pytest.fixture(scope="module")
def terminated_dagster(
    module_tmp: Path, module_instance: dg.DagsterInstance
) -> Iterator[Terminated]:
    """``execute_job`` in a subprocess; terminated as ``run_launcher.terminate`` would: the run
    is marked CANCELING and its process is interrupted."""
    workdir = fresh(module_tmp / "terminate-dagster")
    log = module_tmp / "terminate-dagster.log"
    home = str(module_tmp / "dagster-home")  # the module instance's directory
    runner = start_python(
        f"""
        import dagster as dg
        import fault_pipelines as fp
        import run_support as rs

        instance = dg.DagsterInstance.from_config({home!r})
        config = rs.run_config(
            fp.terminate_job(), cache_dir={str(module_tmp / "terminate-cache")!r},
            workdir={str(workdir)!r},
        )
        with dg.execute_job(
            rs.reconstructable(fp.terminate_job, config.cache_dir), instance=instance,
            run_config=config,
        ) as result:
            print("run", result.run_id, "success", result.success, flush=True)
        """,
        log=log,
    )
    try:
        step_pid, child_pid = wait_for_pids(workdir / "terminate_sleeper.pids", runner, log)
        (record,) = module_instance.get_run_records(
            dg.RunsFilter(job_name="terminate", statuses=[dg.DagsterRunStatus.STARTED])
        )
        module_instance.report_run_canceling(record.dagster_run)
        interrupt(runner)
        status = module_instance.get_run_by_id(record.dagster_run.run_id)
        assert status is not None
        yield Terminated([step_pid], child_pid, runner, status.status, log)
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.wait()


@pytest.mark.parametrize("runner", RUNNERS)
def test_terminating_a_run_kills_the_steps_child_process_within_seconds(
    request: pytest.FixtureRequest, runner: str
) -> None:
    terminated: Terminated = request.getfixturevalue(f"terminated_{runner}")

    assert survivors([terminated.child_pid], GONE_SECONDS) == []


@pytest.mark.parametrize("runner", RUNNERS)
def test_terminating_a_run_leaves_no_step_process_behind(
    request: pytest.FixtureRequest, runner: str
) -> None:
    terminated: Terminated = request.getfixturevalue(f"terminated_{runner}")

    assert survivors(terminated.step_pids, GONE_SECONDS) == []
    assert terminated.runner.returncode is not None


def test_a_terminated_dagster_run_ends_canceled(terminated_dagster: Terminated) -> None:
    assert terminated_dagster.status is dg.DagsterRunStatus.CANCELED


def test_an_interrupted_plain_run_raises_keyboard_interrupt(terminated_plain: Terminated) -> None:
    assert terminated_plain.runner.returncode != 0
    assert "KeyboardInterrupt" in terminated_plain.log.read_text(errors="replace")


@pytest.fixture(scope="module")
def interrupted_dagster_run(
    module_tmp: Path, module_instance: dg.DagsterInstance
) -> Iterator[Terminated]:
    """``flowyml_dagster.run`` in a subprocess, interrupted with Ctrl-C (SIGINT) mid-step."""
    workdir = fresh(module_tmp / "interrupt-run")
    log = module_tmp / "interrupt-run.log"
    home = str(module_tmp / "dagster-home")  # the module instance's directory
    runner = start_python(
        f"""
        import dagster as dg
        import fault_pipelines as fp
        import flowyml_dagster

        instance = dg.DagsterInstance.from_config({home!r})
        flowyml_dagster.run(
            fp.TERMINATE, context={{"workdir": {str(workdir)!r}}}, instance=instance,
            tags={{"test": "interrupted"}},
        )
        print("run() returned", flush=True)
        """,
        log=log,
    )
    try:
        step_pid, child_pid = wait_for_pids(workdir / "terminate_sleeper.pids", runner, log)
        interrupt(runner)
        (record,) = module_instance.get_run_records(dg.RunsFilter(tags={"test": "interrupted"}))
        yield Terminated([step_pid], child_pid, runner, record.dagster_run.status, log)
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.wait()


def test_an_interrupted_flowyml_dagster_run_raises_keyboard_interrupt(
    interrupted_dagster_run: Terminated,
) -> None:
    output = interrupted_dagster_run.log.read_text(errors="replace")

    assert interrupted_dagster_run.runner.returncode != 0
    assert "KeyboardInterrupt" in output
    assert "run() returned" not in output


def test_an_interrupted_flowyml_dagster_run_is_stored_canceled(
    interrupted_dagster_run: Terminated,
) -> None:
    assert interrupted_dagster_run.status is dg.DagsterRunStatus.CANCELED
    assert survivors([interrupted_dagster_run.child_pid], GONE_SECONDS) == []


# --- a cache entry truncated or corrupted on disk: a miss with a warning, then rewritten --------

DAMAGES = ["truncated", "flipped-byte"]


def damage(path: Path, how: str) -> bytes:
    data = path.read_bytes()
    if how == "truncated":
        damaged = data[: len(data) // 2]
    else:
        position = len(data) - 5
        damaged = data[:position] + bytes([data[position] ^ 0xFF]) + data[position + 1 :]
    path.write_bytes(damaged)
    return damaged


@dataclass(frozen=True)
class Damaged:
    """Three runs: a clean one, one after the source's cache entry was damaged, one more."""

    runs: tuple[Observed, Observed, Observed]
    entry: Path
    original: bytes
    damaged: bytes
    rewritten: bytes
    caplog_text: str = ""


def source_entry(cache_dir: Path, workdir: Path) -> Path:
    key = fp.cached_source.get_cache_key({}, {"workdir": str(workdir)})
    return CacheStore(cache_dir).path_for(key)


def damage_scenario(
    run: Callable[[], Observed], cache_dir: Path, workdir: Path, how: str
) -> Damaged:
    first = run()
    entry = source_entry(cache_dir, workdir)
    original = entry.read_bytes()
    damaged = damage(entry, how)
    second = run()
    rewritten = entry.read_bytes()
    third = run()
    return Damaged((first, second, third), entry, original, damaged, rewritten)


@pytest.fixture(scope="module")
def damaged_on_dagster() -> dict[str, Damaged]:
    """Dagster scenarios by damage, run once per module (the plain ones are cheap: per test)."""
    return {}


@pytest.fixture(params=[(r, d) for r in RUNNERS for d in DAMAGES], ids="-".join)
def damaged(
    request: pytest.FixtureRequest,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
    module_tmp: Path,
    module_instance: dg.DagsterInstance,
    damaged_on_dagster: dict[str, Damaged],
) -> Damaged:
    runner, how = request.param
    if runner == "plain":
        workdir, cache_dir = fresh(tmp_path / "damage"), tmp_path / "damage-cache"
        caplog.set_level(logging.WARNING, logger="flowyml")
        scenario = damage_scenario(
            lambda: observe_plain(fp.CACHED, workdir, cache_dir), cache_dir, workdir, how
        )
        return dataclasses.replace(scenario, caplog_text=caplog.text)
    if how not in damaged_on_dagster:
        workdir, cache_dir = fresh(module_tmp / f"damage-{how}"), module_tmp / f"damage-{how}-c"
        damaged_on_dagster[how] = damage_scenario(
            lambda: observe_dagster(fp.cached_job, fp.CACHED, module_instance, workdir, cache_dir),
            cache_dir,
            workdir,
            how,
        )
    return damaged_on_dagster[how]


def test_a_damaged_cache_entry_is_a_miss_with_a_warning(damaged: Damaged) -> None:
    first, second, _ = damaged.runs
    warned = damaged.caplog_text if first.runner == "plain" else "\n".join(second.warnings)

    assert second.cache["cached_source"] == "miss"
    assert "corrupt" in warned and str(damaged.entry) in warned


def test_a_step_whose_entry_was_damaged_runs_again(damaged: Damaged) -> None:
    first, second, _ = damaged.runs

    assert first.calls("cached_source") == 2
    assert second.succeeded
    assert second.values["cached/source"] == list(range(100))


def test_a_damaged_entry_is_rewritten_whole(damaged: Damaged) -> None:
    assert damaged.damaged != damaged.original
    assert damaged.rewritten == damaged.original


def test_a_rewritten_entry_reads_back_as_a_hit(damaged: Damaged) -> None:
    third = damaged.runs[2]

    assert third.cache["cached_source"] == "hit"
    assert third.calls("cached_source") == 2


def test_steps_downstream_of_a_damaged_entry_stay_cached(damaged: Damaged) -> None:
    _, second, third = damaged.runs

    assert second.cache["cached_total"] == third.cache["cached_total"] == "hit"
    assert second.calls("cached_total") == 1


# --- two runs at the same time sharing one cache dir --------------------------------------------


@dataclass(frozen=True)
class Concurrent:
    results: list[dict[str, Any]]  # what each run printed
    returncodes: list[int]
    logs: list[str]
    reads: list[tuple[str, bool, bool]]  # (entry, hit, value as expected) seen while running
    warnings: list[str]
    cache_dir: Path
    workdir: Path


PLAIN_CONCURRENT_RUN = """
    import hashlib, json
    import fault_pipelines as fp
    from flowyml import Pipeline

    pipeline = Pipeline("concurrent", cache_dir={cache_dir!r}, steps=fp.CONCURRENT.steps)
    result = pipeline.run(context={{"workdir": {workdir!r}}})
    print("RESULT", json.dumps({{
        "success": result.success,
        "summary": result["concurrent/summary"],
        "blob_sha256": hashlib.sha256(result["concurrent/blob"]).hexdigest(),
    }}), flush=True)
"""

DAGSTER_CONCURRENT_RUN = """
    import hashlib, json
    import dagster as dg
    import fault_pipelines as fp
    import run_support as rs

    instance = dg.DagsterInstance.from_config({home!r})
    config = rs.run_config(fp.concurrent_job(), cache_dir={cache_dir!r}, workdir={workdir!r})
    with dg.execute_job(
        rs.reconstructable(fp.concurrent_job, config.cache_dir), instance=instance,
        run_config=config,
    ) as result:
        success = result.success
    defs = fp.definitions(fp.CONCURRENT)
    blob = defs.load_asset_value(dg.AssetKey(["concurrent", "blob"]), instance=instance)
    summary = defs.load_asset_value(dg.AssetKey(["concurrent", "summary"]), instance=instance)
    print("RESULT", json.dumps({{
        "success": success,
        "summary": summary,
        "blob_sha256": hashlib.sha256(blob).hexdigest(),
    }}), flush=True)
"""


def concurrent_keys(workdir: Path) -> dict[str, tuple[str, Any]]:
    """The cache key of each step of the concurrent pipeline, with the value it must hold."""
    blob = fp.payload(fp.CONCURRENT_BYTES)
    summary = {"sha256": hashlib.sha256(blob).hexdigest(), "size": len(blob)}
    params = {"workdir": str(workdir), "size": fp.CONCURRENT_BYTES}
    return {
        fp.concurrent_blob.get_cache_key({}, params): ("concurrent/blob", blob),
        fp.concurrent_summary.get_cache_key({"concurrent/blob": blob}, {"workdir": str(workdir)}): (
            "concurrent/summary",
            summary,
        ),
    }


@pytest.fixture(scope="module", params=RUNNERS)
def concurrent(request: pytest.FixtureRequest, module_tmp: Path) -> Iterator[Concurrent]:
    runner = request.param
    workdir = fresh(module_tmp / f"concurrent-{runner}")
    cache_dir = module_tmp / f"concurrent-{runner}-cache"
    expected = concurrent_keys(workdir)
    reader = CacheStore(cache_dir)
    reads: list[tuple[str, bool, bool]] = []
    with ExitStack() as stack, FlowymlWarnings() as warnings:
        processes = []
        for index in range(fp.CONCURRENT_RUNS):
            log = module_tmp / f"concurrent-{runner}-{index}.log"
            if runner == "plain":
                code = PLAIN_CONCURRENT_RUN.format(cache_dir=str(cache_dir), workdir=str(workdir))
            else:
                home = fresh(module_tmp / f"concurrent-home-{index}")
                stack.enter_context(
                    dg.instance_for_test(temp_dir=str(home), set_dagster_home=False)
                )
                code = DAGSTER_CONCURRENT_RUN.format(
                    home=str(home), cache_dir=str(cache_dir), workdir=str(workdir)
                )
            processes.append((start_python(code, log=log), log))
        try:
            # Read the shared entries over and over while both runs compute and write them.
            while any(process.poll() is None for process, _ in processes):
                for key, (name, value) in expected.items():
                    hit, stored = reader.get(key)
                    reads.append((name, hit, hit and stored == {name: value}))
                    if hit and name == "concurrent/blob":  # let the runs go on to finish
                        fp.arrive(str(workdir), "concurrent_summary", fp.READER)
                time.sleep(0.01)
            for process, _ in processes:
                process.wait(timeout=RUN_BOUND_SECONDS)
        finally:
            for process, _ in processes:
                if process.poll() is None:
                    process.kill()
                    process.wait()
        logs = [log.read_text(errors="replace") for _, log in processes]
        results = [
            json.loads(line.removeprefix("RESULT "))
            for text in logs
            for line in text.splitlines()
            if line.startswith("RESULT ")
        ]
        yield Concurrent(
            results,
            [process.returncode for process, _ in processes],
            logs,
            reads,
            warnings.messages,
            cache_dir,
            workdir,
        )


def test_concurrent_runs_sharing_a_cache_both_succeed(concurrent: Concurrent) -> None:
    assert concurrent.returncodes == [0] * fp.CONCURRENT_RUNS, "\n".join(concurrent.logs)
    assert [r["success"] for r in concurrent.results] == [True] * fp.CONCURRENT_RUNS


def test_concurrent_runs_really_computed_and_wrote_at_the_same_time(
    concurrent: Concurrent,
) -> None:
    for name in ("concurrent_blob", "concurrent_summary"):
        assert len(lines(concurrent.workdir / f"{name}.calls")) == fp.CONCURRENT_RUNS


def test_each_run_gets_the_values_it_computed(concurrent: Concurrent) -> None:
    blob = fp.payload(fp.CONCURRENT_BYTES)
    expected = {"sha256": hashlib.sha256(blob).hexdigest(), "size": len(blob)}

    for result in concurrent.results:
        assert result["summary"] == expected
        assert result["blob_sha256"] == expected["sha256"]


def test_a_reader_never_sees_a_torn_entry_while_runs_write_it(concurrent: Concurrent) -> None:
    hits = [read for read in concurrent.reads if read[1]]

    assert {name for name, _, _ in hits} >= {"concurrent/blob"}, "no read overlapped the runs"
    assert all(as_expected for _, _, as_expected in hits)
    assert not [w for w in concurrent.warnings if "corrupt" in w or "cannot load" in w]


def test_the_shared_cache_holds_exactly_the_entries_written_each_whole(
    concurrent: Concurrent,
) -> None:
    store = CacheStore(concurrent.cache_dir)
    entries = sorted(
        p for p in concurrent.cache_dir.rglob("*") if p.is_file() and p.name != SECRET_KEY_FILE
    )
    expected = concurrent_keys(concurrent.workdir)

    assert sorted(store.path_for(key) for key in expected) == entries  # no temp file left over
    for key, (name, value) in expected.items():
        assert store.path_for(key).read_bytes().startswith(_MAGIC)
        assert store.get(key) == (True, {name: value})


# --- the cache dir is not writable: the run still succeeds, with a warning ----------------------


@pytest.fixture(scope="module", params=RUNNERS)
def unwritable(
    request: pytest.FixtureRequest, module_tmp: Path, module_instance: dg.DagsterInstance
) -> Observed:
    """The cache dir lies below a regular file: nothing can create it, even as root."""
    blocker = module_tmp / f"a-regular-file-{request.param}"
    blocker.write_text("not a directory\n", encoding="utf-8")
    workdir = fresh(module_tmp / f"unwritable-{request.param}")
    if request.param == "plain":
        return observe_plain(fp.CACHED, workdir, blocker / "cache")
    return observe_dagster(fp.cached_job, fp.CACHED, module_instance, workdir, blocker / "cache")


def test_a_run_with_an_unwritable_cache_dir_still_succeeds(unwritable: Observed) -> None:
    assert unwritable.succeeded
    assert unwritable.values["cached/total"] == sum(range(100))


def test_an_unwritable_cache_dir_is_reported_with_a_warning(unwritable: Observed) -> None:
    assert any("cache disabled" in w and "not writable" in w for w in unwritable.warnings)


def test_an_unwritable_cache_dir_means_no_caching_not_a_crash(unwritable: Observed) -> None:
    assert set(unwritable.cache.values()) == {"miss"}
    assert unwritable.calls("cached_source") == 1
