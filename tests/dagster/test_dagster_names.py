"""Names Dagster refuses are sanitised the same way every time; names that would clash are
errors at ``build_definitions`` time, naming both steps."""

from __future__ import annotations

import re
from pathlib import Path

import dagster as dg
import dagster_pipelines as pipelines
import pytest
from dagster import DagsterEventType
from run_support import execute, run_config

from flowyml import Pipeline, PipelineDefinitionError, Step, step
from flowyml_dagster import FlowymlTranslator, build_definitions


def test_step_names_dagster_refuses_become_valid_op_names() -> None:
    job = pipelines.odd_names_job()

    assert sorted(node.name for node in job.graph.nodes) == ["context_", "train_model_v2"]


def test_sanitised_names_are_the_same_on_every_build() -> None:
    def names() -> tuple[list[str], list[str], list[dg.AssetKey]]:
        defs = pipelines.definitions(pipelines.ODD_NAMES)
        job = defs.resolve_job_def("odd_names_pipeline_1")
        return (
            [job.name],
            sorted(node.name for node in job.graph.nodes),
            sorted(defs.resolve_asset_graph().get_all_asset_keys()),
        )

    assert names() == names()


def test_steps_with_refused_names_run_and_store_their_values(
    instance: dg.DagsterInstance, cache_dir: Path
) -> None:
    config = run_config(pipelines.odd_names_job(), cache_dir=cache_dir)

    run = execute(pipelines.odd_names_job, instance, config)

    assert run.succeeded
    assert sorted(run.step_keys(DagsterEventType.STEP_SUCCESS)) == ["context_", "train_model_v2"]
    defs = pipelines.definitions(pipelines.ODD_NAMES)
    assert defs.load_asset_value(["train-model v2"], instance=instance) == 41
    assert defs.load_asset_value(["context"], instance=instance) == 42


def test_two_steps_whose_op_names_would_clash_are_an_error_naming_both() -> None:
    @step(name="a-b", outputs=["first"], register=False)
    def dashed() -> int:
        return 1

    @step(name="a_b", outputs=["second"], register=False)
    def underscored() -> int:
        return 2

    pipeline = Pipeline("clash", steps=[dashed, underscored])

    with pytest.raises(PipelineDefinitionError, match=r"'a-b'.*'a_b'|'a_b'.*'a-b'"):
        build_definitions([pipeline])


def test_two_outputs_with_the_same_asset_key_are_an_error_naming_both_steps() -> None:
    class LastSegment(FlowymlTranslator):
        def get_asset_key(self, step: Step, output_name: str) -> dg.AssetKey:
            return dg.AssetKey(output_name.rpartition("/")[2])

    @step(outputs=["a/train"], register=False)
    def make_train() -> int:
        return 1

    @step(outputs=["b/train"], register=False)
    def make_train_again() -> int:
        return 2

    pipeline = Pipeline("same_key", steps=[make_train, make_train_again])

    with pytest.raises(PipelineDefinitionError) as raised:
        build_definitions([pipeline], translator=LastSegment())

    assert "'make_train'" in str(raised.value)
    assert "'make_train_again'" in str(raised.value)


def test_two_pipelines_whose_job_names_would_clash_are_an_error_naming_both() -> None:
    @step(register=False)
    def only() -> int:
        return 1

    dashed = Pipeline("nightly-run", steps=[only])
    spaced = Pipeline("nightly run", steps=[only])

    with pytest.raises(PipelineDefinitionError, match=re.escape("'nightly-run' and 'nightly run'")):
        build_definitions([dashed, spaced])


def test_a_value_that_is_the_folder_of_another_is_refused_by_build_definitions() -> None:
    @step(outputs=["data"], register=False)
    def whole() -> int:
        return 1

    @step(inputs=["data"], outputs=["data/train"], register=False)
    def part(data: int) -> int:
        return data

    with pytest.raises(PipelineDefinitionError, match=r"'data' .* and 'data/train'"):
        build_definitions([Pipeline("nested", steps=[whole, part])])
