"""The cache location is fixed by the code location, not by whoever launches a run: run config
that tries to point the cache resource at another folder is refused before the run starts."""

from __future__ import annotations

import dagster as dg
import dagster_pipelines as pipelines
import pytest
from run_support import LaunchConfig, execute

from flowyml_dagster import FlowymlCacheResource, build_definitions
from flowyml_dagster.constants import CACHE_RESOURCE_KEY


def test_run_config_cannot_choose_the_cache_directory(
    instance: dg.DagsterInstance, tmp_path: object
) -> None:
    config = LaunchConfig(
        {"resources": {CACHE_RESOURCE_KEY: {"config": {"cache_dir": "/tmp/attacker"}}}}, None
    )

    with pytest.raises(dg.DagsterInvalidConfigError, match=CACHE_RESOURCE_KEY):
        execute(pipelines.lineage_job, instance, config)

    assert instance.get_runs() == []


def test_the_cache_directory_given_in_code_is_the_resources() -> None:
    defs = build_definitions([pipelines.LINEAGE], cache_dir="/srv/flowyml-cache")

    resource = defs.resolve_job_def("lineage").resource_defs[CACHE_RESOURCE_KEY]

    assert resource.resource_fn(None) == FlowymlCacheResource("/srv/flowyml-cache", True)
