"""Steps become assets: one per output, lineage from declared inputs, external pipeline inputs."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import dagster_pipelines as pipelines
import pytest
from run_support import Run, execute, run_config

from flowyml import Pipeline

TRAIN = dg.AssetKey(["data", "train"])
TEST = dg.AssetKey(["data", "test"])
FITTED = dg.AssetKey(["model", "fitted"])
EVALUATE = dg.AssetKey(["evaluate"])


def key_of(name: str) -> dg.AssetKey:
    """The asset key of an output or input name: its ``/``-separated segments."""
    return dg.AssetKey([segment for segment in name.split("/") if segment])


@pytest.fixture(scope="module")
def lineage_run(module_instance: dg.DagsterInstance, module_tmp: Path) -> Run:
    config = run_config(pipelines.lineage_job(), cache_dir=module_tmp / "step-cache")
    return execute(pipelines.lineage_job, module_instance, config)


def test_each_output_of_a_step_is_an_asset_keyed_by_its_path_segments(lineage_run: Run) -> None:
    defs = pipelines.definitions(pipelines.LINEAGE)

    assert lineage_run.succeeded
    assert lineage_run.materialized_by()[TRAIN] == "split_rows"
    assert lineage_run.materialized_by()[TEST] == "split_rows"
    assert defs.load_asset_value(TRAIN, instance=lineage_run.instance) == list(range(8))
    assert defs.load_asset_value(TEST, instance=lineage_run.instance) == [8, 9]


def test_a_step_without_outputs_is_one_asset_named_after_the_step(lineage_run: Run) -> None:
    defs = pipelines.definitions(pipelines.LINEAGE)

    assert lineage_run.succeeded
    assert lineage_run.materialized_by()[EVALUATE] == "evaluate"
    assert defs.load_asset_value(EVALUATE, instance=lineage_run.instance) == 5.0


def test_asset_dependencies_are_the_declared_inputs_of_each_step() -> None:
    graph = pipelines.definitions(pipelines.LINEAGE).resolve_asset_graph()

    deps = {key: graph.get(key).parent_keys for key in graph.get_all_asset_keys()}

    assert deps == {
        TRAIN: set(),
        TEST: set(),
        FITTED: {TRAIN},
        EVALUATE: {FITTED, TEST},
    }


@pytest.mark.parametrize("pipeline", pipelines.PIPELINES, ids=lambda p: p.name)
def test_every_asset_depends_on_exactly_the_outputs_its_step_declares_as_inputs(
    pipeline: Pipeline,
) -> None:
    graph = pipelines.definitions(pipeline).resolve_asset_graph()

    declared = {
        key_of(output): {key_of(name) for name in step.inputs}
        for step in pipeline.steps
        for output in step.output_names
    }

    assert {key: graph.get(key).parent_keys for key in declared} == declared


def test_a_pipeline_input_nobody_produces_is_an_external_asset_that_cannot_be_materialized() -> (
    None
):
    graph = pipelines.definitions(pipelines.EXTERNAL_INPUT).resolve_asset_graph()
    upload = dg.AssetKey(["raw", "upload"])

    assert graph.get(dg.AssetKey(["data", "clean"])).parent_keys == {upload}
    assert graph.get(upload).is_external
    assert not graph.get(upload).is_materializable
    assert upload not in graph.materializable_asset_keys


def test_a_run_reads_a_pipeline_input_from_its_external_asset(
    instance: dg.DagsterInstance, cache_dir: Path
) -> None:
    upload = dg.AssetKey(["raw", "upload"])

    @dg.asset(key=upload)
    def uploaded() -> list[int]:
        return [3, -1, 2]

    assert dg.materialize([uploaded], instance=instance).success
    job = pipelines.external_input_job()

    run = execute(pipelines.external_input_job, instance, run_config(job, cache_dir=cache_dir))

    assert run.succeeded
    assert list(run.materializations()) == [dg.AssetKey(["data", "clean"])]
    defs = pipelines.definitions(pipelines.EXTERNAL_INPUT)
    assert defs.load_asset_value(dg.AssetKey(["data", "clean"]), instance=instance) == [2, 3]
