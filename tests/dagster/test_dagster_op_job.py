"""The op-job flavour runs the same step body as the asset flavour, with values as op outputs."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import op_jobs
from dagster import DagsterEventType
from run_support import execute, lines, run_config

HERE = Path(__file__).parent


def test_an_op_job_has_one_op_per_unit_wired_like_the_pipeline() -> None:
    job = op_jobs.grouped_op_job()

    assert [node.name for node in job.graph.nodes] == ["prep"]
    assert set(job.graph.node_named("prep").definition.output_dict) == {
        "prep__a",
        "prep__b",
        "prep__c",
    }


def test_an_op_job_runs_an_execution_group_in_one_process_and_records_no_assets(
    instance: dg.DagsterInstance, workdir: Path, cache_dir: Path
) -> None:
    config = run_config(op_jobs.grouped_op_job(), cache_dir=cache_dir, workdir=str(workdir))

    run = execute(op_jobs.grouped_op_job, instance, config)

    assert run.succeeded
    assert len(set(lines(workdir / "prep.pids"))) == 1
    assert len(lines(workdir / "prep.pids")) == 3
    assert run.materializations() == {}
    outputs = [e.step_output_data.output_name for e in run.events(DagsterEventType.STEP_OUTPUT)]
    assert outputs == ["prep__a", "prep__b", "prep__c"]


def test_an_op_job_skips_the_dependants_of_a_false_condition_and_succeeds(
    instance: dg.DagsterInstance, workdir: Path, cache_dir: Path
) -> None:
    config = run_config(op_jobs.conditional_op_job(), cache_dir=cache_dir, workdir=str(workdir))

    run = execute(op_jobs.conditional_op_job, instance, config)

    assert run.succeeded
    assert sorted(run.step_keys(DagsterEventType.STEP_SKIPPED)) == ["after_gate", "last_after_gate"]
    assert lines(workdir / "gated.calls") == []


def test_an_op_job_takes_a_pipeline_input_from_run_config(
    instance: dg.DagsterInstance, cache_dir: Path
) -> None:
    config = run_config(op_jobs.external_input_op_job(), cache_dir=cache_dir)
    config["ops"] = {"clean": {"inputs": {"raw__upload": {"value": [3, -1, 2]}}}}
    job = dg.build_reconstructable_job(
        "op_jobs", "external_input_op_job", reconstructor_working_directory=str(HERE)
    )

    with dg.execute_job(job, instance=instance, run_config=config) as result:
        assert result.success
        assert result.output_for_node("clean", "data__clean") == [2, 3]
