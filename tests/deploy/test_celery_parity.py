"""A condition skip and an execution group on Celery workers, as on the multiprocess executor."""

from __future__ import annotations

import dagster as dg
import pytest
from celery_location import parity_job
from deploy_support import Deployment, RunLog, run_log
from parity_location import parity_multiprocess_job
from recording import PID_METADATA_KEY

SKIPPED = "parity/published"  # its condition (total > limit) is false
GROUP = "sums"
GROUP_OUTPUTS = {"parity/total", "parity/mean"}


@pytest.fixture(scope="module")
def runs(deployment: Deployment) -> dict[str, RunLog]:
    """The parity pipeline on each executor."""
    logs = {}
    for name, job in (("celery", parity_job), ("multiprocess", parity_multiprocess_job)):
        with dg.execute_job(dg.reconstructable(job), deployment.instance) as result:
            assert result.success, name
            logs[name] = run_log(deployment.instance, result.run_id)
    return logs


def test_a_false_condition_skips_the_step_and_its_dependant_as_on_multiprocess(
    runs: dict[str, RunLog],
) -> None:
    celery, multiprocess = runs["celery"], runs["multiprocess"]
    assert celery.materializations().keys() == {"parity/numbers", *GROUP_OUTPUTS}
    assert celery.materializations().keys() == multiprocess.materializations().keys()
    assert celery.observations()[SKIPPED] == multiprocess.observations()[SKIPPED]
    success, skipped = dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_SKIPPED
    assert sorted(celery.step_keys(success)) == sorted(multiprocess.step_keys(success))
    assert celery.step_keys(skipped) == multiprocess.step_keys(skipped) == ["announce"]


def test_an_execution_group_is_one_task_in_one_process_as_on_multiprocess(
    runs: dict[str, RunLog],
) -> None:
    for name, log in runs.items():
        materializations = log.materializations()
        pids = {materializations[key][PID_METADATA_KEY] for key in GROUP_OUTPUTS}
        assert len(pids) == 1, (name, pids)
    tasks = [step for step, _ in runs["celery"].celery_workers()]
    assert tasks.count(GROUP) == 1
    assert "total" not in tasks and "mean" not in tasks
