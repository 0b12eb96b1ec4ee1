"""The example training pipeline on Celery workers, with a Postgres instance and its cache and
values on the object store."""

from __future__ import annotations

import os

import dagster as dg
import pytest
from celery_location import training_job
from deploy_support import Deployment, RunLog, run_log
from recording import PID_METADATA_KEY

from flowyml_dagster.constants import CACHE_METADATA_KEY

GPU_STEP = "train"  # the example's one unit that asks for a GPU


@pytest.fixture(scope="module")
def first_training(deployment: Deployment) -> RunLog:
    """The training pipeline launched once on the workers (the cache may be cold or warm)."""
    with dg.execute_job(dg.reconstructable(training_job), deployment.instance) as result:
        assert result.success, result.all_events
        return run_log(deployment.instance, result.run_id)


def test_the_training_pipeline_succeeds_with_every_unit_in_a_worker_process(
    deployment: Deployment, first_training: RunLog
) -> None:
    materializations = first_training.materializations()
    pids = {key: metadata[PID_METADATA_KEY] for key, metadata in materializations.items()}
    worker_pids = deployment.default_worker.pids() | deployment.gpu_worker.pids()
    assert "model/classifier" in pids and "report/training" in pids
    assert os.getpid() not in pids.values()
    assert set(pids.values()) <= worker_pids, (pids, worker_pids)


def test_the_values_and_the_cache_entries_are_on_the_object_store_and_none_on_a_local_disk(
    deployment: Deployment, first_training: RunLog
) -> None:
    storage = deployment.storage
    values = storage.objects(storage.values_prefix)
    entries = storage.objects(storage.cache_prefix)
    assert set(first_training.materializations()) <= values, values
    assert entries and all(name.endswith(".pkl") for name in entries), entries
    assert not deployment.user_cache.exists()


def test_a_relaunch_is_all_cache_hits_served_from_the_object_store(
    deployment: Deployment, first_training: RunLog
) -> None:
    storage = deployment.storage
    entries_before = storage.objects(storage.cache_prefix)

    with dg.execute_job(dg.reconstructable(training_job), deployment.instance) as result:
        assert result.success
        relaunch = run_log(deployment.instance, result.run_id)

    cache = {key: m[CACHE_METADATA_KEY] for key, m in relaunch.materializations().items()}
    assert cache.keys() == first_training.materializations().keys()
    assert set(cache.values()) == {"hit"}, cache
    assert storage.objects(storage.cache_prefix) == entries_before  # read, nothing written
    assert not deployment.user_cache.exists()  # no local cache to have hit instead


def test_a_unit_that_requests_a_gpu_runs_on_the_gpu_queues_worker(
    deployment: Deployment, first_training: RunLog
) -> None:
    nodes = dict(first_training.celery_workers())
    assert nodes[GPU_STEP].startswith(f"{deployment.gpu_worker.name}@")
    others = {step: node for step, node in nodes.items() if step != GPU_STEP}
    assert others and all(
        n.startswith(f"{deployment.default_worker.name}@") for n in others.values()
    )
