"""``Context.update``, ``Context.inject_params`` and ``Context.validate_for_step``."""

from __future__ import annotations

from typing import Any

import pytest

from flowyml import Pipeline, context, step


def test_update_adds_new_values_readable_as_items_and_attributes() -> None:
    ctx = context(learning_rate=0.1)

    ctx.update({"epochs": 3})

    assert ctx["epochs"] == 3
    assert ctx.epochs == 3
    assert dict(ctx) == {"learning_rate": 0.1, "epochs": 3}


def test_update_replaces_existing_values() -> None:
    ctx = context(learning_rate=0.1, epochs=3)

    ctx.update({"learning_rate": 0.5})

    assert ctx.learning_rate == 0.5
    assert ctx["learning_rate"] == 0.5
    assert ctx.epochs == 3


def test_a_child_made_before_an_update_sees_the_parent_s_new_values() -> None:
    parent = context(learning_rate=0.1)
    child = parent.inherit(epochs=3)

    parent.update({"learning_rate": 0.5, "batch_size": 32})

    assert child.learning_rate == 0.5
    assert child["batch_size"] == 32
    assert dict(child) == {"learning_rate": 0.5, "batch_size": 32, "epochs": 3}


def test_a_child_s_own_override_still_wins_over_a_parent_update() -> None:
    parent = context(learning_rate=0.1)
    child = parent.inherit(learning_rate=0.9)

    parent.update({"learning_rate": 0.5})

    assert child.learning_rate == 0.9


@pytest.mark.parametrize("bad", ["not valid", "1st", "a-b", "", 1])
def test_update_with_a_name_that_is_not_an_identifier_is_a_type_error(bad: Any) -> None:
    ctx = context(learning_rate=0.1)

    with pytest.raises(TypeError):
        ctx.update({bad: 1})


def test_a_refused_update_changes_nothing() -> None:
    ctx = context(learning_rate=0.1)

    with pytest.raises(TypeError):
        ctx.update({"epochs": 3, "not valid": 1})

    assert dict(ctx) == {"learning_rate": 0.1}


def test_attribute_assignment_is_still_refused_and_points_to_update() -> None:
    ctx = context(learning_rate=0.1)

    with pytest.raises(AttributeError, match="update"):
        ctx.learning_rate = 0.2

    assert ctx.learning_rate == 0.1


def test_inject_params_gives_a_function_the_values_of_its_named_parameters() -> None:
    def train(learning_rate: float, epochs: int = 1, *, batch_size: int = 8) -> None:
        return None

    ctx = context(learning_rate=0.1, epochs=3, batch_size=32)

    assert ctx.inject_params(train) == {"learning_rate": 0.1, "epochs": 3, "batch_size": 32}


def test_inject_params_leaves_out_parameters_the_context_has_no_value_for() -> None:
    def train(learning_rate: float, epochs: int = 1, seed: int = 0) -> None:
        return None

    ctx = context(learning_rate=0.1, unrelated="x")

    assert ctx.inject_params(train) == {"learning_rate": 0.1}


def test_inject_params_skips_self_cls_and_star_parameters() -> None:
    def method(self: Any, cls: Any, lr: float, *args: Any, **kwargs: Any) -> None:
        return None

    ctx = context(lr=0.1)
    ctx.update({"self": 1, "cls": 2, "args": 3, "kwargs": 4})

    assert ctx.inject_params(method) == {"lr": 0.1}


def test_inject_params_leaves_out_a_step_s_parameters_bound_to_inputs() -> None:
    @step(inputs=["data"], outputs=["model"])
    def train(data: list[int], learning_rate: float) -> float:
        return learning_rate

    ctx = context(data=[1, 2], learning_rate=0.1)

    assert ctx.inject_params(train) == {"learning_rate": 0.1}


def test_inject_params_leaves_out_a_parameter_bound_positionally_to_an_input() -> None:
    @step(inputs=["data/train"], outputs=["model"])
    def train(frame: list[int], learning_rate: float) -> float:
        return learning_rate

    ctx = context(frame=[1, 2], learning_rate=0.1)

    assert ctx.inject_params(train) == {"learning_rate": 0.1}


def test_validate_for_step_lists_missing_required_parameters_in_signature_order() -> None:
    def train(zeta: int, alpha: int, present: int, *, omega: int) -> None:
        return None

    ctx = context(present=1)

    assert ctx.validate_for_step(train) == ["zeta", "alpha", "omega"]


def test_validate_for_step_skips_parameters_with_defaults() -> None:
    def train(learning_rate: float, epochs: int = 1, *, seed: int = 0) -> None:
        return None

    assert context().validate_for_step(train) == ["learning_rate"]


def test_validate_for_step_skips_excluded_names() -> None:
    def train(data: list[int], learning_rate: float, epochs: int) -> None:
        return None

    ctx = context(epochs=3)

    assert ctx.validate_for_step(train, exclude=["data"]) == ["learning_rate"]


def test_validate_for_step_skips_self_cls_and_star_parameters() -> None:
    def method(self: Any, cls: Any, lr: float, *args: Any, **kwargs: Any) -> None:
        return None

    assert context().validate_for_step(method) == ["lr"]


def test_validate_for_step_skips_a_step_s_input_bound_parameters() -> None:
    @step(inputs=["data/train"], outputs=["model"])
    def train(frame: list[int], learning_rate: float, epochs: int = 1) -> float:
        return learning_rate

    assert context().validate_for_step(train) == ["learning_rate"]


def test_validate_for_step_is_empty_when_the_context_has_every_required_value() -> None:
    def train(learning_rate: float, epochs: int = 1) -> None:
        return None

    assert context(learning_rate=0.1).validate_for_step(train) == []


def test_a_run_gives_a_step_exactly_the_params_inject_params_returns() -> None:
    @step(outputs=["data"])
    def load() -> list[int]:
        return [1, 2, 3]

    @step(inputs=["data"], outputs=["seen"])
    def train(data: list[int], learning_rate: float, epochs: int = 1) -> dict[str, Any]:
        return {"learning_rate": learning_rate, "epochs": epochs}

    ctx = context(learning_rate=0.1, epochs=3, unrelated="x")

    result = Pipeline("p", context=ctx, steps=[load, train]).run()

    assert result.success
    assert ctx.inject_params(train) == {"learning_rate": 0.1, "epochs": 3}
    assert result["seen"] == ctx.inject_params(train)
