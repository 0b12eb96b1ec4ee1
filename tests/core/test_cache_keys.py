"""Cache keys: ``"<name>:<hash>"`` over the real content of code, inputs and params."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd
import pytest

from flowyml import Step

KEY = re.compile(r"(?P<name>[^:]+):(?P<hash>[0-9a-f]{64})")


def first(raw: Any, learning_rate: float = 0.1) -> Any:
    return raw


def second(raw: Any, learning_rate: float = 0.1) -> Any:
    return [raw]


def make(func: Any = first, **options: Any) -> Step:
    return Step(func, name="train", inputs=["raw"], **options)


def test_a_cache_key_is_the_step_name_and_a_hash() -> None:
    key = make().get_cache_key({"raw": 1}, {"learning_rate": 0.1})

    match = KEY.fullmatch(key)
    assert match is not None, key
    assert match["name"] == "train"


def test_the_same_code_inputs_and_params_give_the_same_key() -> None:
    one = make().get_cache_key({"raw": [1, 2]}, {"learning_rate": 0.1})
    two = make().get_cache_key({"raw": [1, 2]}, {"learning_rate": 0.1})

    assert one == two


def test_code_hash_keys_change_with_the_inputs() -> None:
    step = make(cache="code_hash")

    assert step.get_cache_key({"raw": 1}, {}) != step.get_cache_key({"raw": 2}, {})


def test_code_hash_keys_change_with_the_params() -> None:
    step = make(cache="code_hash")

    assert step.get_cache_key({"raw": 1}, {"learning_rate": 0.1}) != step.get_cache_key(
        {"raw": 1}, {"learning_rate": 0.2}
    )


def test_code_hash_keys_change_with_the_code() -> None:
    assert make(first).get_cache_key({"raw": 1}, {}) != make(second).get_cache_key({"raw": 1}, {})


def test_input_hash_keys_change_with_the_inputs_and_params() -> None:
    step = make(cache="input_hash")
    base = step.get_cache_key({"raw": 1}, {"learning_rate": 0.1})

    assert base != step.get_cache_key({"raw": 2}, {"learning_rate": 0.1})
    assert base != step.get_cache_key({"raw": 1}, {"learning_rate": 0.2})


def edited(body: str) -> Any:
    """``train`` of module ``steps`` as a person's edit leaves it: same module, same name."""
    namespace: dict[str, Any] = {"__name__": "steps"}
    exec(f"def train(raw, learning_rate=0.1):\n    return {body}\n", namespace)
    return namespace["train"]


def test_input_hash_keys_do_not_change_with_the_code() -> None:
    before = make(edited("raw"), cache="input_hash")
    after = make(edited("[raw]"), cache="input_hash")

    assert before.get_cache_key({"raw": 1}, {}) == after.get_cache_key({"raw": 1}, {})


def test_input_hash_keys_of_two_different_functions_differ() -> None:
    one = make(first, cache="input_hash").get_cache_key({"raw": 1}, {"learning_rate": 0.1})
    two = make(second, cache="input_hash").get_cache_key({"raw": 1}, {"learning_rate": 0.1})

    assert one != two


def test_cache_true_is_the_code_hash_strategy() -> None:
    inputs, params = {"raw": [3, 4]}, {"learning_rate": 0.5}
    with_true = make(cache=True).get_cache_key(inputs, params)
    with_code_hash = make(cache="code_hash").get_cache_key(inputs, params)

    assert with_true == with_code_hash
    assert make(cache=True).cache_strategy == "code_hash"


@pytest.mark.parametrize("cache", [False, None])
def test_a_step_without_caching_has_the_no_cache_key(cache: Any) -> None:
    assert make(cache=cache).get_cache_key({"raw": 1}, {}) == "train:no-cache"


def test_a_callable_cache_receives_the_inputs_and_the_params() -> None:
    received: list[tuple[dict[str, Any], dict[str, Any]]] = []

    def key_of(inputs: dict[str, Any], params: dict[str, Any]) -> str:
        received.append((inputs, params))
        return "v1"

    make(cache=key_of).get_cache_key({"raw": [1]}, {"learning_rate": 0.3})

    assert received == [({"raw": [1]}, {"learning_rate": 0.3})]


