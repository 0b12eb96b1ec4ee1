"""A false ``condition``: no output, every dependant is skipped, and the run still succeeds."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import dagster_pipelines as pipelines
import pytest
from dagster import DagsterEventType
from run_support import Run, execute, lines, run_config

from flowyml_dagster.constants import SKIPPED_METADATA_KEY

GATE = dg.AssetKey(["gate", "value"])
INDEPENDENT = dg.AssetKey(["gate", "independent"])


@pytest.fixture(scope="module")
def gate_closed(module_instance: dg.DagsterInstance, module_tmp: Path) -> Run:
    """A run with the pipeline's context, where ``enabled`` is False."""
    workdir = module_tmp / "closed"
    workdir.mkdir()
    config = run_config(
        pipelines.conditional_job(), cache_dir=module_tmp / "step-cache", workdir=str(workdir)
    )
    return execute(pipelines.conditional_job, module_instance, config)


def test_a_run_with_a_false_condition_succeeds(gate_closed: Run) -> None:
    assert gate_closed.succeeded


def test_a_step_whose_condition_is_false_materializes_nothing_and_is_not_called(
    gate_closed: Run, module_tmp: Path
) -> None:
    assert gate_closed.step_keys(DagsterEventType.STEP_SUCCESS).count("gated") == 1
    assert GATE not in gate_closed.materializations()
    assert lines(module_tmp / "closed" / "gated.calls") == []


def test_every_step_downstream_of_a_false_condition_is_step_skipped(gate_closed: Run) -> None:
    assert sorted(gate_closed.step_keys(DagsterEventType.STEP_SKIPPED)) == [
        "after_gate",
        "last_after_gate",
    ]


def test_steps_independent_of_a_false_condition_still_run(gate_closed: Run) -> None:
    assert set(gate_closed.materializations()) == {INDEPENDENT}


def test_the_condition_reads_the_run_config_so_a_true_value_runs_every_step(
    instance: dg.DagsterInstance, workdir: Path, cache_dir: Path
) -> None:
    config = run_config(
        pipelines.conditional_job(), cache_dir=cache_dir, workdir=str(workdir), enabled=True
    )

    run = execute(pipelines.conditional_job, instance, config)

    assert run.succeeded
    assert run.step_keys(DagsterEventType.STEP_SKIPPED) == []
    assert len(run.materializations()) == 4
    defs = pipelines.definitions(pipelines.CONDITIONAL)
    assert defs.load_asset_value(["gate", "last"], instance=instance) == 3


def test_a_skipped_step_records_why_on_its_asset(gate_closed: Run) -> None:
    observations = gate_closed.events(DagsterEventType.ASSET_OBSERVATION)

    assert [o.asset_observation_data.asset_observation.asset_key for o in observations] == [GATE]
    metadata = observations[0].asset_observation_data.asset_observation.metadata
    assert metadata[SKIPPED_METADATA_KEY].value == "condition of step 'gated' is false"
