"""In an execution group each step is retried by its own policy inside the op: Dagster retrying
the op would re-run the group's successful steps and call a ``retry=0`` step again."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import dagster_pipelines as pipelines
import pytest
from run_support import Run, execute, lines, run_config


@pytest.fixture(scope="module")
def fragile_run(module_instance: dg.DagsterInstance, module_tmp: Path) -> Run:
    """One run of the group: first (retry=2) succeeds, flaky (retry=2) fails once, broken
    (retry=0) always fails."""
    workdir = module_tmp / "work"
    workdir.mkdir()
    config = run_config(
        pipelines.fragile_group_job(), cache_dir=module_tmp / "cache", workdir=str(workdir)
    )
    return execute(pipelines.fragile_group_job, module_instance, config)


def test_a_groups_op_has_no_dagster_retry_policy() -> None:
    op = pipelines.fragile_group_job().graph.node_named("fragile").definition

    assert op.retry_policy is None


def test_a_step_with_retry_zero_in_a_group_is_called_once(
    fragile_run: Run, module_tmp: Path
) -> None:
    assert not fragile_run.succeeded
    assert len(lines(module_tmp / "work" / "fragile_broken.calls")) == 1


def test_the_groups_successful_steps_are_not_rerun(fragile_run: Run, module_tmp: Path) -> None:
    assert len(lines(module_tmp / "work" / "fragile_first.calls")) == 1


def test_a_grouped_step_is_retried_by_its_own_policy(fragile_run: Run, module_tmp: Path) -> None:
    assert len(lines(module_tmp / "work" / "fragile_flaky.calls")) == 2


def test_the_failure_names_the_step_that_failed(fragile_run: Run) -> None:
    assert "fragile_broken" in fragile_run.failure_text("fragile")
