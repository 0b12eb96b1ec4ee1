"""Context values reach a step as its annotations say, the same way on every runner (one rule in
``flowyml.core.params``): checked before any step runs, converted where the type allows."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, SecretStr

from flowyml import Pipeline, PipelineDefinitionError, step


class Optimizer(BaseModel):
    name: str
    lr: float


def test_an_int_for_a_float_param_arrives_as_a_float() -> None:
    @step(outputs=["kind"])
    def report(learning_rate: float) -> str:
        return type(learning_rate).__name__

    result = Pipeline("p", context={"learning_rate": 1}, auto_discover=True).run()

    assert result["kind"] == "float"


def test_a_string_for_an_int_param_is_refused_before_any_step_runs() -> None:
    @step(outputs=["n"])
    def train(epochs: int) -> int:
        return epochs

    with pytest.raises(PipelineDefinitionError, match=r"step 'train': param 'epochs'"):
        Pipeline("p", context={"epochs": "3"}, auto_discover=True).run()


def test_a_dict_for_a_model_param_arrives_as_the_model() -> None:
    @step(outputs=["opt"])
    def configure(optimizer: Optimizer) -> Any:
        return optimizer

    result = Pipeline(
        "p", context={"optimizer": {"name": "adam", "lr": 0.1}}, auto_discover=True
    ).run()

    assert result["opt"] == Optimizer(name="adam", lr=0.1)


def test_a_plain_string_for_a_secret_param_arrives_wrapped() -> None:
    @step(outputs=["shown"])
    def connect(token: SecretStr) -> str:
        return str(token)

    result = Pipeline("p", context={"token": "hunter2"}, auto_discover=True).run()

    assert result["shown"] == "**********"


def test_a_wrong_type_given_only_to_the_run_is_refused_before_any_step_runs(
    tmp_path: Any,
) -> None:
    ran = tmp_path / "ran"

    @step(outputs=["n"])
    def train(epochs: int = 1) -> int:
        ran.touch()
        return epochs

    with pytest.raises(PipelineDefinitionError, match=r"param 'epochs'"):
        Pipeline("p", auto_discover=True).run(context={"epochs": "many"})
    assert not ran.exists()


def test_the_refusal_does_not_show_the_value() -> None:
    @step(outputs=["n"])
    def connect(port: int) -> int:
        return port

    with pytest.raises(PipelineDefinitionError) as caught:
        Pipeline("p", context={"port": "s3cret-value"}, auto_discover=True).build()

    assert "s3cret-value" not in str(caught.value)


def test_a_string_annotation_is_resolved() -> None:
    namespace: dict[str, Any] = {"__name__": "steps", "step": step}
    exec(
        "from __future__ import annotations\n"
        "@step(outputs=['kind'])\n"
        "def report(rate: float):\n"
        "    return type(rate).__name__\n",
        namespace,
    )

    result = Pipeline("p", context={"rate": 2}, auto_discover=True).run()

    assert result["kind"] == "float"
