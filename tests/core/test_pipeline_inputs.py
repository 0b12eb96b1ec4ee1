"""Pipeline inputs: names no step produces, given to ``run(inputs=...)``."""

from __future__ import annotations

import pytest
from core_support import CallLog

from flowyml import MissingPipelineInputError, Pipeline, PipelineDefinitionError, step


def test_an_input_no_step_produces_is_a_pipeline_input() -> None:
    @step(inputs=["data/external"], outputs=["total"])
    def total(rows: list[int]) -> int:
        return sum(rows)

    graph = Pipeline("inputs").add_step(total).build()

    assert graph.pipeline_inputs == ("data/external",)


def test_a_pipeline_input_is_given_to_run() -> None:
    @step(inputs=["data/external"], outputs=["total"])
    def total(rows: list[int]) -> int:
        return sum(rows)

    result = Pipeline("inputs").add_step(total).run(inputs={"data/external": [1, 2, 3]})

    assert result["total"] == 6


def test_a_pipeline_input_can_feed_several_steps() -> None:
    @step(inputs=["rows"], outputs=["total"])
    def total(rows: list[int]) -> int:
        return sum(rows)

    @step(inputs=["rows"], outputs=["count"])
    def count(rows: list[int]) -> int:
        return len(rows)

    result = Pipeline("inputs").add_step(total).add_step(count).run(inputs={"rows": [4, 5]})

    assert (result["total"], result["count"]) == (9, 2)


def test_a_missing_pipeline_input_fails_before_any_step_runs(calls: CallLog) -> None:
    @step(outputs=["data/local"])
    def load() -> list[int]:
        calls.record("load")
        return [1]

    @step(inputs=["data/local", "data/external"], outputs=["joined"])
    def join(local: list[int], external: list[int]) -> list[int]:
        calls.record("join")
        return local + external

    pipeline = Pipeline("inputs").add_step(load).add_step(join)

    with pytest.raises(MissingPipelineInputError) as raised:
        pipeline.run()

    assert "data/external" in str(raised.value)
    assert isinstance(raised.value, PipelineDefinitionError)
    assert calls.names() == []


def test_an_input_produced_by_a_step_is_not_a_pipeline_input() -> None:
    @step(outputs=["rows"])
    def load() -> list[int]:
        return [1]

    @step(inputs=["rows"], outputs=["total"])
    def total(rows: list[int]) -> int:
        return sum(rows)

    pipeline = Pipeline("inputs").add_step(total).add_step(load)

    assert pipeline.build().pipeline_inputs == ()
    assert pipeline.run()["total"] == 1
