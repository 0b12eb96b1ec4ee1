"""Which parameter each value goes to: inputs by name or position, the context for the rest."""

from __future__ import annotations

from typing import Any

import pytest
from core_support import CallLog

from flowyml import Pipeline, PipelineDefinitionError, context, step


@pytest.fixture
def sources() -> list[Any]:
    """Steps producing ``"features"``, ``"labels"`` and ``"data/raw"`` for the step under test."""

    @step(outputs=["features"])
    def make_features() -> str:
        return "F"

    @step(outputs=["labels"])
    def make_labels() -> str:
        return "L"

    @step(outputs=["data/raw"])
    def make_raw() -> str:
        return "R"

    return [make_features, make_labels, make_raw]


def run_with(sources: list[Any], *steps: Any, **options: Any) -> Any:
    pipeline = Pipeline("binding", **options)
    for made in [*sources, *steps]:
        pipeline.add_step(made)
    return pipeline.run()


def test_an_input_binds_to_the_parameter_of_the_same_name(sources: list[Any]) -> None:
    @step(inputs=["labels", "features"], outputs=["pair"])
    def combine(features: str, labels: str) -> tuple[str, str]:
        return features, labels

    assert run_with(sources, combine)["pair"] == ("F", "L")


def test_inputs_without_a_same_named_parameter_bind_positionally_in_order(
    sources: list[Any],
) -> None:
    @step(inputs=["data/raw", "labels"], outputs=["pair"])
    def combine(x: str, y: str) -> tuple[str, str]:
        return x, y

    assert run_with(sources, combine)["pair"] == ("R", "L")


def test_named_inputs_claim_their_parameters_before_positional_ones_bind(
    sources: list[Any],
) -> None:
    @step(inputs=["data/raw", "labels"], outputs=["pair"])
    def combine(labels: str, x: str) -> tuple[str, str]:
        return labels, x

    assert run_with(sources, combine)["pair"] == ("L", "R")


def test_extra_inputs_go_to_star_args(sources: list[Any]) -> None:
    @step(inputs=["features", "labels", "data/raw"], outputs=["all"])
    def gather(first: str, *rest: str) -> tuple[str, ...]:
        return (first, *rest)

    assert run_with(sources, gather)["all"] == ("F", "L", "R")


def test_the_context_fills_the_parameters_that_are_not_inputs(sources: list[Any]) -> None:
    @step(inputs=["features"], outputs=["setup"])
    def train(features: str, learning_rate: float, *, epochs: int = 1) -> tuple[Any, ...]:
        return features, learning_rate, epochs

    result = run_with(sources, train, context=context(learning_rate=0.1, epochs=5))

    assert result["setup"] == ("F", 0.1, 5)


def test_a_parameter_missing_from_the_context_takes_its_default(sources: list[Any]) -> None:
    @step(inputs=["features"], outputs=["setup"])
    def train(features: str, learning_rate: float = 0.01) -> tuple[str, float]:
        return features, learning_rate

    assert run_with(sources, train)["setup"] == ("F", 0.01)


def test_a_name_bound_to_an_input_and_present_in_the_context_is_an_error_at_build() -> None:
    @step(outputs=["features"])
    def make_features() -> str:
        return "F"

    @step(inputs=["features"], outputs=["model"])
    def train(features: str) -> str:
        return features

    pipeline = Pipeline("clash", context=context(features="from context"))
    pipeline.add_step(make_features).add_step(train)

    with pytest.raises(PipelineDefinitionError) as raised:
        pipeline.build()
    message = str(raised.value)
    assert "train" in message and "features" in message


def test_a_positional_input_clashing_with_the_context_is_an_error_at_build() -> None:
    @step(outputs=["data/raw"])
    def load() -> str:
        return "R"

    @step(inputs=["data/raw"], outputs=["model"])
    def train(raw: str) -> str:
        return raw

    pipeline = Pipeline("clash", context={"raw": "from context"}).add_step(load).add_step(train)

    with pytest.raises(PipelineDefinitionError, match="'raw'"):
        pipeline.build()


def test_a_run_context_clashing_with_an_input_is_an_error_before_any_step_runs(
    calls: CallLog,
) -> None:
    @step(outputs=["data/raw"])
    def load() -> str:
        calls.record("load")
        return "R"

    @step(inputs=["data/raw"], outputs=["model"])
    def train(raw: str) -> str:
        calls.record("train")
        return raw

    pipeline = Pipeline("clash").add_step(load).add_step(train)

    with pytest.raises(PipelineDefinitionError, match="'raw'"):
        pipeline.run(context={"raw": "from context"})
    assert calls.names() == []


def test_a_parameter_with_no_value_anywhere_is_an_error_at_build() -> None:
    @step(outputs=["model"])
    def train(learning_rate: float) -> float:
        return learning_rate

    with pytest.raises(PipelineDefinitionError) as raised:
        Pipeline("missing").add_step(train).build()
    message = str(raised.value)
    assert "train" in message and "learning_rate" in message


def test_a_parameter_with_no_value_anywhere_fails_the_run_before_any_step_runs(
    calls: CallLog,
) -> None:
    @step(outputs=["data/raw"])
    def load() -> str:
        calls.record("load")
        return "R"

    @step(inputs=["data/raw"], outputs=["model"])
    def train(raw: str, learning_rate: float) -> str:
        calls.record("train")
        return raw

    pipeline = Pipeline("missing").add_step(load).add_step(train)

    with pytest.raises(PipelineDefinitionError, match="learning_rate"):
        pipeline.run()
    assert calls.names() == []
