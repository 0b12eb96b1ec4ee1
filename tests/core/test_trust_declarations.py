"""Declarations that would hand a pipeline wrong data are refused when the step is declared or the
pipeline is built: names that are not storage paths, functions whose call is not the step's value,
and two different steps under one name."""

from __future__ import annotations

from typing import Any

import pytest

from flowyml import Pipeline, PipelineDefinitionError, Step, StepDefinitionError, step


@pytest.mark.parametrize(
    "name",
    ["../../x/model", "/etc/passwd", "data/../secret", "a//b", "data/", "/", "./x", "a\0b",
     "line\nbreak", "x" * 256, "ok/" + "y" * 300],
)  # fmt: skip
def test_an_output_name_that_is_not_a_storage_path_is_refused_at_decoration(name: str) -> None:
    with pytest.raises(StepDefinitionError) as caught:
        step(outputs=[name])(lambda: 1)

    assert caught.value.field == "outputs"
    assert repr(name) in str(caught.value)


def test_an_input_name_that_is_not_a_storage_path_is_refused_naming_the_step() -> None:
    with pytest.raises(StepDefinitionError, match=r"step 'train': inputs: '\.\./model'"):

        @step(inputs=["../model"])
        def train(model: Any) -> Any:
            return model


def test_a_nested_path_name_of_unicode_and_dots_is_accepted() -> None:
    made = Step(lambda: 1, name="s", outputs=["models/v1.2/clf-ß"])

    assert made.outputs == ["models/v1.2/clf-ß"]


def test_a_value_that_is_the_folder_of_another_is_refused_at_build() -> None:
    @step(outputs=["data"])
    def load() -> int:
        return 1

    @step(inputs=["data"], outputs=["data/train"])
    def split(data: int) -> int:
        return data

    with pytest.raises(PipelineDefinitionError, match=r"'data' \(step 'load'\) and 'data/train'"):
        Pipeline("p", auto_discover=True).build()


def test_a_pipeline_input_that_is_the_folder_of_an_output_is_refused_at_build() -> None:
    @step(inputs=["raw"], outputs=["raw/clean"])
    def clean(raw: int) -> int:
        return raw

    with pytest.raises(PipelineDefinitionError, match="a pipeline input"):
        Pipeline("p", auto_discover=True).build()


def test_an_async_step_is_refused_at_decoration() -> None:
    with pytest.raises(StepDefinitionError, match="'async def'"):

        @step
        async def fetch() -> int:
            return 1


def test_a_generator_step_is_refused_at_decoration() -> None:
    with pytest.raises(StepDefinitionError, match="generator"):

        @step
        def batches() -> Any:
            yield 1


def test_a_method_is_refused_at_decoration_naming_it() -> None:
    with pytest.raises(StepDefinitionError, match=r"method .*Trainer\.fit"):

        class Trainer:
            @step(inputs=["data"])
            def fit(self, data: Any) -> Any:
                return data


@pytest.mark.parametrize("timeout", [1e-9, 0.001])
def test_a_timeout_too_short_to_enforce_is_refused(timeout: float) -> None:
    with pytest.raises(StepDefinitionError, match="timeout"):
        step(timeout=timeout)(lambda: 1)


@pytest.mark.parametrize("register", ["no", 0, None])
def test_register_must_be_a_bool(register: Any) -> None:
    with pytest.raises(StepDefinitionError, match="register"):
        step(register=register)(lambda: 1)


def make_extract(column: str) -> Step:
    @step(outputs=[f"features/{column}"])
    def extract() -> str:
        return column

    return extract


def test_two_steps_made_by_one_factory_under_one_name_are_refused() -> None:
    make_extract("age")

    with pytest.raises(StepDefinitionError, match="already registered by another step"):
        make_extract("income")


def test_a_factory_called_again_with_the_same_arguments_replaces_its_step() -> None:
    first = make_extract("age")
    again = make_extract("age")

    assert again is not first
    assert Pipeline("p", auto_discover=True).steps == [again]


def test_two_lambdas_under_one_name_are_refused() -> None:
    step(name="feature", outputs=["a"])(lambda: 1)

    with pytest.raises(StepDefinitionError, match="already registered by another step"):
        step(name="feature", outputs=["b"])(lambda: 2)


def test_two_unregistered_steps_under_one_name_in_a_pipeline_are_refused() -> None:
    one = step(name="extract", outputs=["a"], register=False)(lambda: 1)
    two = step(name="extract", outputs=["b"], register=False)(lambda: 2)

    with pytest.raises(PipelineDefinitionError, match="two different steps are named 'extract'"):
        Pipeline("p").add_step(one).add_step(two).build()


@pytest.mark.parametrize("name", ["../../../../ESCAPED", "/abs", "a\0b"])
def test_a_step_name_that_is_not_a_storage_path_is_refused(name: str) -> None:
    """A step without outputs stores its value under its own name."""
    with pytest.raises(StepDefinitionError) as caught:
        step(name=name, register=False)(lambda: 1)

    assert caught.value.field == "name"


def test_a_callable_without_a_name_asks_for_name() -> None:
    import functools

    with pytest.raises(StepDefinitionError, match="give the step name="):
        step(register=False)(functools.partial(print, "x"))
