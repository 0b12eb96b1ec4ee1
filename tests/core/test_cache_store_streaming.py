"""Outputs are pickled straight into the cache entry's file, never built as one ``bytes`` first;
the entry, its checks and its failures are those of an entry written whole."""

from __future__ import annotations

import hashlib
import logging
import pickle
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from core_support import CallLog, run_script

from flowyml import CacheStore, Pipeline, step
from flowyml.core.cache_store import (
    _HELD_BACK_BYTES,
    _LENGTH,
    _MAGIC,
    PayloadWriter,
)
from flowyml.core.errors import StepOutputError
from flowyml.core.serialization import check_picklable, dump_outputs

KEY = "step:abc"


def entries(root: Path) -> list[Path]:
    return sorted(root.rglob("*.pkl"))


def temporaries(root: Path) -> list[Path]:
    return sorted(root.rglob(".tmp-*"))


def arrays(rows: int = 1_000) -> dict[str, Any]:
    """Outputs whose buffers the pickler hands over as they are: C and Fortran order, and a
    strided view it has to copy. By default several MB, so the entry streams into its file."""
    grid = np.arange(rows * 300, dtype=np.float64).reshape(rows, 300)
    assert (grid.nbytes > _HELD_BACK_BYTES) == (rows >= 1_000)
    return {"c": grid, "fortran": np.asfortranarray(grid), "strided": grid[:, ::7], "n": 3}


# A small entry is held back and written whole; a large one streams behind a placeholder header.
SIZES = pytest.mark.parametrize("rows", [2, 1_000], ids=["held-back", "streamed"])


def stream(store: CacheStore, outputs: dict[str, Any]) -> bool:
    return store.put_streamed(KEY, lambda file: dump_outputs("producer", outputs, file))


def assert_same_outputs(got: dict[str, Any], expected: dict[str, Any]) -> None:
    assert got.keys() == expected.keys()
    for name, value in expected.items():
        if isinstance(value, np.ndarray):
            np.testing.assert_array_equal(got[name], value)
            assert got[name].dtype == value.dtype
        else:
            assert got[name] == value


class FailsToPickle:
    """Pickles only after the pickler has written everything before it."""

    def __reduce__(self) -> Any:
        raise TypeError("refuses to be pickled")


@SIZES
def test_an_entry_written_by_streaming_reads_back_equal(tmp_path: Path, rows: int) -> None:
    store = CacheStore(tmp_path / "cache")
    outputs = arrays(rows)

    assert stream(store, outputs)

    hit, stored = store.get(KEY)
    assert hit
    assert_same_outputs(stored, outputs)


@SIZES
def test_a_streamed_entry_is_the_header_then_the_pickle_pickle_dumps_makes(
    tmp_path: Path, rows: int
) -> None:
    store = CacheStore(tmp_path / "cache")
    outputs = arrays(rows)
    payload = pickle.dumps(outputs, protocol=5)

    stream(store, outputs)

    header = _MAGIC + _LENGTH.pack(len(payload)) + hashlib.sha256(payload).digest()
    assert store.path_for(KEY).read_bytes() == header + payload


