"""How a step's return value becomes its named outputs."""

from __future__ import annotations

from typing import Any

import pytest

from flowyml import Pipeline, StepStatus, step


def run_one(made: Any) -> Any:
    return Pipeline("outputs").add_step(made).run()


def test_one_output_takes_the_return_value_as_is() -> None:
    @step(outputs=["pair"])
    def make() -> tuple[int, int]:
        return 1, 2

    assert run_one(make)["pair"] == (1, 2)


def test_several_outputs_take_the_items_of_a_returned_tuple_in_order() -> None:
    @step(outputs=["model", "metrics"])
    def train() -> tuple[str, dict[str, float]]:
        return "m", {"acc": 0.9}

    result = run_one(train)

    assert result["model"] == "m"
    assert result["metrics"] == {"acc": 0.9}


def test_several_outputs_take_the_items_of_a_returned_list_in_order() -> None:
    @step(outputs=["a", "b", "c"])
    def split() -> list[int]:
        return [1, 2, 3]

    result = run_one(split)

    assert (result["a"], result["b"], result["c"]) == (1, 2, 3)


def test_several_outputs_take_the_values_of_a_returned_dict_by_name() -> None:
    @step(outputs=["model", "metrics"])
    def train() -> dict[str, Any]:
        return {"metrics": {"acc": 0.9}, "model": "m"}

    result = run_one(train)

    assert result["model"] == "m"
    assert result["metrics"] == {"acc": 0.9}


def test_a_step_without_outputs_stores_its_value_under_its_own_name() -> None:
    @step
    def summary() -> dict[str, int]:
        return {"rows": 3}

    result = run_one(summary)

    assert result["summary"] == {"rows": 3}
    assert result.outputs == {"summary": {"rows": 3}}


@pytest.mark.parametrize(
    "returned",
    [(1, 2, 3), [1], 5, {"model": 1}, {"model": 1, "metrics": 2, "extra": 3}],
    ids=["tuple-of-3", "list-of-1", "scalar", "dict-missing-name", "dict-extra-name"],
)
def test_a_return_value_that_does_not_match_the_outputs_fails_the_step(returned: Any) -> None:
    @step(outputs=["model", "metrics"])
    def train() -> Any:
        return returned

    result = run_one(train)

    outcome = result.step_results["train"]
    assert not result.success
    assert outcome.status is StepStatus.FAILED
    assert outcome.error is not None
    assert outcome.error.type == "StepOutputError"
    assert "step 'train'" in outcome.error.message
    assert "2 outputs" in outcome.error.message


def test_an_output_mismatch_in_a_step_with_a_timeout_fails_the_same_way() -> None:
    @step(outputs=["model", "metrics"], timeout=30)
    def train() -> int:
        return 5

    outcome = run_one(train).step_results["train"]

    assert outcome.status is StepStatus.FAILED
    assert outcome.error is not None
    assert outcome.error.type == "StepOutputError"
    assert "step 'train'" in outcome.error.message
