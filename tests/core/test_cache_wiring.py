"""The cache key covers the wiring: which value reaches which parameter and which output gets
which value, so fixing a mix-up of ``inputs=`` or ``outputs=`` is a miss, never the old value."""

from __future__ import annotations

from typing import Any

from core_support import CallLog

from flowyml import Pipeline, Step


def difference(first: int, second: int) -> int:
    return first - second


def split(total: int) -> tuple[int, int]:
    return total, total * 10


def run_with_inputs(order: list[str]) -> Any:
    made = Step(difference, name="diff", inputs=order, outputs=["d"])
    return Pipeline("p").add_step(made).run(inputs={"train": 10, "test": 3})


def run_with_outputs(order: list[str]) -> Any:
    made = Step(split, name="split", inputs=["total"], outputs=order)
    return Pipeline("p").add_step(made).run(inputs={"total": 1})


def test_swapping_the_order_of_inputs_is_a_miss_with_the_new_value() -> None:
    run_with_inputs(["train", "test"])

    swapped = run_with_inputs(["test", "train"])

    assert not swapped.step_results["diff"].cached
    assert swapped["d"] == 3 - 10


def test_swapping_the_order_of_outputs_is_a_miss_with_the_new_values() -> None:
    run_with_outputs(["small", "big"])

    swapped = run_with_outputs(["big", "small"])

    assert not swapped.step_results["split"].cached
    assert (swapped["big"], swapped["small"]) == (1, 10)


def test_the_same_wiring_again_is_a_hit() -> None:
    run_with_inputs(["train", "test"])

    again = run_with_inputs(["train", "test"])

    assert again.step_results["diff"].cached
    assert again["d"] == 7


def test_input_hash_steps_of_two_projects_with_one_name_do_not_share_entries(
    tmp_path: Any, calls: CallLog
) -> None:
    from core_support import load_module

    source = (
        "from flowyml import step\n"
        "@step(outputs=['data'], cache='input_hash', register=False)\n"
        "def load_data():\n"
        "    return {value!r}\n"
    )
    project_a = tmp_path / "a"
    project_b = tmp_path / "b"
    project_a.mkdir()
    project_b.mkdir()
    step_a = load_module(project_a, "pipeline_a", source.format(value="from A")).load_data
    step_b = load_module(project_b, "pipeline_b", source.format(value="from B")).load_data
    Pipeline("p").add_step(step_a).run()

    result = Pipeline("p").add_step(step_b).run()

    assert not result.step_results["load_data"].cached
    assert result["data"] == "from B"
