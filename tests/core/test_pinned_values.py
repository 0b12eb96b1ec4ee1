"""A large output the cache holds is kept once: the plain runner lets go of the value, and each
taker, and the run's result at the end, loads its own copy from the entry the run holds open.

The values these tests pass are small, so the runner's ``PIN_MIN_BYTES`` is lowered to pin every
entry; the measured memory of a 300 MB array is ``bench/plain_memory.py``'s.
"""

from __future__ import annotations

import os
import shutil
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from core_support import run_script

from flowyml import CacheStore, Pipeline, step
from flowyml.core import cache_store
from flowyml.core.errors import CacheEntryError
from flowyml.core.results import PipelineResult
from flowyml.core.serialization import dump_outputs

KEY = "step:abc"


class Payload:
    """A value a weak reference can follow, so a test can tell whether the runner let it go."""

    def __init__(self, numbers: list[int]) -> None:
        self.numbers = numbers

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Payload) and other.numbers == self.numbers

    __hash__ = None  # type: ignore[assignment]


@pytest.fixture
def pin_every_entry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cache_store, "PIN_MIN_BYTES", 0)


def open_files() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def dump(outputs: dict[str, Any]) -> Any:
    return lambda file: dump_outputs("s", outputs, file)


# --- the store ------------------------------------------------------------------------------------


def test_a_pinned_entry_loads_after_the_store_is_cleared(tmp_path: Path) -> None:
    store = CacheStore(tmp_path / "cache")
    stored, pinned = store.put_pinned(KEY, dump({"a": [1, 2, 3]}), 0)
    assert stored and pinned is not None

    shutil.rmtree(tmp_path / "cache")

    assert pinned.load() == {"a": [1, 2, 3]}
    pinned.close()


def test_a_pinned_entry_keeps_its_value_when_another_writer_replaces_the_entry(
    tmp_path: Path,
) -> None:
    store = CacheStore(tmp_path / "cache")
    _, pinned = store.put_pinned(KEY, dump({"a": "mine"}), 0)
    assert pinned is not None

    store.put(KEY, cache_store.pickle.dumps({"a": "theirs"}))

    assert pinned.load() == {"a": "mine"}
    assert store.get(KEY) == (True, {"a": "theirs"})
    pinned.close()


def test_a_hit_pins_the_entry_it_verified(tmp_path: Path) -> None:
    store = CacheStore(tmp_path / "cache")
    store.put_streamed(KEY, dump({"a": 1}))

    hit, outputs, pinned = store.get_pinned(KEY, 0)
    assert (hit, outputs) == (True, {"a": 1}) and pinned is not None
    store.path_for(KEY).unlink()

    assert pinned.load() == {"a": 1}
    pinned.close()


def test_an_entry_smaller_than_min_bytes_is_not_held(tmp_path: Path) -> None:
    store = CacheStore(tmp_path / "cache")
    before = open_files()

    assert store.put_pinned(KEY, dump({"a": 1}), 1 << 20) == (True, None)
    assert store.get_pinned(KEY, 1 << 20) == (True, {"a": 1}, None)
    assert open_files() == before


def test_a_pinned_entry_truncated_in_place_raises_cache_entry_error_naming_it(
    tmp_path: Path,
) -> None:
    store = CacheStore(tmp_path / "cache")
    _, pinned = store.put_pinned(KEY, dump({"a": 1}), 0)
    assert pinned is not None
    os.truncate(store.path_for(KEY), 10)

    with pytest.raises(CacheEntryError, match=store.path_for(KEY).name):
        pinned.load()
    pinned.close()


def test_a_damaged_entry_is_a_miss_and_nothing_stays_open(tmp_path: Path) -> None:
    store = CacheStore(tmp_path / "cache")
    store.put_streamed(KEY, dump({"a": 1}))
    path = store.path_for(KEY)
    path.write_bytes(path.read_bytes()[:-1] + b"!")
    before = open_files()

    assert store.get_pinned(KEY, 0) == (False, None, None)
    assert open_files() == before


# --- the plain runner -----------------------------------------------------------------------------


def two_steps(seen: dict[str, Any], *, retry: int = 0) -> Pipeline:
    @step(outputs=["value"])
    def make() -> np.ndarray:
        value = np.arange(3)
        seen["made"] = weakref.ref(value)
        return value

    @step(inputs=["value"], outputs=["total"], retry=retry)
    def use(value: np.ndarray) -> int:
        seen["producer's value alive while used"] = seen["made"]() is not None
        value += 10  # changes only its own copy
        seen["attempts"] = seen.get("attempts", 0) + 1
        if seen["attempts"] <= retry:
            raise RuntimeError("first attempt fails after changing its input")
        return int(value.sum())

    return Pipeline("pinned", auto_discover=True)


