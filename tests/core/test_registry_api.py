"""``StepRegistry``: registering, replacing, looking up and listing steps by pipeline."""

from __future__ import annotations

import pytest

from flowyml import Step, StepDefinitionError, step
from flowyml.core.step import StepRegistry, get_step_registry


def _one() -> int:
    return 1


def _two() -> int:
    return 2


def test_registering_the_same_step_twice_keeps_one_entry() -> None:
    registry = StepRegistry()
    made = Step(_one, name="load")

    registry.register(made)
    registry.register(made)

    assert len(registry) == 1
    assert registry.get_by_name("load") is made


def test_a_different_step_under_a_taken_name_is_a_value_error() -> None:
    registry = StepRegistry()
    registry.register(Step(_one, name="load"))

    with pytest.raises(ValueError):
        registry.register(Step(_two, name="load"))


def test_a_name_clash_is_a_step_definition_error_naming_both_definitions() -> None:
    registry = StepRegistry()
    first = Step(_one, name="load")
    second = Step(_two, name="load")
    registry.register(first)

    with pytest.raises(StepDefinitionError) as raised:
        registry.register(second)

    assert (raised.value.step, raised.value.field) == ("load", "name")
    assert first.identity in str(raised.value)
    assert second.identity in str(raised.value)


def test_a_rejected_step_leaves_the_registered_one_in_place() -> None:
    registry = StepRegistry()
    first = Step(_one, name="load")
    registry.register(first)

    with pytest.raises(StepDefinitionError):
        registry.register(Step(_two, name="load"))

    assert len(registry) == 1
    assert registry.get_by_name("load") is first


def test_redefining_the_same_function_replaces_the_registered_step() -> None:
    registry = StepRegistry()
    made: list[Step] = []
    for _ in range(2):  # the same ``def`` run twice, as a re-run notebook cell does

        def load() -> int:
            return 1

        made.append(Step(load))
        registry.register(made[-1])

    first, second = made
    assert first is not second
    assert second.redefines(first)
    assert len(registry) == 1
    assert registry.get_by_name("load") is second


def test_get_by_name_returns_the_registered_step() -> None:
    registry = StepRegistry()
    made = Step(_one, name="load")
    registry.register(made)

    assert registry.get_by_name("load") is made


def test_get_by_name_returns_none_for_an_unknown_name() -> None:
    registry = StepRegistry()
    registry.register(Step(_one, name="load"))

    assert registry.get_by_name("train") is None


def test_get_all_lists_every_step_in_registration_order() -> None:
    registry = StepRegistry()
    b = Step(_one, name="b")
    a = Step(_two, name="a")
    c = Step(lambda: 3, name="c")

    for made in (b, a, c):
        registry.register(made)

    assert registry.get_all() == [b, a, c]


def test_get_all_of_a_pipeline_lists_its_scoped_steps_and_the_unscoped_ones() -> None:
    registry = StepRegistry()
    train = Step(_one, name="train", pipeline="training")
    serve = Step(_two, name="serve", pipeline="serving")
    shared = Step(lambda: 3, name="shared")

    for made in (train, serve, shared):
        registry.register(made)

    assert registry.get_all("training") == [train, shared]
    assert registry.get_all("serving") == [serve, shared]


def test_steps_scoped_with_the_decorator_are_listed_under_their_pipeline() -> None:
    registry = StepRegistry()

    @step(pipeline="training", register=False)
    def train() -> None:
        return None

    @step(pipeline="serving", register=False)
    def serve() -> None:
        return None

    @step(register=False)
    def shared() -> None:
        return None

    for made in (train, serve, shared):
        registry.register(made)

    assert registry.get_all("training") == [train, shared]
    assert serve not in registry.get_all("training")


def test_clear_empties_the_registry() -> None:
    registry = StepRegistry()
    registry.register(Step(_one, name="load"))
    registry.register(Step(_two, name="train"))

    registry.clear()

    assert len(registry) == 0
    assert registry.get_all() == []
    assert "load" not in registry


def test_len_counts_the_registered_steps() -> None:
    registry = StepRegistry()
    assert len(registry) == 0

    registry.register(Step(_one, name="load"))
    registry.register(Step(_two, name="train"))

    assert len(registry) == 2


def test_in_tells_whether_a_name_is_registered() -> None:
    registry = StepRegistry()
    registry.register(Step(_one, name="load"))

    assert "load" in registry
    assert "train" not in registry


def test_registering_something_that_is_not_a_step_is_a_type_error() -> None:
    registry = StepRegistry()

    with pytest.raises(TypeError, match="Step"):
        registry.register(_one)  # type: ignore[arg-type]

    assert len(registry) == 0


def test_the_global_registry_holds_decorated_steps() -> None:
    @step
    def load() -> None:
        return None

    registry = get_step_registry()

    assert "load" in registry
    assert registry.get_by_name("load") is load
    assert registry.get_all() == [load]


def test_a_hand_built_step_is_scoped_by_its_pipeline_tag() -> None:
    def train() -> int:
        return 1

    made = Step(train, tags={"pipeline": " training "})

    assert made.pipelines == ("training",)
    assert made.tags["pipeline"] == "training"


def test_pipeline_given_wins_over_the_pipeline_tag() -> None:
    def train() -> int:
        return 1

    made = Step(train, pipeline="other", tags={"pipeline": "training"})

    assert made.pipelines == ("other",)
    assert made.tags["pipeline"] == "other"
