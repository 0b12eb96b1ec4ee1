"""The on-disk cache: where it lives, how it writes, and how it survives bad entries."""

from __future__ import annotations

import logging
import os
import pickle
import stat
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from core_support import CallLog, run_script

from flowyml import CacheStore, Pipeline, step
from flowyml.core.cache_store import default_cache_dir


def entries(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.pkl"))


def temporaries(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob(".tmp-*"))


def one_step_pipeline(calls: CallLog, **options: Any) -> Pipeline:
    @step(outputs=["value"])
    def compute() -> dict[str, int]:
        calls.record("compute")
        return {"answer": 42}

    return Pipeline("store", **options).add_step(compute)


def test_the_default_cache_dir_is_flowyml_cache_dir_when_set(
    private_cache_dir: Path, calls: CallLog
) -> None:
    assert default_cache_dir() == private_cache_dir
    assert CacheStore().root == private_cache_dir

    one_step_pipeline(calls).run()

    assert len(entries(private_cache_dir)) == 1


def test_without_flowyml_cache_dir_the_cache_is_under_xdg_cache_home_not_the_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, calls: CallLog
) -> None:
    monkeypatch.delenv("FLOWYML_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    workdir = tmp_path / "work"
    workdir.mkdir()
    monkeypatch.chdir(workdir)

    one_step_pipeline(calls).run()

    assert default_cache_dir() == tmp_path / "xdg" / "flowyml"
    assert len(entries(tmp_path / "xdg" / "flowyml")) == 1
    assert list(workdir.iterdir()) == []


def test_without_any_cache_variable_the_cache_is_under_the_home_cache_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FLOWYML_CACHE_DIR")
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))

    assert default_cache_dir() == tmp_path / "home" / ".cache" / "flowyml"


def test_a_pipeline_cache_dir_is_used_instead_of_the_default(
    tmp_path: Path, private_cache_dir: Path, calls: CallLog
) -> None:
    one_step_pipeline(calls, cache_dir=tmp_path / "mine").run()

    assert len(entries(tmp_path / "mine")) == 1
    assert not private_cache_dir.exists()


