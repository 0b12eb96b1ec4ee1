"""The global step registry behind ``Pipeline(auto_discover=True)``."""

from __future__ import annotations

import pytest
from core_support import exec_in_module

from flowyml import (
    Pipeline,
    PipelineDefinitionError,
    Step,
    StepDefinitionError,
    StepRegistry,
    clear_step_registry,
    get_registered_steps,
    step,
)

CELL = """
from flowyml import step


@step(outputs=["data/raw"])
def load():
    return {version}
"""


def test_a_decorated_step_is_registered() -> None:
    @step
    def load() -> None:
        return None

    assert get_registered_steps() == [load]


def test_steps_are_listed_in_registration_order() -> None:
    @step
    def b() -> None:
        return None

    @step
    def a() -> None:
        return None

    assert [s.name for s in get_registered_steps()] == ["b", "a"]


def test_clear_step_registry_forgets_every_step() -> None:
    @step
    def load() -> None:
        return None

    clear_step_registry()

    assert get_registered_steps() == []


def test_a_step_made_with_register_false_is_not_registered() -> None:
    @step(register=False)
    def helper() -> None:
        return None

    assert get_registered_steps() == []


def test_a_step_made_with_register_false_can_still_be_added_to_a_pipeline() -> None:
    @step(outputs=["value"], register=False)
    def helper() -> int:
        return 5

    result = Pipeline("explicit").add_step(helper).run()

    assert result["value"] == 5


def test_redefining_the_same_function_replaces_the_registered_step() -> None:
    first = exec_in_module("notebook", CELL.format(version=1))["load"]
    second = exec_in_module("notebook", CELL.format(version=2))["load"]

    assert get_registered_steps() == [second]
    assert first is not second
    assert Pipeline("nb", auto_discover=True).run()["data/raw"] == 2


def test_a_different_function_under_a_taken_name_is_an_error_naming_step_and_field() -> None:
    exec_in_module("notebook_a", CELL.format(version=1))

    with pytest.raises(StepDefinitionError) as raised:
        exec_in_module("notebook_b", CELL.format(version=1))

    assert raised.value.step == "load"
    assert raised.value.field == "name"
    assert "notebook_a.load" in str(raised.value)


def test_a_custom_name_that_is_already_taken_is_an_error() -> None:
    @step
    def train() -> None:
        return None

    with pytest.raises(StepDefinitionError) as raised:

        @step(name="train")
        def train_again() -> None:
            return None

    assert (raised.value.step, raised.value.field) == ("train", "name")
    assert get_registered_steps() == [train]


def test_an_unscoped_step_joins_every_pipeline() -> None:
    @step
    def shared() -> None:
        return None

    assert get_registered_steps(pipeline="training") == [shared]
    assert get_registered_steps(pipeline="serving") == [shared]


def test_a_scoped_step_joins_only_its_pipeline() -> None:
    @step(pipeline="training")
    def train() -> None:
        return None

    @step(pipeline="serving")
    def serve() -> None:
        return None

    @step
    def shared() -> None:
        return None

    assert get_registered_steps(pipeline="training") == [train, shared]
    assert get_registered_steps(pipeline="serving") == [serve, shared]
    assert get_registered_steps() == [train, serve, shared]


def test_a_step_scoped_to_several_pipelines_joins_each_of_them() -> None:
    @step(pipeline=["training", "evaluation"])
    def load() -> None:
        return None

    assert get_registered_steps(pipeline="training") == [load]
    assert get_registered_steps(pipeline="evaluation") == [load]
    assert get_registered_steps(pipeline="serving") == []


def test_a_pipeline_name_no_step_is_scoped_to_discovers_no_scoped_step() -> None:
    @step(pipeline="training")
    def train() -> None:
        return None

    assert get_registered_steps(pipeline="other") == []
    with pytest.raises(PipelineDefinitionError, match="no steps"):
        Pipeline("other", auto_discover=True).build()


def test_auto_discovery_builds_the_pipeline_from_its_scoped_and_unscoped_steps() -> None:
    @step(outputs=["data/raw"])
    def load() -> list[int]:
        return [1, 2, 3]

    @step(inputs=["data/raw"], outputs=["total"], pipeline="training")
    def train(raw: list[int]) -> int:
        return sum(raw)

    @step(inputs=["data/raw"], outputs=["count"], pipeline="serving")
    def serve(raw: list[int]) -> int:
        return len(raw)

    result = Pipeline("training", auto_discover=True).run()

    assert set(result.step_results) == {"load", "train"}
    assert result["total"] == 6


def test_auto_discovery_finds_steps_defined_after_the_pipeline_object() -> None:
    pipeline = Pipeline("late", auto_discover=True)

    @step(outputs=["value"])
    def late() -> int:
        return 1

    assert pipeline.run()["value"] == 1


def test_a_registry_instance_keeps_its_own_steps() -> None:
    registry = StepRegistry()
    made = Step(lambda: None, name="solo")

    registry.register(made)

    assert "solo" in registry
    assert len(registry) == 1
    assert registry.get_by_name("solo") is made
    assert get_registered_steps() == []
    registry.unregister("solo")
    assert len(registry) == 0
