"""``retry=n`` is Dagster's RetryPolicy: Dagster re-runs the step, the step body never does."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import dagster_pipelines as pipelines
import pytest
from dagster import DagsterEventType
from dagster._core.execution.stats import StepEventStatus
from run_support import Run, execute, lines, run_config

from flowyml import Pipeline, RetryPolicy, step
from flowyml_dagster import build_definitions


@pytest.fixture(scope="module")
def flaky_run(module_instance: dg.DagsterInstance, module_tmp: Path) -> Run:
    """One run of a step with ``retry=2`` whose first two attempts fail."""
    workdir = module_tmp / "work"
    workdir.mkdir()
    config = run_config(
        pipelines.retrying_job(), cache_dir=module_tmp / "step-cache", workdir=str(workdir)
    )
    return execute(pipelines.retrying_job, module_instance, config)


@pytest.fixture(scope="module")
def attempt_pids(flaky_run: Run, module_tmp: Path) -> list[str]:
    """The pid of each attempt, as the step wrote it."""
    return lines(module_tmp / "work" / "flaky.attempts")


def test_retry_becomes_the_ops_dagster_retry_policy() -> None:
    op = pipelines.retrying_job().graph.node_named("flaky").definition

    assert op.retry_policy == dg.RetryPolicy(max_retries=2)


def test_retry_delay_backoff_and_jitter_carry_over_to_dagster() -> None:
    @step(
        retry=RetryPolicy(max_retries=3, delay=0.5, backoff="exponential", jitter="plus_minus"),
        register=False,
    )
    def patient() -> int:
        return 1

    defs = build_definitions([Pipeline("patient", steps=[patient])])
    op = defs.resolve_job_def("patient").graph.node_named("patient").definition

    assert op.retry_policy == dg.RetryPolicy(
        max_retries=3, delay=0.5, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
    )


def test_a_step_that_fails_twice_succeeds_on_its_third_attempt(
    flaky_run: Run, attempt_pids: list[str]
) -> None:
    defs = pipelines.definitions(pipelines.RETRYING)

    assert flaky_run.succeeded
    assert len(attempt_pids) == 3
    assert defs.load_asset_value(["flaky", "attempt"], instance=flaky_run.instance) == 3


def test_each_failed_attempt_is_a_dagster_retry_in_the_event_log(flaky_run: Run) -> None:
    assert flaky_run.step_keys(DagsterEventType.STEP_UP_FOR_RETRY) == ["flaky", "flaky"]
    assert flaky_run.step_keys(DagsterEventType.STEP_RESTARTED) == ["flaky", "flaky"]
    assert flaky_run.step_keys(DagsterEventType.STEP_FAILURE) == []


def test_dagster_counts_every_attempt_of_the_step(flaky_run: Run) -> None:
    (stats,) = flaky_run.instance.get_run_step_stats(flaky_run.run_id, step_keys=["flaky"])

    assert stats.attempts == 3
    assert stats.status is StepEventStatus.SUCCESS


def test_each_attempt_runs_in_a_fresh_worker_process(attempt_pids: list[str]) -> None:
    assert len(set(attempt_pids)) == 3
