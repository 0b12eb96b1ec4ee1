"""``@step`` and ``@step(...)``: what the decorator makes and what a Step exposes."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from core_support import CallLog, load_module

from flowyml import (
    GPUConfig,
    ResourceRequirements,
    RetryPolicy,
    Step,
    StepDefinitionError,
    get_registered_steps,
    step,
)
from flowyml.core.step import StepConfig


def test_bare_step_makes_a_step_named_after_the_function_with_default_options() -> None:
    @step
    def load() -> int:
        return 1

    assert isinstance(load, Step)
    assert load.name == "load"
    assert load.inputs == []
    assert load.outputs == []
    assert load.cache == "code_hash"
    assert load.retry == 0
    assert load.timeout is None
    assert load.resources is None
    assert load.tags == {}
    assert load.condition is None
    assert load.execution_group is None


def test_step_with_empty_parentheses_is_the_same_as_bare_step() -> None:
    @step()
    def load() -> int:
        return 1

    assert isinstance(load, Step)
    assert load.name == "load"
    assert load.cache == "code_hash"


def test_step_with_every_parameter_stores_each_of_them() -> None:
    def only_when_enabled(enabled: bool = True) -> bool:
        return enabled

    resources = ResourceRequirements(
        cpu="4", memory="16Gi", gpu=GPUConfig(gpu_type="nvidia-v100", count=2)
    )

    @step(
        inputs=["data/raw"],
        outputs=["model/trained", "metrics/train"],
        cache="input_hash",
        retry=2,
        timeout=600,
        resources=resources,
        tags={"team": "ml"},
        name="train_model",
        condition=only_when_enabled,
        execution_group="training",
        pipeline="training",
        register=True,
    )
    def train(raw: list[int], learning_rate: float = 0.01) -> tuple[str, float]:
        return "model", learning_rate

    assert train.func.__name__ == "train"
    assert train.name == "train_model"
    assert train.inputs == ["data/raw"]
    assert train.outputs == ["model/trained", "metrics/train"]
    assert train.cache == "input_hash"
    assert train.retry == 2
    assert train.retry_policy == RetryPolicy(max_retries=2)
    assert train.timeout == 600
    assert train.resources is resources
    assert train.tags == {"team": "ml", "pipeline": "training"}
    assert train.condition is only_when_enabled
    assert train.execution_group == "training"
    assert get_registered_steps() == [train]


def test_the_pipeline_option_is_recorded_as_a_pipeline_tag() -> None:
    @step(pipeline="training", tags={"owner": "ana"})
    def train() -> None:
        return None

    assert train.tags == {"owner": "ana", "pipeline": "training"}


def test_numeric_tag_values_are_kept_as_strings() -> None:
    @step(tags={"priority": 3, "fast": True})
    def load() -> None:
        return None

    assert load.tags == {"priority": "3", "fast": "True"}


def test_a_step_can_be_made_with_the_step_class_directly() -> None:
    def load() -> int:
        return 7

    made = Step(load, name="loader", outputs=["data/raw"])

    assert made.name == "loader"
    assert made.outputs == ["data/raw"]
    assert made() == 7
    assert get_registered_steps() == []  # only the decorator registers


def test_calling_a_step_calls_the_function_directly_with_its_arguments() -> None:
    @step(outputs=["total"])
    def add(a: int, b: int, *, scale: int = 1) -> int:
        return (a + b) * scale

    assert add(2, 3) == 5
    assert add(2, b=3, scale=10) == 50


def test_calling_a_step_bypasses_cache_timeout_and_condition(calls: CallLog) -> None:
    @step(timeout=30, cache="code_hash", condition=lambda: False)
    def where() -> int:
        calls.record("where")
        return os.getpid()

    assert where() == os.getpid()  # in this process, not a timeout child
    assert where() == os.getpid()
    assert calls.count("where") == 2  # never served from a cache, never skipped


def test_a_step_records_its_source_code_file_and_first_line(tmp_path: Path) -> None:
    source = (
        "from flowyml import step\n"
        "\n"
        "\n"
        "@step(outputs=['x'], register=False)\n"
        "def produce():\n"
        "    return 41 + 1\n"
    )
    module = load_module(tmp_path, "source_location_steps", source)
    produce: Step = module.produce

    assert produce.source_file == str(tmp_path / "source_location_steps.py")
    assert produce.source_line == 4  # the first line of the definition: its decorator
    assert "def produce():" in produce.source_code
    assert "return 41 + 1" in produce.source_code


def test_a_function_without_source_still_makes_a_step() -> None:
    namespace: dict[str, Any] = {}
    exec("def generated():\n    return 1\n", namespace)

    made = Step(namespace["generated"])

    assert made.source_file is None
    assert made.source_line is None
    assert made() == 1


def test_the_config_record_mirrors_the_declaration() -> None:
    def enabled() -> bool:
        return True

    @step(
        inputs=["a"],
        outputs=["b"],
        cache=False,
        retry=1,
        timeout=5,
        resources={"cpu": 2},
        tags={"k": "v"},
        condition=enabled,
        execution_group="g",
    )
    def double(a: int) -> int:
        return 2 * a

    config = double.config
    assert isinstance(config, StepConfig)
    assert config.name == "double"
    assert config.func is double.func
    assert config.inputs == ["a"]
    assert config.outputs == ["b"]
    assert config.cache is False
    assert config.retry == 1
    assert config.timeout == 5
    assert config.resources == {"cpu": 2}
    assert config.tags == {"k": "v"}
    assert config.condition is enabled
    assert config.execution_group == "g"
    assert config.source_file == double.source_file
    assert config.source_line == double.source_line


def test_the_config_record_is_read_only() -> None:
    @step
    def load() -> None:
        return None

    with pytest.raises(AttributeError):
        load.config.name = "other"  # type: ignore[misc]


def test_a_non_callable_cannot_be_a_step() -> None:
    with pytest.raises(StepDefinitionError) as raised:
        Step("not a function")  # type: ignore[arg-type]

    assert raised.value.field == "func"
