"""``Pipeline.build()``: the graph from declared names, and every wiring error at build time."""

from __future__ import annotations

from typing import Any

import pytest

from flowyml import Pipeline, PipelineDefinitionError, Step, step
from flowyml.core.graph import PipelineGraph


def test_add_step_returns_the_pipeline_so_calls_chain() -> None:
    @step(outputs=["a"])
    def first() -> int:
        return 1

    @step(inputs=["a"], outputs=["b"])
    def second(a: int) -> int:
        return a + 1

    pipeline = Pipeline("chain")

    assert pipeline.add_step(first).add_step(second) is pipeline
    assert [s.name for s in pipeline.steps] == ["first", "second"]


def test_build_returns_the_steps_in_dependency_order() -> None:
    @step(inputs=["b"], outputs=["c"])
    def last(b: int) -> int:
        return b

    @step(inputs=["a"], outputs=["b"])
    def middle(a: int) -> int:
        return a

    @step(outputs=["a"])
    def start() -> int:
        return 1

    graph = Pipeline("order").add_step(last).add_step(middle).add_step(start).build()

    assert isinstance(graph, PipelineGraph)
    assert [s.name for s in graph.steps] == ["start", "middle", "last"]
    assert dict(graph.producers) == {"a": "start", "b": "middle", "c": "last"}
    assert graph.pipeline_inputs == ()


def test_edges_come_from_matching_input_and_output_names() -> None:
    @step(outputs=["data/train", "data/test"])
    def split() -> tuple[int, int]:
        return 1, 2

    @step(inputs=["data/train"], outputs=["model"])
    def train(data: int) -> int:
        return data

    @step(inputs=["model", "data/test"], outputs=["score"])
    def evaluate(model: int, test: int) -> int:
        return model + test

    graph = Pipeline("edges").add_step(evaluate).add_step(train).add_step(split).build()

    assert graph.upstream_of(graph.by_name["evaluate"]) == ["train", "split"]
    assert graph.downstream_of("split") == {"train", "evaluate"}
    assert graph.downstream_of("evaluate") == set()


def test_a_cycle_is_an_error_at_build_naming_the_steps_in_it() -> None:
    @step(inputs=["c"], outputs=["a"])
    def one(c: Any) -> Any:
        return c

    @step(inputs=["a"], outputs=["b"])
    def two(a: Any) -> Any:
        return a

    @step(inputs=["b"], outputs=["c"])
    def three(b: Any) -> Any:
        return b

    pipeline = Pipeline("loop").add_step(one).add_step(two).add_step(three)

    with pytest.raises(PipelineDefinitionError, match="cycle") as raised:
        pipeline.build()
    message = str(raised.value)
    assert all(name in message for name in ("one", "two", "three"))


def test_two_steps_producing_one_output_is_an_error_at_build() -> None:
    @step(outputs=["model"])
    def train_a() -> int:
        return 1

    @step(outputs=["model"])
    def train_b() -> int:
        return 2

    pipeline = Pipeline("clash").add_step(train_a).add_step(train_b)

    with pytest.raises(PipelineDefinitionError) as raised:
        pipeline.build()
    message = str(raised.value)
    assert "'model'" in message and "train_a" in message and "train_b" in message


def test_two_different_steps_with_one_name_in_a_pipeline_is_an_error_at_build() -> None:
    def load_x() -> int:
        return 1

    def load_y() -> int:
        return 2

    first = Step(load_x, name="load", outputs=["x"])
    second = Step(load_y, name="load", outputs=["y"])

    with pytest.raises(PipelineDefinitionError, match="load"):
        Pipeline("twins").add_step(first).add_step(second).build()


def test_adding_the_same_step_twice_keeps_it_once() -> None:
    @step(outputs=["x"])
    def load() -> int:
        return 1

    graph = Pipeline("once").add_step(load).add_step(load).build()

    assert [s.name for s in graph.steps] == ["load"]


def test_a_pipeline_without_steps_is_an_error_at_build() -> None:
    with pytest.raises(PipelineDefinitionError, match="no steps"):
        Pipeline("empty").build()


def test_add_step_takes_only_steps() -> None:
    def plain() -> None:
        return None

    with pytest.raises(PipelineDefinitionError, match="add_step"):
        Pipeline("plain").add_step(plain)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["", "  ", None, 3])
def test_a_pipeline_needs_a_non_empty_name(name: Any) -> None:
    with pytest.raises(PipelineDefinitionError):
        Pipeline(name)


def test_a_schedule_must_be_a_five_field_cron_string() -> None:
    assert Pipeline("nightly", schedule="0 3 * * *").schedule == "0 3 * * *"
    with pytest.raises(PipelineDefinitionError, match="cron"):
        Pipeline("nightly", schedule="every night")


def test_build_reflects_steps_added_after_an_earlier_build() -> None:
    @step(outputs=["a"])
    def first() -> int:
        return 1

    @step(inputs=["a"], outputs=["b"])
    def second(a: int) -> int:
        return a

    pipeline = Pipeline("grow").add_step(first)
    assert [s.name for s in pipeline.build().steps] == ["first"]

    pipeline.add_step(second)

    assert [s.name for s in pipeline.build().steps] == ["first", "second"]