def test_the_cache_dir_and_its_entry_dirs_are_private_to_the_user(
    private_cache_dir: Path, calls: CallLog
) -> None:
    one_step_pipeline(calls).run()

    [entry] = entries(private_cache_dir)
    assert stat.S_IMODE(private_cache_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE(entry.parent.stat().st_mode) == 0o700


def test_a_stored_value_is_read_back(tmp_path: Path) -> None:
    store = CacheStore(tmp_path / "cache")

    assert store.put("step:abc", pickle.dumps({"value": [1, None]}))

    assert store.get("step:abc") == (True, {"value": [1, None]})
    assert store.get("step:other") == (False, None)


def test_a_write_leaves_no_temporary_file_behind(tmp_path: Path) -> None:
    store = CacheStore(tmp_path / "cache")

    store.put("step:abc", pickle.dumps({"value": 1}))
    store.put("step:abc", pickle.dumps({"value": 2}))

    assert temporaries(tmp_path / "cache") == []
    assert len(entries(tmp_path / "cache")) == 1


def test_a_rewrite_replaces_the_entry_file_instead_of_writing_into_it(tmp_path: Path) -> None:
    store = CacheStore(tmp_path / "cache")
    store.put("step:abc", pickle.dumps({"value": "old"}))
    path = store.path_for("step:abc")
    old_bytes = path.read_bytes()

    with open(path, "rb") as reader:  # a reader that opened the entry before the rewrite
        store.put("step:abc", pickle.dumps({"value": "new" * 1000}))
        assert reader.read() == old_bytes  # still the whole old entry, never a mix

    assert store.get("step:abc") == (True, {"value": "new" * 1000})


FAILING_WRITE = """
    import pickle
    import resource
    import signal
    import sys

    from flowyml.core.cache_store import CacheStore

    store = CacheStore(sys.argv[1])
    assert store.put("step:abc", pickle.dumps({"value": "old"}))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a too-big write fails with EFBIG instead
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
    print(store.put("step:abc", pickle.dumps({"value": "x" * 100_000})))
"""


def test_a_write_that_fails_half_way_keeps_the_previous_entry_intact(tmp_path: Path) -> None:
    root = tmp_path / "cache"

    done = run_script(tmp_path / "failing_write.py", FAILING_WRITE, str(root))

    assert done.stdout.strip() == "False"
    assert "cannot write" in done.stderr
    assert CacheStore(root).get("step:abc") == (True, {"value": "old"})
    assert temporaries(root) == []


@pytest.mark.parametrize(
    "damage",
    [
        lambda data: data[: len(data) // 2],
        lambda data: data[:-1] + bytes([data[-1] ^ 0xFF]),
        lambda data: b"",
        lambda data: b"not a cache entry at all",
        lambda data: b"FLOWYML-CACHE-0\n" + data[16:],
    ],
    ids=["truncated", "flipped-byte", "empty", "garbage", "other-format"],
)
def test_a_damaged_entry_is_a_miss_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, damage: Callable[[bytes], bytes]
) -> None:
    store = CacheStore(tmp_path / "cache")
    store.put("step:abc", pickle.dumps({"value": 1}))
    path = store.path_for("step:abc")
    path.write_bytes(damage(path.read_bytes()))

    with caplog.at_level(logging.WARNING, logger="flowyml"):
        assert store.get("step:abc") == (False, None)

    assert any(str(path) in r.getMessage() for r in caplog.records)


def test_a_truncated_entry_is_recomputed_and_rewritten(
    private_cache_dir: Path, calls: CallLog, caplog: pytest.LogCaptureFixture
) -> None:
    pipeline = one_step_pipeline(calls)
    pipeline.run()
    [entry] = entries(private_cache_dir)
    entry.write_bytes(entry.read_bytes()[:-10])

    with caplog.at_level(logging.WARNING, logger="flowyml"):
        rerun = pipeline.run()
    third = pipeline.run()

    assert any("corrupt" in r.getMessage() for r in caplog.records)
    assert rerun.success and not rerun.step_results["compute"].cached
    assert rerun["value"] == {"answer": 42}
    assert third.step_results["compute"].cached
    assert calls.count("compute") == 2


def test_a_cache_dir_that_cannot_be_created_leaves_the_run_successful_with_a_warning(
    tmp_path: Path, calls: CallLog, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")

    with caplog.at_level(logging.WARNING, logger="flowyml"):
        result = one_step_pipeline(calls, cache_dir=blocker / "cache").run()

    assert result.success
    assert result["value"] == {"answer": 42}
    assert any("not writable" in r.getMessage() for r in caplog.records)


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write to a read-only directory")
def test_a_read_only_cache_dir_leaves_the_run_successful_with_a_warning(
    tmp_path: Path, calls: CallLog, caplog: pytest.LogCaptureFixture
) -> None:
    root = tmp_path / "cache"
    root.mkdir(mode=0o500)
    try:
        with caplog.at_level(logging.WARNING, logger="flowyml"):
            result = one_step_pipeline(calls, cache_dir=root).run()
    finally:
        root.chmod(0o700)

    assert result.success
    assert any("not writable" in r.getMessage() for r in caplog.records)


def test_enable_cache_false_never_touches_the_disk(
    tmp_path: Path, private_cache_dir: Path, calls: CallLog
) -> None:
    one_step_pipeline(calls, enable_cache=False).run()
    one_step_pipeline(calls, enable_cache=False, cache_dir=tmp_path / "explicit").run()

    assert not private_cache_dir.exists()
    assert not (tmp_path / "explicit").exists()


def test_another_processs_temporary_file_vanishing_during_the_checks_keeps_the_store_in_use(
    tmp_path: Path,
) -> None:
    root = tmp_path / "cache"
    CacheStore(root)
    stop = threading.Event()

    def churn() -> None:
        while not stop.is_set():
            temp = root / ".tmp-other-process"
            temp.write_bytes(b"")
            temp.unlink()

    churner = threading.Thread(target=churn)
    churner.start()
    try:
        stores = [CacheStore(root) for _ in range(300)]
    finally:
        stop.set()
        churner.join()

    assert all(store.writable for store in stores)
