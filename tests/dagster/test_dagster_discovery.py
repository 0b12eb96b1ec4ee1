"""``build_definitions(None)`` finds pipelines by the ``pipeline=`` names of registered steps."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import dagster_pipelines as pipelines
from run_support import execute, run_config

from flowyml.core.step import get_registered_steps
from flowyml_dagster import build_definitions

COMMON = dg.AssetKey(["found", "common"])


def test_without_pipelines_there_is_one_job_per_pipeline_name_of_registered_steps() -> None:
    pipelines.register_discovered_steps()

    defs = build_definitions(None)

    jobs = {job.name for job in defs.resolve_all_job_defs() if not job.name.startswith("__")}
    assert len(get_registered_steps()) == 3
    assert jobs == {"alpha", "beta"}


def test_a_discovered_pipeline_has_its_scoped_steps_and_every_unscoped_step() -> None:
    pipelines.register_discovered_steps()

    defs = build_definitions(None)

    alpha = defs.resolve_job_def("alpha").asset_layer.executable_asset_keys
    beta = defs.resolve_job_def("beta").asset_layer.executable_asset_keys
    assert alpha == {COMMON, dg.AssetKey(["found", "alpha"])}
    assert beta == {COMMON, dg.AssetKey(["found", "beta"])}


def test_a_discovered_pipelines_job_runs(instance: dg.DagsterInstance, cache_dir: Path) -> None:
    pipelines.register_discovered_steps()
    config = run_config(pipelines.discovered_alpha_job(), cache_dir=cache_dir)

    run = execute(pipelines.discovered_alpha_job, instance, config)

    assert run.succeeded
    defs = pipelines.discovered_definitions()
    assert defs.load_asset_value(["found", "alpha"], instance=instance) == 11