@pytest.mark.usefixtures("pin_every_entry")
def test_the_producers_array_is_let_go_before_its_taker_runs() -> None:
    seen: dict[str, Any] = {}
    result = two_steps(seen).run()

    assert result["total"] == 33
    assert seen["producer's value alive while used"] is False


@pytest.mark.usefixtures("pin_every_entry")
def test_the_result_holds_the_value_as_produced_after_its_taker_changed_its_copy() -> None:
    result = two_steps({}).run()

    assert result["value"].tolist() == [0, 1, 2]
    assert result.step_results["make"].outputs["value"].tolist() == [0, 1, 2]


@pytest.mark.usefixtures("pin_every_entry")
def test_a_retry_loads_the_value_as_produced_not_as_the_failed_attempt_left_it() -> None:
    seen: dict[str, Any] = {}
    result = two_steps(seen, retry=1).run()

    assert seen["attempts"] == 2
    assert result["total"] == 33


def hit_then_grow() -> Pipeline:
    @step(outputs=["value"])
    def make() -> np.ndarray:
        return np.arange(3)

    @step(inputs=["value"], outputs=["grown"], cache=False)
    def grow(value: np.ndarray) -> list[int]:  # on a hit: the hit's own value, taken as it is
        value += 7
        return value.tolist()

    @step(inputs=["value", "grown"], outputs=["seen"], cache=False)
    def read(value: np.ndarray, grown: list[int]) -> list[int]:  # a copy loaded from the entry
        return value.tolist()

    return Pipeline("pinned", auto_discover=True)


@pytest.mark.usefixtures("pin_every_entry")
def test_after_a_cache_hit_every_taker_and_the_result_see_the_value_as_stored() -> None:
    hit_then_grow().run()
    result = hit_then_grow().run()

    assert result.step_results["make"].cached
    assert result["grown"] == [7, 8, 9]
    assert result["seen"] == [0, 1, 2]
    assert result["value"].tolist() == [0, 1, 2]


def shared_outputs() -> Pipeline:
    @step(outputs=["x", "y"])
    def make() -> tuple[np.ndarray, np.ndarray]:
        value = np.arange(3)
        return value, value

    @step(inputs=["x"], outputs=["changed"], cache=False)
    def change(x: np.ndarray) -> bool:
        x += 1
        return True

    @step(inputs=["y", "changed"], outputs=["seen"], cache=False)
    def read(y: np.ndarray, changed: bool) -> list[int]:
        return y.tolist()

    @step(inputs=["x", "y"], outputs=["both"], cache=False)
    def both(x: np.ndarray, y: np.ndarray) -> list[int]:  # two inputs, two copies
        x += 10
        return y.tolist()

    return Pipeline("pinned", auto_discover=True)


@pytest.mark.usefixtures("pin_every_entry")
@pytest.mark.parametrize("run", ["first", "cache hit"])
def test_a_change_to_one_output_does_not_reach_another_that_was_the_same_object(run: str) -> None:
    result = shared_outputs().run()
    if run == "cache hit":
        result = shared_outputs().run()
        assert result.step_results["make"].cached

    assert result["seen"] == [0, 1, 2]
    assert result["both"] == [0, 1, 2]
    assert result["x"] is result["y"]  # shared in the result, as the step returned them
    assert result["x"].tolist() == [0, 1, 2]


class Unloadable(Exception):
    """Pickles, but its pickle does not load: ``Exception`` pickles only ``args``."""

    def __init__(self, code: int, text: str) -> None:
        super().__init__(f"{code}: {text}")


class TaggedArray(np.ndarray):
    """An array subclass with state of its own, which pickling drops."""

    tag = "untagged"

    def __array_finalize__(self, obj: Any) -> None:
        self.tag = getattr(obj, "tag", "untagged")


def tagged() -> TaggedArray:
    value = np.arange(3).view(TaggedArray)
    value.tag = "metres"
    return value


def read_only() -> np.ndarray:
    value = np.arange(3.0)
    value.setflags(write=False)
    return value


def unloadable() -> dict[str, Any]:
    return {"error": Unloadable(1, "no")}


def frame_of_unloadable() -> pd.DataFrame:
    return pd.DataFrame({"error": [Unloadable(1, "no")]})


# A value, and what tells it is the one the step returned (a pickle's copy would not do).
VALUES_A_PICKLE_DOES_NOT_GIVE_BACK: dict[str, tuple[Any, Any]] = {
    "an object whose pickle does not load": (
        unloadable,
        lambda value: isinstance(value["error"], Unloadable),
    ),
    "a frame holding such an object": (
        frame_of_unloadable,
        lambda value: isinstance(value["error"][0], Unloadable),
    ),
    "an array subclass with state": (tagged, lambda value: value.tag == "metres"),
}


