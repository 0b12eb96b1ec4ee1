"""``Definitions.merge`` of an existing code location with flowyml's definitions."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import dagster_pipelines as pipelines
from run_support import execute, run_config

UNRELATED = dg.AssetKey(["unrelated_asset"])
MERGED = dg.AssetKey(["merged", "value"])


def test_merged_definitions_hold_the_existing_asset_and_the_pipelines_assets() -> None:
    defs = pipelines.merged_definitions()

    assert defs.resolve_asset_graph().materializable_asset_keys == {UNRELATED, MERGED}


def test_the_pipelines_job_in_merged_definitions_selects_only_its_own_assets() -> None:
    job = pipelines.merged_job()

    assert job.asset_layer.executable_asset_keys == {MERGED}


def test_the_pipelines_job_runs_from_merged_definitions(
    instance: dg.DagsterInstance, cache_dir: Path
) -> None:
    run = execute(
        pipelines.merged_job, instance, run_config(pipelines.merged_job(), cache_dir=cache_dir)
    )

    assert run.succeeded
    assert pipelines.merged_definitions().load_asset_value(MERGED, instance=instance) == 7


def test_the_existing_locations_job_still_runs_from_merged_definitions(
    instance: dg.DagsterInstance,
) -> None:
    run = execute(pipelines.existing_job, instance)

    assert run.succeeded
    assert list(run.materializations()) == [UNRELATED]
    assert pipelines.merged_definitions().load_asset_value(UNRELATED, instance=instance) == 42
