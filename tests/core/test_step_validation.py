"""A bad declaration fails at decoration time, naming the step and the field to fix."""

from __future__ import annotations

import json
from typing import Any

import pytest

from flowyml import Pipeline, RetryPolicy, Step, StepDefinitionError, get_registered_steps, step


def decorate(**options: Any) -> None:
    """Decorate a step named ``train`` with ``options``."""

    @step(**options)
    def train(raw: Any = None) -> None:
        return None


def assert_refused(field: str, **options: Any) -> StepDefinitionError:
    with pytest.raises(StepDefinitionError) as raised:
        decorate(**options)
    error = raised.value
    assert error.step == "train"
    assert error.field == field
    assert "train" in str(error)
    assert field in str(error)
    return error


@pytest.mark.parametrize(
    "retry",
    [-1, "2", True, 2.5, None],
    ids=["negative", "string", "bool", "float", "none"],
)
def test_a_retry_that_is_not_a_non_negative_count_is_refused(retry: Any) -> None:
    assert_refused("retry", retry=retry)


@pytest.mark.parametrize(
    ("retry", "field"),
    [
        ({"max_retries": -1}, "retry"),
        ({"max_retries": "2"}, "retry"),
        ({"delay": -1}, "retry.delay"),
        ({"backoff": "sometimes"}, "retry.backoff"),
        ({"jitter": "lots"}, "retry.jitter"),
        ({"retries": 2}, "retry.retries"),
    ],
    ids=["negative-count", "string-count", "negative-delay", "backoff", "jitter", "unknown-key"],
)
def test_a_bad_retry_policy_dict_is_refused_naming_the_sub_field(
    retry: dict[str, Any], field: str
) -> None:
    assert_refused(field, retry=retry)


@pytest.mark.parametrize(
    "timeout",
    [-1, 0, "60", True, float("nan"), float("inf")],
    ids=["negative", "zero", "string", "bool", "nan", "inf"],
)
def test_a_timeout_that_is_not_a_positive_number_of_seconds_is_refused(timeout: Any) -> None:
    assert_refused("timeout", timeout=timeout)


@pytest.mark.parametrize("cache", ["content_hash", 3, ["code_hash"]])
def test_an_unknown_cache_strategy_is_refused(cache: Any) -> None:
    error = assert_refused("cache", cache=cache)
    assert "code_hash" in error.problem  # the message lists what is accepted


@pytest.mark.parametrize("condition", [True, "enabled", 1])
def test_a_non_callable_condition_is_refused(condition: Any) -> None:
    assert_refused("condition", condition=condition)


@pytest.mark.parametrize(
    "names",
    ["data/raw", {"data/raw": 1}, [1], [""], ["a", "a"], 7],
    ids=["string", "dict", "int-item", "empty-item", "duplicate", "int"],
)
@pytest.mark.parametrize("field", ["inputs", "outputs"])
def test_inputs_and_outputs_must_be_lists_of_distinct_non_empty_strings(
    field: str, names: Any
) -> None:
    assert_refused(field, **{field: names})


def test_a_name_that_is_both_input_and_output_of_one_step_is_refused() -> None:
    assert_refused("outputs", inputs=["data"], outputs=["data"])


def test_a_step_with_an_input_no_parameter_takes_can_be_made_and_registered() -> None:
    @step(inputs=["data/raw"])
    def train() -> None:
        return None

    made = Step(train.func, name="train_again", inputs=["data/raw", "data/extra"])

    assert get_registered_steps() == [train]
    assert made.binding_problem is not None
    assert "'data/raw', 'data/extra'" in made.binding_problem


def test_an_input_with_no_parameter_to_bind_to_is_refused_when_the_pipeline_is_built() -> None:
    calls: list[str] = []

    @step(inputs=["data/raw"])
    def train() -> None:
        calls.append("train")

    for attempt in (Pipeline("p", steps=[train]).build, Pipeline("p", steps=[train]).run):
        with pytest.raises(StepDefinitionError) as raised:
            attempt()
        assert (raised.value.step, raised.value.field) == ("train", "inputs")
        assert "data/raw" in str(raised.value)
    assert calls == []


@pytest.mark.parametrize(
    ("resources", "field"),
    [
        ({"cpu": "abc"}, "resources.cpu"),
        ({"memory": "16gb"}, "resources.memory"),
        ({"gpu": -1}, "resources.gpu.count"),
        ({"gpus": 1}, "resources.gpus"),
        ("4 cores", "resources"),
    ],
    ids=["cpu", "memory", "gpu", "unknown-key", "not-a-dict"],
)
def test_bad_resources_are_refused_naming_the_resource_field(resources: Any, field: str) -> None:
    assert_refused(field, resources=resources)


@pytest.mark.parametrize("tags", [["team"], {"team": object()}, {"": "x"}])
def test_tags_must_map_names_to_strings(tags: Any) -> None:
    with pytest.raises(StepDefinitionError) as raised:
        decorate(tags=tags)
    assert raised.value.field.startswith("tags")


def test_a_dict_tag_value_is_kept_as_its_json() -> None:
    @step(tags={"dagster-k8s/config": {"job_metadata": {"labels": {"team": "ml"}}}})
    def train() -> None:
        return None

    assert json.loads(train.tags["dagster-k8s/config"]) == {
        "job_metadata": {"labels": {"team": "ml"}}
    }


def test_a_dict_tag_value_that_is_not_json_is_refused_naming_the_tag() -> None:
    assert_refused("tags['config']", tags={"config": {"when": object()}})


@pytest.mark.parametrize("group", ["", "   ", 3])
def test_an_execution_group_must_be_a_non_empty_string(group: Any) -> None:
    assert_refused("execution_group", execution_group=group)


@pytest.mark.parametrize("pipeline", ["", [], 3])
def test_a_pipeline_scope_must_be_a_non_empty_name(pipeline: Any) -> None:
    assert_refused("pipeline", pipeline=pipeline)


def test_a_valid_retry_policy_object_is_accepted_as_is() -> None:
    policy = RetryPolicy(max_retries=3, delay=1.5)

    @step(retry=policy)
    def train() -> None:
        return None

    assert train.retry_policy is policy
    assert train.retry == 3