def test_the_checksum_still_rejects_a_flipped_byte_in_a_streamed_array(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = CacheStore(tmp_path / "cache")
    stream(store, arrays())
    path = store.path_for(KEY)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01  # inside an array's buffer: the pickle would still load
    path.write_bytes(bytes(data))

    with caplog.at_level(logging.WARNING, logger="flowyml"):
        assert store.get(KEY) == (False, None)

    assert "checksum mismatch" in caplog.text


def test_an_output_that_fails_to_pickle_half_way_leaves_no_entry_and_no_temp_file(
    tmp_path: Path,
) -> None:
    store = CacheStore(tmp_path / "cache")
    outputs = {"written_first": np.ones(500_000), "then": FailsToPickle()}

    with pytest.raises(StepOutputError):
        stream(store, outputs)

    assert entries(tmp_path / "cache") == []
    assert temporaries(tmp_path / "cache") == []


def test_the_pickling_error_names_the_output_that_cannot_be_pickled(tmp_path: Path) -> None:
    store = CacheStore(tmp_path / "cache")

    with pytest.raises(StepOutputError, match=r"output 'then' \(FailsToPickle\) cannot be"):
        stream(store, {"written_first": np.ones(500_000), "then": FailsToPickle()})


def test_an_output_that_fails_to_pickle_keeps_the_previous_entry(tmp_path: Path) -> None:
    store = CacheStore(tmp_path / "cache")
    stream(store, {"value": "old"})

    with pytest.raises(StepOutputError):
        stream(store, {"value": np.ones(500_000), "then": FailsToPickle()})

    assert store.get(KEY) == (True, {"value": "old"})


def test_an_interrupted_streamed_write_leaves_no_temp_file_and_goes_on_interrupting(
    tmp_path: Path,
) -> None:
    store = CacheStore(tmp_path / "cache")

    def interrupted(file: PayloadWriter) -> None:
        file.write(b"part of a pickle")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        store.put_streamed(KEY, interrupted)

    assert temporaries(tmp_path / "cache") == []
    assert entries(tmp_path / "cache") == []


def test_a_store_that_cannot_be_written_does_not_pickle_at_all(tmp_path: Path) -> None:
    store = CacheStore(tmp_path / "cache")
    store.writable = False
    called = []

    assert store.put_streamed(KEY, called.append) is False
    assert called == []


FAILING_STREAM = """
    import resource
    import signal
    import sys

    import numpy as np

    from flowyml.core.cache_store import CacheStore
    from flowyml.core.serialization import dump_outputs

    store = CacheStore(sys.argv[1])
    assert store.put_streamed("step:abc", lambda f: dump_outputs("s", {"value": "old"}, f))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a too-big write fails with EFBIG instead
    resource.setrlimit(resource.RLIMIT_FSIZE, (65536, 65536))
    big = {"value": np.ones(1_000_000)}
    print(store.put_streamed("step:abc", lambda f: dump_outputs("s", big, f)))
"""


def test_a_file_that_cannot_be_written_while_streaming_is_a_warning_not_an_error(
    tmp_path: Path,
) -> None:
    """The pickler sees the write fail and raises its own error; still a cache problem."""
    root = tmp_path / "cache"

    done = run_script(tmp_path / "failing_stream.py", FAILING_STREAM, str(root))

    assert done.stdout.strip() == "False"
    assert "cannot write" in done.stderr
    assert "cannot be pickled" not in done.stderr
    assert CacheStore(root).get("step:abc") == (True, {"value": "old"})
    assert temporaries(root) == []


def test_dump_outputs_writes_the_pickle_that_pickle_dumps_makes() -> None:
    class Sink:
        def __init__(self) -> None:
            self.data = bytearray()

        def write(self, data: Any) -> None:
            self.data += pickle.PickleBuffer(data).raw()

    sink, outputs = Sink(), arrays()

    dump_outputs("producer", outputs, sink)

    assert bytes(sink.data) == pickle.dumps(outputs, protocol=5)


def test_check_picklable_names_the_output_that_cannot_be_pickled() -> None:
    with pytest.raises(StepOutputError, match=r"output 'guard' \(lock\) cannot be pickled"):
        check_picklable("producer", {"fine": np.ones(10), "guard": threading.Lock()})


# --- through the runner ------------------------------------------------------------------------


def array_pipeline(calls: CallLog, timeout: float | None) -> Pipeline:
    @step(outputs=["grid"], timeout=timeout)
    def produce() -> Any:
        calls.record("produce")
        return np.asfortranarray(np.arange(120_000, dtype=np.float32).reshape(300, 400))

    @step(inputs=["grid"], outputs=["total"], timeout=timeout)
    def add_up(grid: Any) -> float:
        calls.record("add_up")
        return float(grid.sum())

    return Pipeline("streaming").add_step(produce).add_step(add_up)


@pytest.mark.parametrize("timeout", [None, 30], ids=["in-process", "timeout-child"])
def test_a_streamed_array_output_is_a_hit_equal_to_the_computed_one(
    private_cache_dir: Path, calls: CallLog, timeout: float | None
) -> None:
    pipeline = array_pipeline(calls, timeout)
    first = pipeline.run()

    second = pipeline.run()

    assert calls.count("produce") == 1
    assert all(r.cached for r in second.step_results.values())
    np.testing.assert_array_equal(second["grid"], first["grid"])
    assert second["total"] == first["total"]
    assert temporaries(private_cache_dir) == []


def test_an_output_that_cannot_be_pickled_leaves_the_plain_step_uncached_with_a_warning(
    private_cache_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    @step(outputs=["data", "guard"])
    def produce() -> Any:
        return np.ones(100_000), threading.Lock()

    caplog.set_level(logging.WARNING)

    result = Pipeline("uncachable", steps=[produce]).run()

    assert result.step_results["produce"].success
    assert result.step_results["produce"].cache_key is None
    assert "output 'guard' (lock) cannot be pickled" in caplog.text
    assert entries(private_cache_dir) == []
    assert temporaries(private_cache_dir) == []
