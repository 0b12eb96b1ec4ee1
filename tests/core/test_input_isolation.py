"""A step that changes its input in place changes only its own copy: later steps, the run's
results and the caller's own objects see the value as it was produced (as on Dagster, where
every value goes through an IO manager)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from flowyml import Pipeline, step


def mutating_pipeline(**options: Any) -> Pipeline:
    @step(outputs=["raw"], **options)
    def load() -> pd.DataFrame:
        return pd.DataFrame({"a": [1, 2, 3]})

    @step(inputs=["raw"], outputs=["squares"], **options)
    def square(raw: pd.DataFrame) -> int:
        raw["a_sq"] = raw["a"] ** 2
        return int(raw["a_sq"].sum())

    @step(inputs=["raw"], outputs=["columns"], **options)
    def columns(raw: pd.DataFrame) -> list[str]:
        return list(raw.columns)

    return Pipeline("p", auto_discover=True)


def test_a_later_step_sees_the_input_as_it_was_produced() -> None:
    result = mutating_pipeline().run()

    assert result["squares"] == 14
    assert result["columns"] == ["a"]


def test_the_result_holds_the_value_as_it_was_produced() -> None:
    result = mutating_pipeline().run()

    assert list(result["raw"].columns) == ["a"]


def test_inside_an_execution_group_later_steps_see_the_value_as_produced() -> None:
    result = mutating_pipeline(execution_group="prep").run()

    assert result["columns"] == ["a"]


def test_a_pipeline_input_given_by_the_caller_is_not_changed() -> None:
    @step(inputs=["raw"], outputs=["n"])
    def grow(raw: list[int]) -> int:
        raw.append(99)
        return len(raw)

    mine = [1, 2]
    result = Pipeline("p", auto_discover=True).run(inputs={"raw": mine})

    assert result["n"] == 3
    assert mine == [1, 2]


def test_a_value_that_cannot_be_copied_is_passed_as_it_is() -> None:
    @step(outputs=["numbers"])
    def numbers() -> Any:
        return (n for n in range(3))

    @step(inputs=["numbers"], outputs=["total"])
    def total(numbers: Any) -> int:
        return sum(numbers)

    result = Pipeline("p", auto_discover=True, enable_cache=False).run()

    assert result["total"] == 3


def test_a_retry_sees_the_input_as_produced_not_as_the_failed_attempt_left_it(
    tmp_path: Any,
) -> None:
    failed_once = tmp_path / "failed-once"

    @step(outputs=["raw"])
    def make() -> list[int]:
        return [1, 2, 3]

    @step(inputs=["raw"], outputs=["n"], retry=1, cache=False)
    def consume(raw: list[int]) -> int:
        raw.append(99)
        if not failed_once.exists():
            failed_once.touch()
            raise RuntimeError("flaky")
        return len(raw)

    result = Pipeline("p", auto_discover=True).run()

    assert result["n"] == 4


def test_a_step_changing_a_context_param_changes_neither_the_context_nor_the_next_run() -> None:
    @step(outputs=["n"], cache=False)
    def grow(cfg: Any) -> int:
        cfg.append(1)
        return len(cfg)

    pipeline = Pipeline("p", context={"cfg": []}, auto_discover=True)

    assert [pipeline.run()["n"], pipeline.run()["n"]] == [1, 1]
    assert pipeline.context["cfg"] == []
