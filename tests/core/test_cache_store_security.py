"""The cache store is a security boundary: it loads pickles, which run code, so it reads only what
nobody but the user could have written, and no entry can hang, exhaust or crash a run.

Some tests give files to a second local user, which needs root: a session fixture creates the
user ``flowyml-other`` with ``useradd`` when it is missing (CI runs these tests as root).
"""

from __future__ import annotations

import hashlib
import logging
import multiprocessing
import os
import pickle
import pwd
import shutil
import stat
import subprocess
import time
from collections.abc import Callable
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from pathlib import Path

import pytest

from flowyml.core.cache_store import SECRET_KEY_FILE, STALE_TEMP_SECONDS, CacheStore

KEY = "step:abc"
PAYLOAD = pickle.dumps({"value": 42}, protocol=5)
OTHER_USER = "flowyml-other"


@pytest.fixture(scope="session")
def other_uid() -> int:
    """The uid of a second local user, created if missing; tests that chown to it need root."""
    if os.geteuid() != 0:
        pytest.skip("giving a file to another user (chown) needs root; these tests run as root")
    try:
        return pwd.getpwnam(OTHER_USER).pw_uid
    except KeyError:
        pass
    useradd = shutil.which("useradd")
    if useradd is None:
        pytest.fail(f"running as root, but there is no useradd to create the user {OTHER_USER}")
    created = subprocess.run(
        [useradd, "--system", "--no-create-home", OTHER_USER], capture_output=True, text=True
    )
    try:  # another test session may have created it meanwhile
        return pwd.getpwnam(OTHER_USER).pw_uid
    except KeyError:
        pytest.fail(f"useradd could not create {OTHER_USER}: {created.stderr.strip()}")


