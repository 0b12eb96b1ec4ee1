"""A job launched before the job that produces its input fails saying what to run first.

Dagster's own error is a ``FileNotFoundError`` of a path under the instance's storage; the step
fails instead with a ``Failure`` naming the asset and the pipeline (and job) that produces it,
not retried: retrying will not make the value appear.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import dagster_pipelines as pipelines
from dagster import DagsterEventType
from run_support import Run, execute, run_config

TRAINED = dg.AssetKey(["model", "trained"])


def scoring(instance: dg.DagsterInstance, cache_dir: Path) -> Run:
    job = pipelines.scoring_job()
    return execute(pipelines.scoring_job, instance, run_config(job, cache_dir=cache_dir))


def test_an_input_never_materialized_fails_the_step_naming_the_asset_and_its_pipeline(
    instance: dg.DagsterInstance, cache_dir: Path
) -> None:
    run = scoring(instance, cache_dir)

    assert run.status is dg.DagsterRunStatus.FAILURE
    failure = run.failure("score")
    assert failure.error.cls_name == "Failure"
    assert failure.user_failure_data.description == (
        "asset 'model/trained' has never been materialized; materialize it by running pipeline "
        "'training' (job 'training') first"
    )


def test_an_input_never_materialized_is_not_retried(
    instance: dg.DagsterInstance, cache_dir: Path
) -> None:
    run = scoring(instance, cache_dir)

    assert run.step_keys(DagsterEventType.STEP_UP_FOR_RETRY) == []
    assert run.step_keys(DagsterEventType.STEP_FAILURE) == ["score"]


def test_an_input_whose_stored_value_is_gone_says_so_and_what_made_it(
    instance: dg.DagsterInstance, cache_dir: Path
) -> None:
    training = execute(
        pipelines.training_job, instance, run_config(pipelines.training_job(), cache_dir=cache_dir)
    )
    stored = Path(instance.storage_directory(), *TRAINED.path)
    stored.unlink()

    run = scoring(instance, cache_dir)

    assert training.succeeded
    assert (
        f"asset 'model/trained' was materialized (run {training.run_id}) but its value is "
        f"gone from {stored}; materialize it by running pipeline 'training'"
        in run.failure_text("score")
    )


def test_a_pipeline_input_never_supplied_fails_the_step_naming_the_input(
    instance: dg.DagsterInstance, cache_dir: Path
) -> None:
    job = pipelines.external_input_job()

    run = execute(pipelines.external_input_job, instance, run_config(job, cache_dir=cache_dir))

    assert "asset 'raw/upload' has never been materialized; it is pipeline input 'raw/upload'" in (
        run.failure_text("clean")
    )
