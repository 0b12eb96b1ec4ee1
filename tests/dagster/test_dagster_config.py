"""Context params are typed op config; the job's default run config is the pipeline's context."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dagster as dg
import dagster_pipelines as pipelines
import pytest
from run_support import LaunchConfig, execute, run_config

SETTINGS = dg.AssetKey(["settings", "used"])


def settings_seen(instance: dg.DagsterInstance) -> Any:
    """The params the ``configured`` step received, as stored by its last run."""
    return pipelines.definitions(pipelines.CONFIGURED).load_asset_value(SETTINGS, instance=instance)


def cache_only(cache_dir: Path) -> LaunchConfig:
    return LaunchConfig({}, cache_dir)


def test_each_op_has_a_config_field_per_param_of_its_step() -> None:
    op = pipelines.configured_job().graph.node_named("configured").definition

    fields = op.config_schema.as_field().config_type.fields

    assert set(fields) == {"learning_rate", "epochs", "optimizer"}


def test_the_jobs_default_run_config_is_the_pipelines_context() -> None:
    job = pipelines.configured_job()

    assert job.run_config == {
        "ops": {"configured": {"config": {"learning_rate": 0.1, "epochs": 3}}}
    }


def test_a_run_without_op_config_gives_the_step_the_pipelines_context(
    instance: dg.DagsterInstance, cache_dir: Path
) -> None:
    run = execute(pipelines.configured_job, instance, cache_only(cache_dir))

    assert run.succeeded
    assert settings_seen(instance) == {"learning_rate": 0.1, "epochs": 3, "optimizer": "sgd"}


def test_a_param_overridden_in_run_config_is_the_value_the_step_sees(
    instance: dg.DagsterInstance, cache_dir: Path
) -> None:
    config = run_config(
        pipelines.configured_job(), cache_dir=cache_dir, learning_rate=0.5, optimizer="adam"
    )

    run = execute(pipelines.configured_job, instance, config)

    assert run.succeeded
    assert settings_seen(instance) == {"learning_rate": 0.5, "epochs": 3, "optimizer": "adam"}


def test_overriding_one_param_keeps_the_other_params_from_the_pipelines_context(
    instance: dg.DagsterInstance, cache_dir: Path
) -> None:
    config = LaunchConfig({"ops": {"configured": {"config": {"learning_rate": 0.5}}}}, cache_dir)

    run = execute(pipelines.configured_job, instance, config)

    assert run.succeeded
    assert settings_seen(instance) == {"learning_rate": 0.5, "epochs": 3, "optimizer": "sgd"}


def test_materializing_the_asset_outside_its_pipelines_job_uses_the_pipelines_context(
    instance: dg.DagsterInstance, cache_dir: Path
) -> None:
    run = execute(pipelines.configured_adhoc_job, instance, cache_only(cache_dir))

    assert run.succeeded
    assert settings_seen(instance) == {"learning_rate": 0.1, "epochs": 3, "optimizer": "sgd"}


def test_a_step_shared_by_two_pipelines_gets_each_pipelines_own_context(
    instance: dg.DagsterInstance, cache_dir: Path
) -> None:
    defs = pipelines.definitions(pipelines.SCALED_BY_TWO, pipelines.SCALED_BY_THREE)
    seen = []

    for job_fn in (pipelines.scaled_by_two_job, pipelines.scaled_by_three_job):
        run = execute(job_fn, instance, cache_only(cache_dir))
        assert run.succeeded
        seen.append(defs.load_asset_value(["scaled", "value"], instance=instance))

    assert seen == [2 * 100 + len(b"x"), 3 * 100 + len(b"yyy")]


def test_a_param_value_of_the_wrong_type_is_refused_before_the_run_starts(
    instance: dg.DagsterInstance, cache_dir: Path
) -> None:
    config = run_config(pipelines.configured_job(), cache_dir=cache_dir, epochs="three")

    with pytest.raises(dg.DagsterInvalidConfigError, match="epochs"):
        execute(pipelines.configured_job, instance, config)

    assert instance.get_runs() == []
