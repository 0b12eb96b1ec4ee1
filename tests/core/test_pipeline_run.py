"""``Pipeline.run()`` and the ``PipelineResult`` it returns."""

from __future__ import annotations

import time

import pytest

from flowyml import Pipeline, PipelineResult, StepResult, StepStatus, step


def two_step_pipeline() -> Pipeline:
    @step(outputs=["data/raw"])
    def load() -> list[int]:
        time.sleep(0.05)
        return [1, 2, 3]

    @step(inputs=["data/raw"], outputs=["model", "metrics"])
    def train(raw: list[int]) -> tuple[int, dict[str, float]]:
        return sum(raw), {"loss": 0.1}

    @step(inputs=["model"])
    def publish(model: int) -> str:
        return f"published {model}"

    return Pipeline("training").add_step(load).add_step(train).add_step(publish)


def test_run_returns_a_result_named_after_the_pipeline() -> None:
    result = two_step_pipeline().run()

    assert isinstance(result, PipelineResult)
    assert result.pipeline_name == "training"
    assert result.success
    assert result.state == "completed"
    assert result.duration_seconds > 0


def test_each_run_gets_its_own_run_id_unless_one_is_given() -> None:
    pipeline = two_step_pipeline()

    first, second = pipeline.run(), pipeline.run()
    named = pipeline.run(run_id="nightly-2024-01-01")

    assert first.run_id and second.run_id
    assert first.run_id != second.run_id
    assert named.run_id == "nightly-2024-01-01"


def test_outputs_are_keyed_by_output_name_and_by_step_name_for_steps_without_outputs() -> None:
    result = two_step_pipeline().run()

    assert result.outputs == {
        "data/raw": [1, 2, 3],
        "model": 6,
        "metrics": {"loss": 0.1},
        "publish": "published 6",
    }


def test_a_result_reads_an_output_by_name() -> None:
    result = two_step_pipeline().run()

    assert result["model"] == 6
    assert result["publish"] == "published 6"
    assert "metrics" in result
    with pytest.raises(KeyError, match="no output 'nonsense'"):
        result["nonsense"]


def test_every_step_has_a_result_with_its_status_and_output() -> None:
    result = two_step_pipeline().run()

    assert set(result.step_results) == {"load", "train", "publish"}
    load = result.step_results["load"]
    assert isinstance(load, StepResult)
    assert load.step_name == "load"
    assert load.status is StepStatus.SUCCESS
    assert load.success
    assert not load.skipped
    assert not load.cached
    assert load.error is None
    assert load.retries == 0
    assert load.output == [1, 2, 3]
    assert result.step_results["train"].output == {"model": 6, "metrics": {"loss": 0.1}}
    assert result.step_results["publish"].output == "published 6"


def test_a_step_result_reports_how_long_the_step_ran() -> None:
    result = two_step_pipeline().run()

    assert result.step_results["load"].duration_seconds >= 0.05
    assert result.duration_seconds >= result.step_results["load"].duration_seconds


def test_a_failed_run_returns_a_result_instead_of_raising() -> None:
    @step
    def broken() -> None:
        raise RuntimeError("disk full")

    result = Pipeline("failing").add_step(broken).run()

    assert not result.success
    assert result.state == "failed"
    error = result.step_results["broken"].error
    assert error is not None
    assert str(error) == "RuntimeError: disk full"


def test_run_accepts_the_keywords_of_the_original_flowyml() -> None:
    result = two_step_pipeline().run(debug=True, auto_start_ui=False)

    assert result.success


def test_run_refuses_an_unknown_keyword() -> None:
    with pytest.raises(TypeError, match="colour"):
        two_step_pipeline().run(colour="blue")


def test_steps_given_to_the_constructor_are_part_of_the_pipeline() -> None:
    @step(outputs=["x"])
    def load() -> int:
        return 1

    assert Pipeline("ctor", steps=[load]).run()["x"] == 1
