"""A value leaves its step through one pickle: the IO manager's, or with the cache on the cache
entry's, which the IO manager stores under a second name (a hard link) instead of pickling the
value again."""

from __future__ import annotations

import pickle
import threading
from pathlib import Path
from typing import Any

import dagster as dg
import dagster_pipelines as pipelines
import numpy as np
from run_support import Run, execute, lines, run_config

import flowyml_dagster
from flowyml import CacheStore, Pipeline, step
from flowyml.core.serialization import dump_outputs
from flowyml_dagster import build_definitions
from flowyml_dagster.storage import StepValueIOManager, offered_entry

COUNTED_VALUE = dg.AssetKey(["counted", "value"])


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


def run_counted_with_cache(instance: dg.DagsterInstance, tmp_path: Path) -> Run:
    job = pipelines.counted_cached_job()
    config = run_config(job, cache_dir=tmp_path / "cache", workdir=str(tmp_path))
    return execute(pipelines.counted_cached_job, instance, config)


def test_with_the_cache_on_an_output_is_pickled_once_for_the_cache_and_the_io_manager(
    instance: dg.DagsterInstance, tmp_path: Path
) -> None:
    run = run_counted_with_cache(instance, tmp_path)

    assert run.succeeded
    assert len(lines(tmp_path / "pickles.log")) == 1


def test_the_stored_value_is_its_cache_entry_under_a_second_name(
    instance: dg.DagsterInstance, tmp_path: Path
) -> None:
    assert run_counted_with_cache(instance, tmp_path).succeeded

    stored = Path(instance.storage_directory(), *COUNTED_VALUE.path)
    entries = {entry.stat().st_ino for entry in (tmp_path / "cache").rglob("*.pkl")}
    assert stored.stat().st_ino in entries
    loaded = build_definitions([pipelines.COUNTED]).load_asset_value(
        COUNTED_VALUE, instance=instance
    )
    assert isinstance(loaded, pipelines.PickleCounter)
    seen = dg.AssetKey(["counted", "seen"])
    assert build_definitions([pipelines.COUNTED]).load_asset_value(seen, instance=instance) == (
        "PickleCounter"
    )


def test_a_run_of_cache_hits_pickles_no_output(
    instance: dg.DagsterInstance, tmp_path: Path
) -> None:
    assert run_counted_with_cache(instance, tmp_path).succeeded

    rerun = run_counted_with_cache(instance, tmp_path)

    assert rerun.succeeded
    assert len(lines(tmp_path / "pickles.log")) == 1  # the first run's


def test_storing_a_cache_hit_again_leaves_one_name_in_storage(
    instance: dg.DagsterInstance, tmp_path: Path
) -> None:
    for _ in range(3):
        assert run_counted_with_cache(instance, tmp_path).succeeded

    stored = Path(instance.storage_directory(), *COUNTED_VALUE.path)
    assert sorted(path.name for path in stored.parent.iterdir()) == ["seen", "value"]
    assert stored.stat().st_nlink == 2  # the cache entry and the stored value


def test_an_offered_entry_that_cannot_be_linked_is_pickled_as_usual(tmp_path: Path) -> None:
    store = CacheStore(tmp_path / "cache")
    value = [1, 2, 3]
    _, entry = store.put_pinned("key", lambda file: dump_outputs("s", {"v": value}, file), 0)
    assert entry is not None
    store.path_for("key").unlink()  # a removed file cannot be given another name
    manager = StepValueIOManager(str(tmp_path / "storage"))

    with offered_entry(value, entry):
        manager.handle_output(dg.build_output_context(asset_key=dg.AssetKey("v")), value)

    assert pickle.loads((tmp_path / "storage" / "v").read_bytes()) == [1, 2, 3]


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
