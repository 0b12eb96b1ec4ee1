"""A value leaves its step through the IO manager's one pickle, not one of flowyml's as well."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import dagster_pipelines as pipelines
from run_support import execute, run_config


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
