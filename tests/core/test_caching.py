"""Caching in a run: a step is reused only when its code, inputs and params are unchanged."""

from __future__ import annotations

from typing import Any

import numpy as np
from core_support import CallLog

from flowyml import Pipeline, Step, step


def chain(calls: CallLog) -> Pipeline:
    """``x`` → a → b → d ← c ← ``y``, and e on its own."""

    @step(inputs=["x"], outputs=["a"])
    def a(x: int) -> int:
        calls.record("a")
        return x * 2

    @step(inputs=["a"], outputs=["b"])
    def b(a: int) -> int:
        calls.record("b")
        return a + 1

    @step(inputs=["y"], outputs=["c"])
    def c(y: int) -> int:
        calls.record("c")
        return y * 10

    @step(inputs=["b", "c"], outputs=["d"])
    def d(b: int, c: int) -> int:
        calls.record("d")
        return b + c

    @step(outputs=["e"])
    def e() -> str:
        calls.record("e")
        return "constant"

    pipeline = Pipeline("cached")
    for made in (a, b, c, d, e):
        pipeline.add_step(made)
    return pipeline


def test_a_second_run_of_an_unchanged_pipeline_calls_no_step_function(calls: CallLog) -> None:
    pipeline = chain(calls)
    first = pipeline.run(inputs={"x": 1, "y": 2})
    calls.clear()

    second = pipeline.run(inputs={"x": 1, "y": 2})

    assert calls.names() == []
    assert second.outputs == first.outputs
    assert all(r.cached for r in second.step_results.values())
    assert not any(r.cached for r in first.step_results.values())


def test_changing_one_pipeline_input_reruns_exactly_the_steps_downstream_of_it(
    calls: CallLog,
) -> None:
    pipeline = chain(calls)
    pipeline.run(inputs={"x": 1, "y": 2})
    calls.clear()

    result = pipeline.run(inputs={"x": 5, "y": 2})

    assert sorted(calls.names()) == ["a", "b", "d"]
    assert result["d"] == 5 * 2 + 1 + 20
    assert {n for n, r in result.step_results.items() if r.cached} == {"c", "e"}


def test_a_cache_hit_returns_the_stored_value_without_calling_the_function(
    calls: CallLog,
) -> None:
    @step(outputs=["value"])
    def compute() -> list[int]:
        calls.record("compute")
        return [1, 2, 3]

    pipeline = Pipeline("hit").add_step(compute)
    pipeline.run()

    result = pipeline.run()

    assert calls.count("compute") == 1
    assert result["value"] == [1, 2, 3]
    outcome = result.step_results["compute"]
    assert outcome.cached and outcome.success
    assert outcome.cache_key is not None and outcome.cache_key.startswith("compute:")


def test_a_none_result_is_cached_like_any_other_value(calls: CallLog) -> None:
    @step(outputs=["nothing"])
    def side_effect_free() -> None:
        calls.record("side_effect_free")
        return None

    pipeline = Pipeline("none").add_step(side_effect_free)
    pipeline.run()

    result = pipeline.run()

    assert calls.count("side_effect_free") == 1
    assert result.step_results["side_effect_free"].cached
    assert "nothing" in result
    assert result["nothing"] is None


def test_a_changed_context_param_reruns_the_steps_that_take_it(calls: CallLog) -> None:
    @step(outputs=["model"])
    def train(learning_rate: float) -> float:
        calls.record("train")
        return learning_rate

    @step(outputs=["data"])
    def load() -> int:
        calls.record("load")
        return 1

    pipeline = Pipeline("params", context={"learning_rate": 0.1})
    pipeline.add_step(train).add_step(load)
    pipeline.run()
    calls.clear()

    result = pipeline.run(context={"learning_rate": 0.2})

    assert calls.names() == ["train"]
    assert result["model"] == 0.2


def test_a_numpy_input_changed_in_one_middle_element_reruns_the_step(calls: CallLog) -> None:
    @step(inputs=["features"], outputs=["total"])
    def total(features: Any) -> float:
        calls.record("total")
        return float(features.sum())

    pipeline = Pipeline("arrays").add_step(total)
    features = np.zeros(100_000)
    pipeline.run(inputs={"features": features})
    changed = features.copy()
    changed[50_000] = 1.0

    result = pipeline.run(inputs={"features": changed})

    assert calls.count("total") == 2
    assert result["total"] == 1.0