def test_a_callable_cache_return_value_decides_the_key() -> None:
    def by_version(inputs: dict[str, Any], params: dict[str, Any]) -> str:
        return str(inputs["raw"]["version"])

    step = make(cache=by_version)
    v1 = step.get_cache_key({"raw": {"version": 1, "rows": [1]}}, {})
    v1_other_rows = step.get_cache_key({"raw": {"version": 1, "rows": [2]}}, {})
    v2 = step.get_cache_key({"raw": {"version": 2, "rows": [1]}}, {})

    assert v1 == v1_other_rows
    assert v1 != v2
    assert KEY.fullmatch(v1) is not None


def input_hash(value: Any) -> str:
    return make().get_input_hash({"raw": value})


def test_numpy_arrays_differing_in_one_middle_element_hash_differently() -> None:
    # Big enough that numpy's repr elides the middle: a repr-based hash would collide.
    original = np.arange(100_000, dtype=np.float64)
    changed = original.copy()
    changed[50_000] += 1e-9

    assert repr(original) == repr(changed)
    assert input_hash(original) != input_hash(changed)


def test_equal_numpy_arrays_hash_the_same_whatever_their_memory_layout() -> None:
    base = np.arange(24, dtype=np.int64).reshape(4, 6)
    view = base[:, ::2]  # not contiguous

    assert input_hash(view) == input_hash(np.ascontiguousarray(view))
    assert input_hash(base) == input_hash(base.copy())


def test_numpy_arrays_with_equal_values_but_other_dtype_or_shape_hash_differently() -> None:
    base = np.arange(6, dtype=np.int64)

    assert input_hash(base) != input_hash(base.astype(np.int32))
    assert input_hash(base) != input_hash(base.reshape(2, 3))


def test_pandas_frames_differing_in_one_cell_hash_differently() -> None:
    frame = pd.DataFrame({"x": np.arange(10_000), "label": [f"row-{i}" for i in range(10_000)]})
    numeric = frame.copy()
    numeric.loc[5_000, "x"] = -1
    text = frame.copy()
    text.loc[5_000, "label"] = "changed"

    assert input_hash(frame) == input_hash(frame.copy())
    assert input_hash(frame) != input_hash(numeric)
    assert input_hash(frame) != input_hash(text)


def test_pandas_frames_differing_in_a_column_name_or_the_index_hash_differently() -> None:
    frame = pd.DataFrame({"x": [1, 2, 3]})

    assert input_hash(frame) != input_hash(frame.rename(columns={"x": "y"}))
    assert input_hash(frame) != input_hash(frame.set_axis([10, 11, 12]))


def test_pandas_series_differing_in_one_value_hash_differently() -> None:
    series = pd.Series(np.arange(1_000, dtype=float), name="s")
    changed = series.copy()
    changed.iloc[500] = 0.5

    assert input_hash(series) == input_hash(series.copy())
    assert input_hash(series) != input_hash(changed)


def test_bytes_differing_in_one_byte_hash_differently() -> None:
    data = bytes(range(256)) * 100
    changed = bytearray(data)
    changed[len(data) // 2] ^= 1

    assert input_hash(data) == input_hash(bytes(data))
    assert input_hash(data) != input_hash(bytes(changed))


def test_sets_hash_the_same_in_any_order_and_dicts_by_their_order() -> None:
    assert input_hash({3, 1, 2}) == input_hash({1, 2, 3})
    assert input_hash({"a": 1, "b": 2}) != input_hash({"b": 2, "a": 1})


def test_lists_hash_by_order_and_by_every_nested_element() -> None:
    nested = {"rows": [[1, 2], [3, 4]], "meta": ("a", None)}

    assert input_hash([1, 2]) != input_hash([2, 1])
    assert input_hash(nested) != input_hash({"rows": [[1, 2], [3, 5]], "meta": ("a", None)})
    assert input_hash(nested) != input_hash({"rows": [[1, 2], [3, 4]], "meta": ("a", 0)})


def test_values_of_different_types_hash_differently() -> None:
    assert input_hash(1) != input_hash(1.0)
    assert input_hash(1) != input_hash("1")
    assert input_hash(1) != input_hash(True)
    assert input_hash([1]) != input_hash((1,))
    assert input_hash(b"a") != input_hash("a")
