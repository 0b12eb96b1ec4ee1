"""An ``execution_group`` is one multi-asset op: its steps run back to back in one process."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import dagster_pipelines as pipelines
import pytest
from dagster import DagsterEventType
from run_support import Run, execute, lines, run_config

GROUP_KEYS = {dg.AssetKey(["prep", name]) for name in ("a", "b", "c")}


@pytest.fixture(scope="module")
def grouped_run(module_instance: dg.DagsterInstance, module_tmp: Path) -> Run:
    workdir = module_tmp / "work"
    workdir.mkdir()
    config = run_config(
        pipelines.grouped_job(), cache_dir=module_tmp / "step-cache", workdir=str(workdir)
    )
    return execute(pipelines.grouped_job, module_instance, config)


def test_an_execution_group_is_one_op_producing_every_asset_of_its_steps() -> None:
    job = pipelines.grouped_job()

    assert [node.name for node in job.graph.nodes] == ["prep"]
    defs = pipelines.definitions(pipelines.GROUPED)
    assert defs.resolve_assets_def(["prep", "a"]).keys == GROUP_KEYS


def test_an_execution_group_runs_as_one_dagster_step(grouped_run: Run) -> None:
    assert grouped_run.succeeded
    assert grouped_run.step_keys(DagsterEventType.STEP_START) == ["prep"]
    assert grouped_run.materialized_by() == dict.fromkeys(GROUP_KEYS, "prep")


def test_every_step_of_an_execution_group_runs_in_the_same_worker_process(
    grouped_run: Run, module_tmp: Path
) -> None:
    pids = lines(module_tmp / "work" / "prep.pids")

    assert len(pids) == 3
    assert len(set(pids)) == 1


def test_values_flow_between_the_steps_of_a_group(grouped_run: Run) -> None:
    defs = pipelines.definitions(pipelines.GROUPED)

    assert defs.load_asset_value(["prep", "c"], instance=grouped_run.instance) == 3
