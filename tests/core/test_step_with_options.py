"""``Step.with_options``: a copy with some ``@step`` options replaced, validated as the decorator
validates them, so a deployment's overrides (the Dagster component's YAML) obey the same rules."""

from __future__ import annotations

import pytest

from flowyml import Step, StepDefinitionError, get_registered_steps, step


@pytest.fixture
def train() -> Step:
    @step(inputs=["data/raw"], outputs=["model"], retry=1, tags={"team": "ml"}, pipeline="training")
    def train(raw: list[int]) -> int:
        return sum(raw)

    return train


def test_the_copy_has_the_new_options_and_keeps_the_rest(train: Step) -> None:
    tuned = train.with_options(retry={"max_retries": 3, "delay": 2}, timeout=60)

    assert (tuned.retry, tuned.retry_policy.delay, tuned.timeout) == (3, 2, 60)
    assert (tuned.name, tuned.inputs, tuned.outputs, tuned.pipelines) == (
        "train",
        ["data/raw"],
        ["model"],
        ("training",),
    )
    assert tuned.tags == {"team": "ml", "pipeline": "training"}
    assert tuned.func is train.func
    assert tuned([1, 2]) == 3


def test_the_original_is_unchanged_and_the_copy_is_not_registered(train: Step) -> None:
    train.with_options(retry=5, tags={"team": "ops"})

    assert (train.retry, train.tags["team"]) == (1, "ml")
    assert [s for s in get_registered_steps() if s.name == "train"] == [train]


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"retry": -1}, "retry"),
        ({"retry": {"max_retries": 1, "delay": -2}}, "retry.delay"),
        ({"timeout": 0}, "timeout"),
        ({"resources": {"memory": 16}}, "resources.memory"),
        ({"tags": {"": "ml"}}, "tags"),
        ({"pool": "gpu"}, "pool"),
    ],
)
def test_a_bad_option_is_refused_as_the_decorator_refuses_it(
    train: Step, options: dict[str, object], field: str
) -> None:
    with pytest.raises(StepDefinitionError) as raised:
        train.with_options(**options)

    assert (raised.value.step, raised.value.field) == ("train", field)
