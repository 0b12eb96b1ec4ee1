"""``context(**params)``: read-only run parameters, inheritance, and per-run overrides."""

from __future__ import annotations

import pickle

import pytest

from flowyml import Context, Pipeline, context, step


def test_context_values_are_readable_as_attributes_and_items() -> None:
    ctx = context(learning_rate=0.1, epochs=3)

    assert isinstance(ctx, Context)
    assert ctx.learning_rate == 0.1
    assert ctx["epochs"] == 3
    assert dict(ctx) == {"learning_rate": 0.1, "epochs": 3}
    assert "epochs" in ctx
    assert len(ctx) == 2


def test_a_missing_name_is_an_attribute_error_or_a_key_error() -> None:
    ctx = context(learning_rate=0.1)

    with pytest.raises(AttributeError, match="epochs"):
        _ = ctx.epochs
    with pytest.raises(KeyError):
        ctx["epochs"]


def test_a_context_is_read_only() -> None:
    ctx = context(learning_rate=0.1)

    with pytest.raises(AttributeError):
        ctx.learning_rate = 0.2


def test_an_inherited_context_sees_parent_values_unless_it_overrides_them() -> None:
    parent = context(learning_rate=0.1, epochs=3)
    child = parent.inherit(epochs=10)

    assert child.learning_rate == 0.1
    assert child.epochs == 10
    assert parent.epochs == 3


def test_inheritance_resolves_to_the_nearest_definition_at_any_depth() -> None:
    base = context(a=1, b=1, c=1, d=1)
    level2 = base.inherit(b=2)
    level3 = level2.inherit(c=3)
    level4 = level3.inherit(d=4, e=4)

    assert level3.to_dict() == {"a": 1, "b": 2, "c": 3, "d": 1}
    assert dict(level4) == {"a": 1, "b": 2, "c": 3, "d": 4, "e": 4}
    assert (level4.a, level4["b"], level4.c) == (1, 2, 3)
    assert base.to_dict() == {"a": 1, "b": 1, "c": 1, "d": 1}


def test_a_context_survives_pickling_with_its_parents() -> None:
    ctx = context(a=1).inherit(b=2).inherit(c=3)

    restored = pickle.loads(pickle.dumps(ctx))

    assert restored.to_dict() == {"a": 1, "b": 2, "c": 3}


def test_steps_receive_context_values_by_parameter_name() -> None:
    @step(outputs=["config"])
    def configure(learning_rate: float, epochs: int) -> tuple[float, int]:
        return learning_rate, epochs

    pipeline = Pipeline("ctx", context=context(learning_rate=0.1, epochs=3))

    assert pipeline.add_step(configure).run()["config"] == (0.1, 3)


def test_a_plain_dict_works_as_a_pipeline_context() -> None:
    @step(outputs=["rate"])
    def configure(learning_rate: float) -> float:
        return learning_rate

    pipeline = Pipeline("ctx", context={"learning_rate": 0.5}).add_step(configure)

    assert pipeline.run()["rate"] == 0.5


def test_a_run_context_overrides_the_pipeline_context_for_that_run_only() -> None:
    @step(outputs=["rate"])
    def configure(learning_rate: float, epochs: int) -> tuple[float, int]:
        return learning_rate, epochs

    pipeline = Pipeline("ctx", context=context(learning_rate=0.1, epochs=3)).add_step(configure)

    overridden = pipeline.run(context={"learning_rate": 0.9})
    after = pipeline.run()

    assert overridden["rate"] == (0.9, 3)
    assert after["rate"] == (0.1, 3)
    assert pipeline.context.to_dict() == {"learning_rate": 0.1, "epochs": 3}


def test_a_run_context_can_supply_a_param_the_pipeline_context_lacks() -> None:
    @step(outputs=["rate"])
    def configure(learning_rate: float) -> float:
        return learning_rate

    pipeline = Pipeline("ctx").add_step(configure)

    assert pipeline.run(context=context(learning_rate=0.3))["rate"] == 0.3
