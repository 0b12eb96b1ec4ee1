"""Re-execution from failure on the Celery deployment: only the failed unit runs again, on a
worker, its inputs read from the object store; the steps of that unit that had finished before
the failure are cache hits, not run again.

The ``flaky`` pipeline: ``source`` (its own op), then the execution group ``finish``, where
``doubled`` finishes and ``checked`` fails while a marker file exists. The test removes the
marker, as one fixes a fault, and re-executes from failure as the UI's button does.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg
from celery_location import flaky_job
from deploy_support import Deployment, run_log

from flowyml_dagster.constants import CACHE_METADATA_KEY

GROUP = "finish"  # the op of ``doubled`` and ``checked``


def test_reexecution_from_failure_runs_only_the_failed_unit_whose_finished_step_is_a_cache_hit(
    deployment: Deployment, tmp_path: Path
) -> None:
    instance = deployment.instance
    marker = tmp_path / "fault"
    marker.touch()
    config = {"ops": {GROUP: {"config": {"marker": str(marker)}}}}
    with dg.execute_job(dg.reconstructable(flaky_job), instance, run_config=config) as failed:
        assert not failed.success
    marker.unlink()

    options = dg.ReexecutionOptions.from_failure(failed.run_id, instance)
    with dg.execute_job(
        dg.reconstructable(flaky_job), instance, reexecution_options=options
    ) as result:
        assert result.success, result.all_events
        reexecution = run_log(instance, result.run_id)

    original = run_log(instance, failed.run_id)
    assert original.step_keys(dg.DagsterEventType.STEP_SUCCESS) == ["source"]
    assert original.step_keys(dg.DagsterEventType.STEP_FAILURE) == [GROUP]
    assert reexecution.step_keys(dg.DagsterEventType.STEP_START) == [GROUP]
    assert [step for step, _ in reexecution.celery_workers()] == [GROUP]
    cache = {key: m[CACHE_METADATA_KEY] for key, m in reexecution.materializations().items()}
    assert cache == {"flaky/doubled": "hit", "flaky/checked": "miss"}
