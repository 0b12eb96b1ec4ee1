"""A ``timeout`` child sends its result back with large buffers out of band (pickle protocol 5):
an array crosses the pipe from its own memory and is rebuilt on the buffer it lands in. What
comes back is what the child returned."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from flowyml import Pipeline, step
from flowyml.core.isolation import dumps_out_of_band, run_with_deadline

TIMEOUT = 60.0


def returned(value: Any) -> Any:
    return run_with_deadline(lambda: value, timeout=TIMEOUT, step="send")


def grid() -> np.ndarray:
    return np.arange(300_000, dtype=np.float64).reshape(500, 600)


@pytest.mark.parametrize(
    "array",
    [grid(), np.asfortranarray(grid()), grid()[:, ::3], np.float32(2.5), np.empty((0, 4))],
    ids=["c-order", "fortran-order", "strided-view", "scalar", "empty"],
)
def test_an_array_comes_back_equal_with_its_dtype_and_order(array: Any) -> None:
    back = returned(array)

    np.testing.assert_array_equal(back, array)
    assert back.dtype == array.dtype
    assert np.isfortran(back) == np.isfortran(array)


def test_a_large_array_is_sent_outside_the_pickle() -> None:
    data, buffers = dumps_out_of_band({"a": grid()})

    assert len(data) < 1_000
    assert [b.raw().nbytes for b in buffers] == [grid().nbytes]


def test_a_writeable_array_comes_back_writeable_and_a_read_only_one_read_only() -> None:
    frozen = grid()
    frozen.flags.writeable = False

    writeable, read_only = returned((grid(), frozen))

    assert writeable.flags.writeable
    assert not read_only.flags.writeable


def test_several_buffers_come_back_each_in_its_place() -> None:
    values = {"x": grid(), "small": 3, "y": -grid()[:100], "text": "z" * 200_000}

    back = returned(values)

    assert back.keys() == values.keys()
    np.testing.assert_array_equal(back["x"], values["x"])
    np.testing.assert_array_equal(back["y"], values["y"])
    assert back["small"] == 3
    assert back["text"] == values["text"]


def test_a_timeout_steps_array_output_reaches_the_next_step_equal() -> None:
    @step(outputs=["a"], timeout=TIMEOUT, register=False)
    def produce() -> Any:
        return grid()

    @step(inputs=["a"], outputs=["total"], timeout=TIMEOUT, register=False)
    def add_up(a: Any) -> float:
        return float(a.sum())

    result = Pipeline("buffers", enable_cache=False).add_step(produce).add_step(add_up).run()

    np.testing.assert_array_equal(result["a"], grid())
    assert result["total"] == float(grid().sum())