def test_a_step_with_cache_false_runs_every_time(calls: CallLog) -> None:
    @step(outputs=["now"], cache=False)
    def clock() -> int:
        calls.record("clock")
        return calls.count("clock")

    pipeline = Pipeline("uncached").add_step(clock)

    assert [pipeline.run()["now"], pipeline.run()["now"]] == [1, 2]
    assert calls.count("clock") == 2


def test_input_hash_keeps_the_cache_when_only_the_code_changes(calls: CallLog) -> None:
    def version(tag: str) -> Any:
        """``steps.clean`` as an edit leaves it: same module, same name, another body."""
        namespace: dict[str, Any] = {"__name__": "steps", "calls": calls}
        exec(f"def clean(raw):\n    calls.record('{tag}')\n    return 'from {tag}'\n", namespace)
        return namespace["clean"]

    v1, v2 = version("v1"), version("v2")
    first = Step(v1, name="clean", inputs=["raw"], outputs=["clean"], cache="input_hash")
    second = Step(v2, name="clean", inputs=["raw"], outputs=["clean"], cache="input_hash")
    Pipeline("p").add_step(first).run(inputs={"raw": 1})

    result = Pipeline("p").add_step(second).run(inputs={"raw": 1})

    assert calls.names() == ["v1"]
    assert result["clean"] == "from v1"


def test_code_hash_reruns_the_step_when_its_code_changes(calls: CallLog) -> None:
    def v1(raw: int) -> str:
        calls.record("v1")
        return "from v1"

    def v2(raw: int) -> str:
        calls.record("v2")
        return "from v2"

    first = Step(v1, name="clean", inputs=["raw"], outputs=["clean"])
    second = Step(v2, name="clean", inputs=["raw"], outputs=["clean"])
    Pipeline("p").add_step(first).run(inputs={"raw": 1})

    result = Pipeline("p").add_step(second).run(inputs={"raw": 1})

    assert calls.names() == ["v1", "v2"]
    assert result["clean"] == "from v2"


def test_a_callable_cache_reuses_the_result_while_its_key_is_unchanged(calls: CallLog) -> None:
    def by_version(inputs: dict[str, Any], params: dict[str, Any]) -> Any:
        return inputs["dataset"]["version"]

    @step(inputs=["dataset"], outputs=["rows"], cache=by_version)
    def count(dataset: dict[str, Any]) -> int:
        calls.record("count")
        return len(dataset["rows"])

    pipeline = Pipeline("keyed").add_step(count)
    pipeline.run(inputs={"dataset": {"version": 1, "rows": [1, 2]}})
    same_version = pipeline.run(inputs={"dataset": {"version": 1, "rows": [1, 2, 3]}})
    new_version = pipeline.run(inputs={"dataset": {"version": 2, "rows": [1, 2, 3]}})

    assert same_version["rows"] == 2  # the key function said nothing changed
    assert new_version["rows"] == 3
    assert calls.count("count") == 2


def test_a_step_run_in_a_child_process_is_cached_too(calls: CallLog) -> None:
    @step(outputs=["value"], timeout=30)
    def compute() -> int:
        calls.record("compute")
        return 42

    pipeline = Pipeline("child").add_step(compute)
    pipeline.run()

    result = pipeline.run()

    assert result["value"] == 42
    assert result.step_results["compute"].cached
    assert calls.count("compute") == 1


def test_a_cached_entry_under_other_output_names_is_not_reused(calls: CallLog) -> None:
    def load() -> int:
        calls.record("load")
        return 1

    def consume(value: int) -> int:
        return value + 1

    before = Step(load, name="load", outputs=["data/old"])
    after = Step(load, name="load", outputs=["data/new"])  # only the decorator changed
    consumer = Step(consume, name="consume", inputs=["data/new"], outputs=["result"])
    Pipeline("renamed").add_step(before).run()

    result = Pipeline("renamed").add_step(after).add_step(consumer).run()

    assert result.success
    assert result["result"] == 2
    assert calls.count("load") == 2


def test_enable_cache_false_runs_every_step_every_time(calls: CallLog) -> None:
    @step(outputs=["value"])
    def compute() -> int:
        calls.record("compute")
        return 1

    pipeline = Pipeline("off", enable_cache=False).add_step(compute)
    pipeline.run()
    result = pipeline.run()

    assert calls.count("compute") == 2
    assert not result.step_results["compute"].cached
