"""Pipelines cache on S3 with nothing but a URL and the environment: a re-run hits, by the plain
runner and through Dagster, and nothing Dagster records holds a credential or the cache secret.

Against a real S3 server (SeaweedFS on 127.0.0.1, ``servers.object_store``).
"""

from __future__ import annotations

import dagster as dg
import pytest
from dagster._serdes import serialize_value
from servers.object_store import S3Server

from flowyml import Pipeline, step
from flowyml.core.cache_location import CACHE_SECRET_ENV
from flowyml.core.object_cache_store import ObjectCacheStore
from flowyml_dagster import runner

SECRET = "a-test-secret-of-more-than-thirty-two-characters"


@pytest.fixture
def s3_pipeline(s3_prefix: str, monkeypatch: pytest.MonkeyPatch) -> Pipeline:
    """Two chained steps caching at a fresh S3 prefix."""
    monkeypatch.setenv(CACHE_SECRET_ENV, SECRET)

    @step(outputs=["numbers"])
    def load() -> list[int]:
        return [1, 2, 3]

    @step(inputs=["numbers"], outputs=["total"])
    def add(numbers: list[int]) -> int:
        return sum(numbers)

    return Pipeline("s3_cached", steps=[load, add], cache_dir=s3_prefix)


def test_a_second_plain_run_hits_the_s3_cache(s3_pipeline: Pipeline) -> None:
    first = s3_pipeline.run(progress=False)
    second = s3_pipeline.run(progress=False)

    assert isinstance(s3_pipeline.cache_store, ObjectCacheStore)
    assert [r.cached for r in first.step_results.values()] == [False, False]
    assert [r.cached for r in second.step_results.values()] == [True, True]
    assert second.outputs["total"] == 6
    assert s3_pipeline.cache_stats()["entries"] == 2


def test_a_dagster_rerun_hits_the_s3_cache_and_records_no_credentials(
    s3_pipeline: Pipeline, s3_prefix: str, s3_env: S3Server, instance: dg.DagsterInstance
) -> None:
    runner.run(s3_pipeline, instance=instance, cache_dir=s3_prefix)
    second = runner.run(s3_pipeline, instance=instance, cache_dir=s3_prefix)

    assert [r.cached for r in second.step_results.values()] == [True, True]
    recorded = [serialize_value(run) for run in instance.get_runs()]
    recorded += [
        serialize_value(event)
        for run in instance.get_runs()
        for event in instance.all_logs(run.run_id)
    ]
    secrets = (s3_env.secret_access_key, s3_env.access_key_id, SECRET)
    assert [s for s in secrets if any(s in text for text in recorded)] == []


def test_a_step_with_a_timeout_caches_on_s3_from_its_forked_child(
    s3_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(CACHE_SECRET_ENV, SECRET)

    @step(outputs=["value"], timeout=60)
    def bounded() -> int:
        return 7

    pipeline = Pipeline("s3_bounded", steps=[bounded], cache_dir=s3_prefix)
    pipeline.run(progress=False)

    assert pipeline.run(progress=False).step_results["bounded"].cached
