"""A value leaves its step through the IO manager's one pickle, not one of flowyml's as well."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import dagster as dg
import dagster_pipelines as pipelines
import numpy as np
from run_support import execute, run_config

import flowyml_dagster
from flowyml import Pipeline, step
from flowyml_dagster import build_definitions


def test_an_output_is_pickled_once_on_its_way_out_of_a_step_when_the_cache_is_off(
    instance: dg.DagsterInstance, tmp_path: Path
) -> None:
    job = pipelines.counted_job()

    run = execute(
        pipelines.counted_job,
        instance,
        run_config(job, cache_dir=tmp_path / "cache", workdir=str(tmp_path)),
    )

    assert run.succeeded
    assert len((tmp_path / "pickles.log").read_text().splitlines()) == 1


class RefusesPickling:
    """Pickling refuses it with a ``ValueError``, as it does a ctypes pointer."""

    def __reduce__(self) -> tuple[Any, ...]:
        raise ValueError("no pickling for this one")


def test_a_value_that_fails_to_pickle_leaves_the_assets_last_good_value(
    instance: dg.DagsterInstance,
) -> None:
    @step(outputs=["kept/value"], cache=False, register=False)
    def produce(broken: bool = False) -> Any:
        return (np.ones(100_000), threading.Lock()) if broken else [1, 2, 3]

    pipeline = Pipeline("kept", steps=[produce])
    assert flowyml_dagster.run(pipeline, instance=instance).success

    failed = flowyml_dagster.run(pipeline, context={"broken": True}, instance=instance)

    assert not failed.success
    stored = build_definitions([pipeline]).load_asset_value(
        dg.AssetKey(["kept", "value"]), instance=instance
    )
    assert stored == [1, 2, 3]


def test_a_value_pickling_refuses_with_any_error_is_named_and_not_retried(
    instance: dg.DagsterInstance,
) -> None:
    calls: list[str] = []

    @step(outputs=["refused/value"], retry=2, cache=False, register=False)
    def produce() -> RefusesPickling:
        calls.append("produce")
        return RefusesPickling()

    result = flowyml_dagster.run(Pipeline("refused", steps=[produce]), instance=instance)

    error = result.step_results["produce"].error
    assert error is not None
    assert "StepOutputError" in error
    assert "output 'refused/value' (RefusesPickling) cannot be pickled" in error
    assert calls == ["produce"]
