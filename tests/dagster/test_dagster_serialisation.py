"""A value leaves its step pickled once: by the IO manager with the cache off; with the cache on,
by the cache write, whose pickle the IO manager copies."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import dagster as dg
import dagster_pipelines as pipelines
import numpy as np
import pandas as pd
import pytest
from run_support import Run, execute, metadata_values, run_config

import flowyml_dagster
from flowyml import Pipeline, step
from flowyml_dagster import build_definitions
from flowyml_dagster.constants import CACHE_METADATA_KEY


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


def test_an_output_is_pickled_once_on_its_way_out_of_a_step_when_the_cache_is_on(
    instance: dg.DagsterInstance, tmp_path: Path
) -> None:
    job = pipelines.counted_cached_job()

    run = execute(
        pipelines.counted_cached_job,
        instance,
        run_config(job, cache_dir=tmp_path / "cache", workdir=str(tmp_path)),
    )

    assert run.succeeded
    assert (
        metadata_values(run.materializations()[dg.AssetKey(["counted", "value"])])[
            CACHE_METADATA_KEY
        ]
        == "miss"
    )
    assert len((tmp_path / "pickles.log").read_text().splitlines()) == 1


SHARED_KEYS = [dg.AssetKey(["shared", n]) for n in ("train", "test", "summary")]


@pytest.fixture(scope="module")
def shared_runs(module_instance: dg.DagsterInstance, module_tmp: Path) -> list[Run]:
    """The two-output pipeline run twice on one cache: computed, then all cache hits."""
    config = run_config(pipelines.shared_job(), cache_dir=module_tmp / "shared-cache")
    return [execute(pipelines.shared_job, module_instance, config) for _ in range(2)]


def expected_shared() -> dict[dg.AssetKey, object]:
    train, test = pipelines.split_data.func()
    summary = {"train": float(train.sum()), "test": float(test["x"].sum()), "rows": len(test)}
    return dict(zip(SHARED_KEYS, (train, test, summary), strict=True))


def assert_equal_values(stored: object, expected: object) -> None:
    if isinstance(expected, np.ndarray):
        np.testing.assert_array_equal(stored, expected)  # type: ignore[arg-type]
    elif isinstance(expected, pd.DataFrame):
        pd.testing.assert_frame_equal(stored, expected)  # type: ignore[arg-type]
    else:
        assert stored == expected


def test_values_whose_pickles_the_io_manager_copied_from_the_cache_load_equal(
    shared_runs: list[Run],
) -> None:
    first = shared_runs[0]
    defs = pipelines.definitions(pipelines.SHARED)

    assert first.succeeded
    assert {metadata_values(m)[CACHE_METADATA_KEY] for m in first.materializations().values()} == {
        "miss"
    }
    for key, expected in expected_shared().items():
        assert_equal_values(defs.load_asset_value(key, instance=first.instance), expected)


def test_a_rerun_of_cache_hits_stores_and_passes_on_the_same_values(
    shared_runs: list[Run],
) -> None:
    second = shared_runs[1]
    defs = pipelines.definitions(pipelines.SHARED)

    assert second.succeeded
    assert {metadata_values(m)[CACHE_METADATA_KEY] for m in second.materializations().values()} == {
        "hit"
    }
    for key, expected in expected_shared().items():
        assert_equal_values(defs.load_asset_value(key, instance=second.instance), expected)


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