@pytest.fixture(autouse=True)
def flowyml_warnings(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """flowyml's warnings, captured: a refusal must say what is wrong, and where."""
    caplog.set_level(logging.WARNING, logger="flowyml")
    return caplog


@pytest.fixture
def filled(tmp_path: Path) -> CacheStore:
    """A store at ``tmp_path/cache`` holding ``PAYLOAD`` under ``KEY``."""
    store = CacheStore(tmp_path / "cache")
    assert store.put(KEY, PAYLOAD)
    return store


def warnings_text(caplog: pytest.LogCaptureFixture) -> str:
    return "\n".join(r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING)


def assert_refused(store: CacheStore, caplog: pytest.LogCaptureFixture, *named: str) -> None:
    """Neither read nor written, and said once, in a warning naming the path and the problem."""
    assert store.get(KEY) == (False, None)
    assert store.put(KEY, PAYLOAD) is False
    assert not store.writable
    refusals = [r.getMessage() for r in caplog.records if "disabled" in r.getMessage()]
    assert len(refusals) == 1, refusals
    for text in named:
        assert text in refusals[0]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


# --- the root and its folders ----------------------------------------------------------------


def test_a_root_writable_by_others_is_refused(
    filled: CacheStore, flowyml_warnings: pytest.LogCaptureFixture
) -> None:
    filled.root.chmod(0o777)

    store = CacheStore(filled.root)

    assert_refused(store, flowyml_warnings, str(filled.root), "writable by group or others")


def test_a_root_owned_by_another_user_is_refused(
    filled: CacheStore, other_uid: int, flowyml_warnings: pytest.LogCaptureFixture
) -> None:
    os.chown(filled.root, other_uid, -1)

    store = CacheStore(filled.root)

    assert_refused(store, flowyml_warnings, str(filled.root), f"owned by uid {other_uid}")


def test_a_symlinked_root_is_refused(
    filled: CacheStore, tmp_path: Path, flowyml_warnings: pytest.LogCaptureFixture
) -> None:
    link = tmp_path / "link"
    link.symlink_to(filled.root)

    store = CacheStore(link)

    assert_refused(store, flowyml_warnings, str(link), "symlink")


def test_a_symlinked_shard_dir_is_refused(
    filled: CacheStore, tmp_path: Path, flowyml_warnings: pytest.LogCaptureFixture
) -> None:
    shard = filled.path_for(KEY).parent
    moved = tmp_path / "elsewhere"
    shard.rename(moved)
    shard.symlink_to(moved)

    store = CacheStore(filled.root)

    assert_refused(store, flowyml_warnings, str(shard), "symlink")


def test_a_group_writable_shard_dir_is_refused(
    filled: CacheStore, flowyml_warnings: pytest.LogCaptureFixture
) -> None:
    shard = filled.path_for(KEY).parent
    shard.chmod(0o770)

    store = CacheStore(filled.root)

    assert_refused(store, flowyml_warnings, str(shard), "writable by group or others")


def test_a_shard_dir_made_unsafe_after_the_store_opened_is_refused_when_used(
    filled: CacheStore, flowyml_warnings: pytest.LogCaptureFixture
) -> None:
    shard = filled.path_for(KEY).parent
    shard.chmod(0o777)

    assert_refused(filled, flowyml_warnings, str(shard), "writable by group or others")


def test_missing_parents_are_created_private_even_under_umask_0(tmp_path: Path) -> None:
    root = tmp_path / "a" / "b" / "cache"
    previous = os.umask(0)
    try:
        store = CacheStore(root)
        assert store.put(KEY, PAYLOAD)
    finally:
        os.umask(previous)

    entry = store.path_for(KEY)
    folders = [tmp_path / "a", tmp_path / "a" / "b", root, entry.parent]
    assert {folder.name: mode(folder) for folder in folders} == {f.name: 0o700 for f in folders}
    assert mode(entry) == 0o600


# --- the folders above the root --------------------------------------------------------------


def test_an_ancestor_writable_by_others_without_the_sticky_bit_is_refused(
    tmp_path: Path, flowyml_warnings: pytest.LogCaptureFixture
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)

    store = CacheStore(shared / "cache")

    assert_refused(store, flowyml_warnings, str(shared), "not sticky")


def test_an_ancestor_writable_by_others_with_the_sticky_bit_is_accepted_like_tmp(
    tmp_path: Path,
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)

    store = CacheStore(shared / "cache")

    assert store.writable
    assert store.put(KEY, PAYLOAD)
    assert store.get(KEY) == (True, {"value": 42})


def test_an_ancestor_owned_by_another_user_is_refused(
    tmp_path: Path, other_uid: int, flowyml_warnings: pytest.LogCaptureFixture
) -> None:
    theirs = tmp_path / "theirs"
    theirs.mkdir(mode=0o755)
    os.chown(theirs, other_uid, -1)

    store = CacheStore(theirs / "cache")

    assert_refused(store, flowyml_warnings, str(theirs), f"owned by uid {other_uid}")


# --- entries ---------------------------------------------------------------------------------


def test_an_entry_that_is_a_symlink_is_a_miss(
    filled: CacheStore, tmp_path: Path, flowyml_warnings: pytest.LogCaptureFixture
) -> None:
    entry = filled.path_for(KEY)
    target = tmp_path / "target.pkl"
    entry.rename(target)  # a valid entry of the user's: only the symlink makes it a miss
    entry.symlink_to(target)

    assert filled.get(KEY) == (False, None)
    assert f"{entry} is a symlink" in warnings_text(flowyml_warnings)


@pytest.mark.timeout(20)
def test_a_fifo_at_an_entry_path_is_a_miss_and_does_not_hang(
    filled: CacheStore, flowyml_warnings: pytest.LogCaptureFixture
) -> None:
    entry = filled.path_for(KEY)
    entry.unlink()
    os.mkfifo(entry, 0o600)

    assert filled.get(KEY) == (False, None)
    assert f"{entry} is not a regular file" in warnings_text(flowyml_warnings)


def test_an_entry_owned_by_another_user_is_a_miss(
    filled: CacheStore, other_uid: int, flowyml_warnings: pytest.LogCaptureFixture
) -> None:
    entry = filled.path_for(KEY)
    os.chown(entry, other_uid, -1)

    assert filled.get(KEY) == (False, None)
    assert f"{entry} is owned by uid {other_uid}" in warnings_text(flowyml_warnings)


def test_an_entry_writable_by_others_is_a_miss(
    filled: CacheStore, flowyml_warnings: pytest.LogCaptureFixture
) -> None:
    entry = filled.path_for(KEY)
    entry.chmod(0o666)

    assert filled.get(KEY) == (False, None)
    assert f"{entry} is writable by group or others" in warnings_text(flowyml_warnings)


@pytest.mark.timeout(60)
def test_a_sparse_8_gib_entry_is_a_quick_miss_by_its_length_without_memory_error(
    filled: CacheStore, flowyml_warnings: pytest.LogCaptureFixture
) -> None:
    entry = filled.path_for(KEY)
    os.truncate(entry, 8 << 30)  # the valid header stays; the file is now 8 GiB of holes

    started = time.monotonic()
    assert filled.get(KEY) == (False, None)
    elapsed = time.monotonic() - started

    assert f"{8 << 30} bytes; its header says" in warnings_text(flowyml_warnings)
    assert elapsed < 5, f"{elapsed:.1f}s: the entry was read, not rejected by its length"


@pytest.mark.parametrize(
    "damage",
    [lambda data: data[:-1], lambda data: data + b"\0"],
    ids=["truncated", "padded"],
)
def test_an_entry_of_another_length_than_its_header_says_is_a_miss(
    filled: CacheStore,
    flowyml_warnings: pytest.LogCaptureFixture,
    damage: Callable[[bytes], bytes],
) -> None:
    entry = filled.path_for(KEY)
    entry.write_bytes(damage(entry.read_bytes()))

    assert filled.get(KEY) == (False, None)
    assert f"{entry} is corrupt" in warnings_text(flowyml_warnings)


def test_an_entry_of_format_version_1_is_a_miss(
    filled: CacheStore, flowyml_warnings: pytest.LogCaptureFixture
) -> None:
    entry = filled.path_for(KEY)
    entry.write_bytes(b"FLOWYML-CACHE-1\n" + hashlib.sha256(PAYLOAD).digest() + PAYLOAD)

    assert filled.get(KEY) == (False, None)
    assert f"{entry} is corrupt" in warnings_text(flowyml_warnings)


def exhaust_memory() -> None:
    raise MemoryError


class TooBigToLoad:
    """Unpickles by raising MemoryError, as a pickle too large for the machine would."""

    def __reduce__(self) -> tuple[object, tuple[()]]:
        return exhaust_memory, ()


def test_an_entry_too_large_to_load_is_a_miss_with_a_warning(
    tmp_path: Path, flowyml_warnings: pytest.LogCaptureFixture
) -> None:
    store = CacheStore(tmp_path / "cache")
    assert store.put(KEY, pickle.dumps({"value": TooBigToLoad()}))

    assert store.get(KEY) == (False, None)
    assert "MemoryError" in warnings_text(flowyml_warnings)


# --- temporary files of killed writers -------------------------------------------------------


def plant_temporary(folder: Path, name: str, age_seconds: float) -> Path:
    path = folder / name
    path.write_bytes(b"half an entry")
    stamp = time.time() - age_seconds
    os.utime(path, (stamp, stamp))
    return path


def test_a_stale_temporary_file_is_removed_by_the_next_put_in_its_shard_a_fresh_one_kept(
    filled: CacheStore,
) -> None:
    shard = filled.path_for(KEY).parent
    stale = plant_temporary(shard, ".tmp-killed", STALE_TEMP_SECONDS + 60)
    fresh = plant_temporary(shard, ".tmp-writing", 60)

    assert CacheStore(filled.root).put(KEY, PAYLOAD)

    assert not stale.exists()
    assert fresh.exists()


def test_a_put_leaves_the_temporary_files_of_other_shards_alone(filled: CacheStore) -> None:
    shard = filled.path_for(KEY).parent
    other_shard = filled.root / ("00" if shard.name != "00" else "01")
    other_shard.mkdir(mode=0o700)
    stale = plant_temporary(other_shard, ".tmp-killed", STALE_TEMP_SECONDS + 60)

    assert CacheStore(filled.root).put(KEY, PAYLOAD)

    assert stale.exists()


# --- the secret key --------------------------------------------------------------------------


def read_secret_key_in_child(root: str, start: Barrier, keys: Queue[bytes]) -> None:
    store = CacheStore(root)
    start.wait()  # all at once: each finds no key file and races to create one
    keys.put(store.secret_key)


def test_processes_creating_the_secret_key_at_once_agree_on_one(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    CacheStore(root)  # the root exists; the key does not yet
    forked = multiprocessing.get_context("fork")
    count = 6
    start = forked.Barrier(count)
    keys: Queue[bytes] = forked.Queue()
    children = [
        forked.Process(target=read_secret_key_in_child, args=(str(root), start, keys))
        for _ in range(count)
    ]
    for child in children:
        child.start()
    seen = [keys.get(timeout=60) for _ in children]
    for child in children:
        child.join(timeout=60)

    assert [child.exitcode for child in children] == [0] * count
    assert set(seen) == {(root / SECRET_KEY_FILE).read_bytes()}
    assert sorted(p.name for p in root.iterdir()) == [SECRET_KEY_FILE]


def test_the_secret_key_file_is_private_to_the_user(tmp_path: Path) -> None:
    store = CacheStore(tmp_path / "cache")

    key = store.secret_key

    path = store.root / SECRET_KEY_FILE
    assert path.read_bytes() == key
    assert len(key) == 32
    assert mode(path) == 0o600
    assert path.stat().st_uid == os.geteuid()


def test_the_secret_key_is_the_same_for_every_store_of_a_root_and_differs_between_roots(
    tmp_path: Path,
) -> None:
    first = CacheStore(tmp_path / "cache").secret_key

    assert CacheStore(tmp_path / "cache").secret_key == first
    assert CacheStore(tmp_path / "other").secret_key != first


def make_readable_by_others(key_file: Path) -> None:
    key_file.chmod(0o644)


def replace_by_a_symlink(key_file: Path) -> None:
    target = key_file.parent.parent / "planted-key"
    target.write_bytes(b"k" * 32)
    target.chmod(0o600)
    key_file.unlink()
    key_file.symlink_to(target)


def shorten(key_file: Path) -> None:
    key_file.write_bytes(key_file.read_bytes()[:16])


@pytest.mark.parametrize(
    "tamper",
    [make_readable_by_others, replace_by_a_symlink, shorten],
    ids=["readable-by-others", "symlink", "wrong-size"],
)
def test_a_tampered_secret_key_file_refuses_the_store_like_an_unsafe_directory(
    filled: CacheStore,
    flowyml_warnings: pytest.LogCaptureFixture,
    tamper: Callable[[Path], None],
) -> None:
    key = filled.secret_key
    key_file = filled.root / SECRET_KEY_FILE
    tamper(key_file)

    store = CacheStore(filled.root)

    assert store.secret_key not in (key, b"k" * 32)
    assert len(store.secret_key) == 32
    assert_refused(store, flowyml_warnings, str(key_file))


def test_a_secret_key_file_tampered_after_the_store_opened_refuses_the_store(
    filled: CacheStore, flowyml_warnings: pytest.LogCaptureFixture
) -> None:
    CacheStore(filled.root).secret_key  # noqa: B018 - creates the key file
    make_readable_by_others(filled.root / SECRET_KEY_FILE)

    assert len(filled.secret_key) == 32

    assert_refused(filled, flowyml_warnings, str(filled.root / SECRET_KEY_FILE), "readable")


def test_a_refused_store_has_a_process_wide_secret_key_and_writes_no_key_file(
    tmp_path: Path,
) -> None:
    root = tmp_path / "cache"
    root.mkdir()
    root.chmod(0o777)

    first, second = CacheStore(root), CacheStore(root)

    assert len(first.secret_key) == 32
    assert first.secret_key == second.secret_key
    assert not (root / SECRET_KEY_FILE).exists()
