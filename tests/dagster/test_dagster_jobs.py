"""Pipelines become asset jobs; a step shared by pipelines is one asset in each of their jobs."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import dagster_pipelines as pipelines
from run_support import execute, run_config

SHARED = dg.AssetKey(["shared", "base"])


def test_a_pipeline_is_an_asset_job_named_after_it_selecting_its_steps_assets(
    instance: dg.DagsterInstance, cache_dir: Path
) -> None:
    job = pipelines.odd_names_job()

    run = execute(pipelines.odd_names_job, instance, run_config(job, cache_dir=cache_dir))

    assert job.name == "odd_names_pipeline_1"
    assert job.asset_layer.executable_asset_keys == {
        dg.AssetKey(["train-model v2"]),
        dg.AssetKey(["context"]),
    }
    assert run.succeeded
    assert instance.get_run_by_id(run.run_id).job_name == "odd_names_pipeline_1"
    assert set(run.materializations()) == job.asset_layer.executable_asset_keys


def test_a_step_shared_by_two_pipelines_is_one_asset_selected_by_both_jobs() -> None:
    defs = pipelines.definitions(pipelines.FIRST, pipelines.SECOND)

    producers = [a for a in defs.resolve_all_asset_specs() if a.key == SHARED]
    first = defs.resolve_job_def("first").asset_layer.executable_asset_keys
    second = defs.resolve_job_def("second").asset_layer.executable_asset_keys

    assert len(producers) == 1
    assert first == {SHARED, dg.AssetKey(["first", "total"])}
    assert second == {SHARED, dg.AssetKey(["second", "largest"])}


def test_both_jobs_of_a_shared_step_materialize_the_same_asset_with_the_same_op(
    instance: dg.DagsterInstance, cache_dir: Path
) -> None:
    first = execute(
        pipelines.first_job, instance, run_config(pipelines.first_job(), cache_dir=cache_dir)
    )
    second = execute(
        pipelines.second_job, instance, run_config(pipelines.second_job(), cache_dir=cache_dir)
    )

    assert first.succeeded and second.succeeded
    assert first.materialized_by()[SHARED] == second.materialized_by()[SHARED] == "shared_base"
    events = instance.fetch_materializations(SHARED, limit=10).records
    assert {record.run_id for record in events} == {first.run_id, second.run_id}
