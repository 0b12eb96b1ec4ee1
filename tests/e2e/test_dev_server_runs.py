"""Runs of the training job launched through ``dagster dev``'s GraphQL API.

The instance has Dagster's default (queued) run coordinator, so a launched run waits in the queue
until the daemon dequeues it; the job's executor runs every op in a process of its own. The first
test runs on each instance storage: Dagster's default SQLite files, and PostgreSQL. On SQLite that
first run, with the job's defaults, is the one that fills the step cache (every other training
launch here comes after it) and makes the model batch scoring uses. The promotion step's
condition reads ``min_accuracy`` from the op's run config, as a user would set it in the
Launchpad; a re-launch with a threshold that is met serves both the cache test (the threshold is
read by the condition alone, so every step is a hit) and the promotion test.

Dagster itself recomputes every asset of a job; the flowyml step body looks the step up in its
cache and, on a hit, records the stored value with ``flowyml/cache: hit`` in the
materialization's metadata.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from e2e_support import Deployment, RunEvents, run_to_completion

from flowyml_dagster.constants import CACHE_METADATA_KEY

TRAINING_OPS = {"load_digits", "preprocessing", "train", "evaluate", "promote", "report"}

MET_THRESHOLD = 0.5

pytestmark = pytest.mark.timeout(600)


DEPLOYMENT_OF_STORAGE = {"sqlite": "examples_dev", "postgres": "postgres_dev"}


@pytest.fixture(scope="module")
def training_run_on(request: pytest.FixtureRequest) -> Callable[[str], tuple[str, RunEvents]]:
    """The training job launched with its defaults once per instance storage in this module (on
    first use; ~1 min each on a loaded machine): ``(final status, events)`` of that run."""
    runs: dict[str, tuple[str, RunEvents]] = {}

    def launched(storage: str) -> tuple[str, RunEvents]:
        if storage not in runs:
            deployment: Deployment = request.getfixturevalue(DEPLOYMENT_OF_STORAGE[storage])
            _, status, events = run_to_completion(deployment.client, "training")
            runs[storage] = (status, events)
        return runs[storage]

    return launched


@pytest.fixture(scope="module")
def relaunch_with_threshold_met(
    examples_dev: Deployment, training_run_on: Callable[[str], tuple[str, RunEvents]]
) -> tuple[str, RunEvents]:
    """The training job launched again on SQLite, after the first run, with the promotion
    threshold set to 0.5 in run config: ``(final status, events)``."""
    training_run_on("sqlite")
    _, status, events = run_to_completion(
        examples_dev.client, "training", run_config=_with_min_accuracy(MET_THRESHOLD)
    )
    return status, events


def _with_min_accuracy(min_accuracy: float) -> dict[str, Any]:
    """Run config setting the promote op's threshold (the rest keeps the job's defaults)."""
    return {"ops": {"promote": {"config": {"min_accuracy": min_accuracy}}}}


def _succeeded(status: str, events: RunEvents) -> None:
    assert status == "SUCCESS", events.failure_summary()


@pytest.mark.parametrize("storage", list(DEPLOYMENT_OF_STORAGE))
def test_training_run_succeeds_through_the_queue_and_multiprocess_executor(
    training_run_on: Callable[[str], tuple[str, RunEvents]], storage: str
) -> None:
    status, events = training_run_on(storage)

    _succeeded(status, events)
    kinds = [e["eventType"] for e in events.events if e.get("eventType")]
    assert "RUN_ENQUEUED" in kinds  # queued, so only the daemon can have started it
    assert any("using multiprocess executor" in m for m in events.messages())
    run_worker = set(events.process_ids("Started process for run"))
    step_processes = set(events.process_ids("Capturing logs for process"))
    assert len(run_worker) == 1
    assert len(step_processes) == len(TRAINING_OPS)  # one process per op ...
    assert not step_processes & run_worker  # ... none of them the run worker
    succeeded = {e["stepKey"] for e in events.events if e.get("eventType") == "STEP_SUCCESS"}
    assert succeeded == TRAINING_OPS


def test_relaunch_of_training_reuses_every_cached_output(
    training_run_on: Callable[[str], tuple[str, RunEvents]],
    relaunch_with_threshold_met: tuple[str, RunEvents],
) -> None:
    first_status, first = training_run_on("sqlite")
    second_status, second = relaunch_with_threshold_met

    assert (first_status, second_status) == ("SUCCESS", "SUCCESS"), (
        first.failure_summary() + "\n" + second.failure_summary()
    )
    first_cache = {key: meta[CACHE_METADATA_KEY] for key, meta in first.materializations().items()}
    second_cache = {
        key: meta[CACHE_METADATA_KEY] for key, meta in second.materializations().items()
    }
    assert set(first_cache.values()) == {"miss"}  # a fresh cache: everything computed
    assert second_cache == dict.fromkeys(first_cache, "hit")


def test_promotion_is_skipped_when_accuracy_is_below_threshold(
    examples_dev: Deployment, training_run_on: Callable[[str], tuple[str, RunEvents]]
) -> None:
    _succeeded(*training_run_on("sqlite"))  # the run with the defaults fills the cache first
    threshold = 0.999
    _, status, events = run_to_completion(
        examples_dev.client, "training", run_config=_with_min_accuracy(threshold)
    )

    _succeeded(status, events)
    materialized = events.materializations()
    assert materialized["metrics/evaluation"]["accuracy"] < threshold
    assert "model/promoted" not in materialized
    assert "report/training" in materialized  # the rest of the pipeline still ran
    assert "step 'promote' skipped: its condition is false" in events.messages("promote")


def test_promotion_materializes_when_accuracy_meets_threshold(
    relaunch_with_threshold_met: tuple[str, RunEvents],
) -> None:
    status, events = relaunch_with_threshold_met

    _succeeded(status, events)
    materialized = events.materializations()
    assert "model/promoted" in materialized
    promoted_accuracy = materialized["model/promoted"]["accuracy"]
    assert promoted_accuracy == materialized["metrics/evaluation"]["accuracy"]
    assert promoted_accuracy >= MET_THRESHOLD


def test_batch_scoring_uses_the_model_a_training_run_materialized(
    examples_dev: Deployment, training_run_on: Callable[[str], tuple[str, RunEvents]]
) -> None:
    _succeeded(*training_run_on("sqlite"))

    _, status, events = run_to_completion(examples_dev.client, "batch_scoring")

    _succeeded(status, events)
    predictions = events.materializations()["predictions/batch"]
    assert predictions["rows"] == 1797  # one prediction per image of the digits data set
