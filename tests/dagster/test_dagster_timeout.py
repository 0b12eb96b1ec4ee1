"""``timeout`` is enforced under Dagster: a step that ignores SIGTERM is killed at its deadline.

One run of ``stubborn`` (``timeout=2``, ``retry=1``): it starts a helper process, ignores SIGTERM
and sleeps for five minutes, on each of its two attempts.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import dagster_pipelines as pipelines
import pytest
from dagster import DagsterEventType
from dagster._core.execution.stats import StepEventStatus
from run_support import Run, execute, lines, run_config, survivors

from flowyml_dagster.constants import TIMEOUT_METADATA_KEY

# Far below the five minutes the step sleeps, far above a killed attempt (2 s + 2 s of grace).
ATTEMPT_BOUND_SECONDS = 30


@dataclass(frozen=True)
class TimedOutRun:
    run: Run
    step_pids: list[int]
    helper_pids: list[int]


@pytest.fixture(scope="module")
def timed_out(module_instance: dg.DagsterInstance, module_tmp: Path) -> TimedOutRun:
    workdir = module_tmp / "work"
    workdir.mkdir()
    config = run_config(
        pipelines.timing_out_job(), cache_dir=module_tmp / "step-cache", workdir=str(workdir)
    )
    run = execute(pipelines.timing_out_job, module_instance, config)
    pairs = [line.split() for line in lines(workdir / "stubborn.pids")]
    return TimedOutRun(run, [int(step) for step, _ in pairs], [int(helper) for _, helper in pairs])


def test_a_step_ignoring_sigterm_is_killed_at_its_timeout(timed_out: TimedOutRun) -> None:
    run = timed_out.run
    ends = (DagsterEventType.STEP_UP_FOR_RETRY, DagsterEventType.STEP_FAILURE)
    begins = (DagsterEventType.STEP_START, DagsterEventType.STEP_RESTARTED)
    starts = [e.timestamp for event_type in begins for e in run.entries(event_type)]
    stops = [e.timestamp for event_type in ends for e in run.entries(event_type)]

    attempts = [stop - start for start, stop in zip(sorted(starts), sorted(stops), strict=True)]

    assert run.status is dg.DagsterRunStatus.FAILURE
    assert len(attempts) == 2
    assert all(pipelines.STUBBORN_TIMEOUT <= s < ATTEMPT_BOUND_SECONDS for s in attempts)


def test_the_dagster_failure_names_the_timeout(timed_out: TimedOutRun) -> None:
    (failure,) = timed_out.run.events(DagsterEventType.STEP_FAILURE)
    user_data = failure.step_failure_data.user_failure_data

    assert failure.step_key == "stubborn"
    assert user_data is not None
    assert "timeout of 2s" in (user_data.description or "")
    assert user_data.metadata[TIMEOUT_METADATA_KEY].value == pipelines.STUBBORN_TIMEOUT


def test_a_timed_out_step_is_retried_per_its_policy(timed_out: TimedOutRun) -> None:
    run = timed_out.run
    (stats,) = run.instance.get_run_step_stats(run.run_id, step_keys=["stubborn"])

    assert run.step_keys(DagsterEventType.STEP_UP_FOR_RETRY) == ["stubborn"]
    assert stats.attempts == 2
    assert stats.status is StepEventStatus.FAILURE
    assert len(timed_out.step_pids) == 2


def test_a_timed_out_step_leaves_no_process_behind(timed_out: TimedOutRun) -> None:
    assert survivors(timed_out.step_pids, timeout=20.0) == []


def test_processes_a_timed_out_step_started_are_killed_with_it(timed_out: TimedOutRun) -> None:
    assert len(timed_out.helper_pids) == 2
    assert survivors(timed_out.helper_pids, timeout=20.0) == []
