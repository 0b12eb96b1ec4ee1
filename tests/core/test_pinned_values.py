"""A large output the cache holds is kept once: the plain runner lets go of the value, and each
taker, and the run's result at the end, loads its own copy from the entry the run holds open.

The values these tests pass are small, so the runner's ``PIN_MIN_BYTES`` is lowered to pin every
entry; the measured memory of a 300 MB array is ``bench/plain_memory.py``'s.
"""

from __future__ import annotations

import os
import shutil
import weakref
from pathlib import Path
from typing import Any

import pytest
from core_support import run_script

from flowyml import CacheStore, Pipeline, step
from flowyml.core import cache_store
from flowyml.core.errors import CacheEntryError
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
    def make() -> Payload:
        value = Payload([1, 2, 3])
        seen["made"] = weakref.ref(value)
        return value

    @step(inputs=["value"], outputs=["size"], retry=retry)
    def use(value: Payload) -> int:
        seen["producer's value alive while used"] = seen["made"]() is not None
        value.numbers.append(99)  # changes only its own copy
        seen["attempts"] = seen.get("attempts", 0) + 1
        if seen["attempts"] <= retry:
            raise RuntimeError("first attempt fails after changing its input")
        return len(value.numbers)

    return Pipeline("pinned", auto_discover=True)


@pytest.mark.usefixtures("pin_every_entry")
def test_the_producers_value_is_let_go_before_its_taker_runs() -> None:
    seen: dict[str, Any] = {}
    result = two_steps(seen).run()

    assert result["size"] == 4
    assert seen["producer's value alive while used"] is False


@pytest.mark.usefixtures("pin_every_entry")
def test_the_result_holds_the_value_as_produced_after_its_taker_changed_its_copy() -> None:
    result = two_steps({}).run()

    assert result["value"] == Payload([1, 2, 3])
    assert result.step_results["make"].outputs == {"value": Payload([1, 2, 3])}


@pytest.mark.usefixtures("pin_every_entry")
def test_a_retry_loads_the_value_as_produced_not_as_the_failed_attempt_left_it() -> None:
    seen: dict[str, Any] = {}
    result = two_steps(seen, retry=1).run()

    assert seen["attempts"] == 2
    assert result["size"] == 4


def hit_then_grow() -> Pipeline:
    @step(outputs=["value"])
    def make() -> Payload:
        return Payload([1, 2, 3])

    @step(inputs=["value"], outputs=["grown"], cache=False)
    def grow(value: Payload) -> int:  # on a hit: the hit's own value, taken as it is
        value.numbers.append(7)
        return len(value.numbers)

    return Pipeline("pinned", auto_discover=True)


@pytest.mark.usefixtures("pin_every_entry")
def test_after_a_cache_hit_the_result_holds_the_value_as_stored() -> None:
    hit_then_grow().run()
    result = hit_then_grow().run()

    assert result.step_results["make"].cached
    assert result["grown"] == 4
    assert result["value"] == Payload([1, 2, 3])


@pytest.mark.usefixtures("pin_every_entry")
def test_the_run_keeps_its_values_when_the_cache_is_cleared_during_it(
    private_cache_dir: Path,
) -> None:
    @step(outputs=["value"])
    def make() -> Payload:
        return Payload([1, 2, 3])

    @step(inputs=["value"], outputs=["cleared"])
    def clear(value: Payload) -> bool:
        shutil.rmtree(private_cache_dir)
        return True

    @step(inputs=["value", "cleared"], outputs=["size"], cache=False)
    def use(value: Payload, cleared: bool) -> int:
        return len(value.numbers)

    result = Pipeline("pinned", auto_discover=True).run()

    assert result["size"] == 3
    assert result["value"] == Payload([1, 2, 3])


@pytest.mark.usefixtures("pin_every_entry")
def test_a_run_leaves_no_entry_open_whether_its_steps_succeed_or_fail() -> None:
    @step(outputs=["value"])
    def make() -> Payload:
        return Payload([1])

    @step(inputs=["value"], outputs=["broken"])
    def fail(value: Payload) -> int:
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
            def first() -> list:
                return [0]

            for i in range(1, 40):
                @step(inputs=[f"v{i - 1}"], outputs=[f"v{i}"], name=f"s{i}")
                def grow(value: list) -> list:
                    return [*value, len(value)]

            return Pipeline("many", auto_discover=True, cache_dir=cache_dir)

        chain(sys.argv[1] + "/warm-up").run()  # imports and code fingerprints, before the limit
        spare = len(os.listdir("/proc/self/fd")) + handoff.MAX_HELD_ENTRIES + 8
        resource.setrlimit(resource.RLIMIT_NOFILE, (spare, spare))
        first = chain(sys.argv[1] + "/cache").run()
        assert first["v39"] == list(range(40)), first["v39"]
        again = chain(sys.argv[1] + "/cache").run()
        assert all(r.cached for r in again.step_results.values())
        assert again["v39"] == list(range(40))
        print("ok")
    """
    done = run_script(tmp_path / "limit.py", script, str(tmp_path))

    assert done.stdout.strip() == "ok"