@pytest.mark.usefixtures("pin_every_entry")
@pytest.mark.parametrize("kind", VALUES_A_PICKLE_DOES_NOT_GIVE_BACK)
def test_a_value_its_pickle_may_not_give_back_is_kept_as_it_is(kind: str) -> None:
    make_value, is_as_returned = VALUES_A_PICKLE_DOES_NOT_GIVE_BACK[kind]

    @step(outputs=["value"])
    def make() -> Any:
        return make_value()

    @step(inputs=["value"], outputs=["taken"], cache=False)
    def use(value: Any) -> bool:
        return True

    result = Pipeline("pinned", auto_discover=True).run()

    assert result.success  # a value let go of that does not load back fails the run
    assert result.step_results["make"].cache_key is not None  # it was cached
    assert is_as_returned(result["value"])


@pytest.mark.usefixtures("pin_every_entry")
def test_a_read_only_array_reaches_its_taker_as_a_writable_copy() -> None:
    @step(outputs=["value"])
    def make() -> np.ndarray:
        return read_only()

    @step(inputs=["value"], outputs=["centred"], cache=False)
    def centre(value: np.ndarray) -> list[float]:
        value -= value.mean()
        return value.tolist()

    result = Pipeline("pinned", auto_discover=True).run()

    assert result["centred"] == [-1.0, 0.0, 1.0]


def meddling_run(meddle: Callable[[Path], None], cache_dir: Path) -> PipelineResult:
    """``make`` -> ``meddle`` (does something to the cache directory) -> ``use``, which takes
    ``make``'s value after ``meddle`` ran (and is retried twice, should it fail)."""

    @step(outputs=["value"])
    def make() -> np.ndarray:
        return np.arange(3)

    @step(inputs=["value"], outputs=["meddled"], cache=False)
    def meddler(value: np.ndarray) -> bool:
        meddle(cache_dir)
        return True

    @step(inputs=["value", "meddled"], outputs=["total"], cache=False, retry=2)
    def use(value: np.ndarray, meddled: bool) -> int:
        return int(value.sum())

    return Pipeline("pinned", auto_discover=True).run()


def cut_entries_short(cache_dir: Path) -> None:
    for entry in cache_dir.rglob("*.pkl"):
        os.truncate(entry, 10)


@pytest.mark.usefixtures("pin_every_entry")
def test_the_run_keeps_its_values_when_the_cache_is_cleared_during_it(
    private_cache_dir: Path,
) -> None:
    result = meddling_run(shutil.rmtree, private_cache_dir)

    assert result["total"] == 3
    assert result["value"].tolist() == [0, 1, 2]


@pytest.mark.usefixtures("pin_every_entry")
def test_an_entry_cut_short_during_the_run_fails_its_steps_and_the_run_still_returns(
    private_cache_dir: Path,
) -> None:
    result = meddling_run(cut_entries_short, private_cache_dir)

    taker, producer = result.step_results["use"], result.step_results["make"]
    assert not taker.success and "CacheEntryError" in str(taker.error)
    assert taker.retries == 0
    assert not producer.success and "changed while the run held it" in str(producer.error)


@pytest.mark.usefixtures("pin_every_entry")
def test_a_run_leaves_no_entry_open_whether_its_steps_succeed_or_fail() -> None:
    @step(outputs=["value"])
    def make() -> np.ndarray:
        return np.arange(3)

    @step(inputs=["value"], outputs=["broken"])
    def fail(value: np.ndarray) -> int:
        raise ValueError("no")

    before = open_files()
    result = Pipeline("pinned", auto_discover=True).run()

    assert not result.success
    assert open_files() == before


def test_a_run_holds_at_most_max_held_entries_open_and_caches_every_value(
    tmp_path: Path,
) -> None:
    script = """
        import os, resource, sys
        from flowyml import Pipeline, step
        from flowyml.core import cache_store, handoff

        cache_store.PIN_MIN_BYTES = 0
        handoff.MAX_HELD_ENTRIES = 8

        def chain(cache_dir):
            @step(outputs=["v0"])
            def first() -> bytes:
                return b"0"

            for i in range(1, 40):
                @step(inputs=[f"v{i - 1}"], outputs=[f"v{i}"], name=f"s{i}")
                def grow(value: bytes) -> bytes:
                    return value + b"+"

            return Pipeline("many", auto_discover=True, cache_dir=cache_dir)

        chain(sys.argv[1] + "/warm-up").run()  # imports and code fingerprints, before the limit
        spare = len(os.listdir("/proc/self/fd")) + handoff.MAX_HELD_ENTRIES + 8
        resource.setrlimit(resource.RLIMIT_NOFILE, (spare, spare))
        first = chain(sys.argv[1] + "/cache").run()
        assert first["v39"] == b"0" + b"+" * 39, first["v39"]
        again = chain(sys.argv[1] + "/cache").run()
        assert all(r.cached for r in again.step_results.values())
        assert again["v39"] == b"0" + b"+" * 39
        print("ok")
    """
    done = run_script(tmp_path / "limit.py", script, str(tmp_path))

    assert done.stdout.strip() == "ok"
