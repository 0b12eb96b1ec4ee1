"""The flowyml cache under Dagster: a second run is all hits, with the first run's data versions."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import dagster_pipelines as pipelines
import pytest
from dagster._core.definitions.data_version import extract_data_version_from_entry
from run_support import Run, execute, lines, metadata_values, run_config

from flowyml_dagster.constants import CACHE_METADATA_KEY

KEYS = (dg.AssetKey(["cached", "base"]), dg.AssetKey(["cached", "doubled"]))
DATA_VERSION_TAG = "dagster/data_version"


@dataclass(frozen=True)
class TwoRuns:
    first: Run
    second: Run
    workdir: Path


@pytest.fixture(scope="module")
def two_runs(module_instance: dg.DagsterInstance, module_tmp: Path) -> TwoRuns:
    """The same job run twice with the same cache directory and run config."""
    workdir = module_tmp / "work"
    workdir.mkdir()
    config = run_config(
        pipelines.cached_job(), cache_dir=module_tmp / "step-cache", workdir=str(workdir)
    )
    first = execute(pipelines.cached_job, module_instance, config)
    second = execute(pipelines.cached_job, module_instance, config)
    return TwoRuns(first, second, workdir)


def test_the_first_run_computes_every_step_and_records_cache_misses(two_runs: TwoRuns) -> None:
    materializations = two_runs.first.materializations()

    assert two_runs.first.succeeded
    assert {metadata_values(materializations[k])[CACHE_METADATA_KEY] for k in KEYS} == {"miss"}


def test_the_second_run_is_all_cache_hits(two_runs: TwoRuns) -> None:
    materializations = two_runs.second.materializations()

    assert two_runs.second.succeeded
    assert set(materializations) == set(KEYS)
    assert {metadata_values(materializations[k])[CACHE_METADATA_KEY] for k in KEYS} == {"hit"}


def test_a_cache_hit_does_not_call_the_step_function(two_runs: TwoRuns) -> None:
    assert len(lines(two_runs.workdir / "cached_base.calls")) == 1
    assert len(lines(two_runs.workdir / "cached_double.calls")) == 1


def test_a_cache_hit_records_the_data_version_of_the_run_that_computed_it(
    two_runs: TwoRuns,
) -> None:
    first = two_runs.first.materializations()
    second = two_runs.second.materializations()

    for key in KEYS:
        assert first[key].tags[DATA_VERSION_TAG] == second[key].tags[DATA_VERSION_TAG]
        latest = two_runs.second.instance.get_latest_data_version_record(key)
        assert latest is not None
        assert latest.run_id == two_runs.second.run_id
        assert extract_data_version_from_entry(latest.event_log_entry) == dg.DataVersion(
            first[key].tags[DATA_VERSION_TAG]
        )


def test_a_cache_hit_stores_the_same_value_as_the_computed_run(two_runs: TwoRuns) -> None:
    defs = pipelines.definitions(pipelines.CACHED)
    value = defs.load_asset_value(KEYS[1], instance=two_runs.second.instance)

    assert value == [2, 4, 6]
