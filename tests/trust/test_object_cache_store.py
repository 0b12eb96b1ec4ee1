"""The cache on object storage is a security boundary too: whoever can write to the bucket must
not be able to make a worker unpickle their code. Entries are signed with a key derived from
``FLOWYML_CACHE_SECRET``; an entry that is unsigned, signed with another key, moved under another
cache key, or damaged is a miss with a warning and is never unpickled.

Against a real S3 server (SeaweedFS on 127.0.0.1, ``servers.object_store``).
"""

from __future__ import annotations

import hashlib
import logging
import pickle
from pathlib import Path
from typing import Any

import pytest
import s3fs
import s3fs.core

from flowyml.core.cache_location import CACHE_SECRET_ENV, open_cache_store
from flowyml.core.cache_store import _LENGTH, _MAGIC
from flowyml.core.object_cache_store import ObjectCacheStore

KEY = "step:abc"
SECRET = "a-test-secret-of-more-than-thirty-two-characters"
OTHER_SECRET = "another-secret-of-more-than-thirty-two-characters"


class Planted:
    """A value whose unpickling creates ``marker``: proof that an entry was loaded."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (str(self.marker), "w"))


@pytest.fixture(autouse=True)
def flowyml_warnings(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.WARNING, logger="flowyml")
    return caplog


@pytest.fixture
def store(s3_prefix: str, monkeypatch: pytest.MonkeyPatch) -> ObjectCacheStore:
    monkeypatch.setenv(CACHE_SECRET_ENV, SECRET)
    opened = open_cache_store(s3_prefix)
    assert isinstance(opened, ObjectCacheStore)
    return opened


@pytest.fixture
def bucket(s3_env: object) -> s3fs.S3FileSystem:
    """Direct access to the bucket, as anyone with write access to it has."""
    return s3fs.S3FileSystem(skip_instance_cache=True)


def test_an_entry_put_on_s3_is_a_hit_for_its_key_only(store: ObjectCacheStore) -> None:
    assert store.put(KEY, pickle.dumps({"value": 42}))

    assert store.get(KEY) == (True, {"value": 42})
    assert store.get("step:other") == (False, None)


def test_a_streamed_payload_larger_than_memory_held_entries_round_trips(
    store: ObjectCacheStore,
) -> None:
    big = bytes(range(256)) * (3 * 4096)  # 3 MiB: past the 1 MiB held in memory

    assert store.put_streamed(KEY, lambda file: pickle.dump({"big": big}, file, protocol=5))

    assert store.get(KEY) == (True, {"big": big})


def test_an_unsigned_entry_is_a_miss_with_a_warning_and_never_unpickled(
    store: ObjectCacheStore,
    bucket: s3fs.S3FileSystem,
    tmp_path: Path,
    flowyml_warnings: pytest.LogCaptureFixture,
) -> None:
    marker = tmp_path / "unpickled"
    payload = pickle.dumps(Planted(marker))
    local_format = _MAGIC + _LENGTH.pack(len(payload)) + hashlib.sha256(payload).digest()
    bucket.pipe_file(store.path_for(KEY), local_format + payload)

    assert store.get(KEY) == (False, None)
    assert not marker.exists()
    assert "is not a signed entry" in flowyml_warnings.text


def test_an_entry_signed_with_another_secret_is_a_miss_and_never_unpickled(
    store: ObjectCacheStore,
    tmp_path: Path,
    flowyml_warnings: pytest.LogCaptureFixture,
) -> None:
    marker = tmp_path / "unpickled"
    forger = ObjectCacheStore(store.location, OTHER_SECRET.encode())
    assert forger.put(KEY, pickle.dumps(Planted(marker)))

    assert store.get(KEY) == (False, None)
    assert not marker.exists()
    assert "signature that does not verify" in flowyml_warnings.text


def test_a_forged_huge_entry_is_refused_after_reading_its_header_only(
    store: ObjectCacheStore,
    monkeypatch: pytest.MonkeyPatch,
    flowyml_warnings: pytest.LogCaptureFixture,
) -> None:
    forger = ObjectCacheStore(store.location, OTHER_SECRET.encode())
    assert forger.put(KEY, pickle.dumps(bytes(16 << 20)))  # 16 MiB planted
    fetched: list[int] = []
    fetch_range = s3fs.core.S3File._fetch_range

    def counting(self: s3fs.core.S3File, start: int, end: int) -> bytes:
        data = fetch_range(self, start, end)
        fetched.append(len(data))
        return data

    monkeypatch.setattr(s3fs.core.S3File, "_fetch_range", counting)

    assert store.get(KEY) == (False, None)
    assert "signature that does not verify" in flowyml_warnings.text
    assert sum(fetched) <= 2 << 20  # the header's block, not the 16 MiB


def test_a_payload_altered_behind_a_genuine_header_is_a_miss_and_never_unpickled(
    store: ObjectCacheStore,
    bucket: s3fs.S3FileSystem,
    tmp_path: Path,
    flowyml_warnings: pytest.LogCaptureFixture,
) -> None:
    marker = tmp_path / "unpickled"
    genuine = pickle.dumps(Planted(tmp_path / "untouched"))
    planted = pickle.dumps(Planted(marker))
    assert len(genuine) == len(planted)
    store.put(KEY, genuine)
    whole = bucket.cat_file(store.path_for(KEY))
    bucket.pipe_file(store.path_for(KEY), whole[: -len(planted)] + planted)

    assert store.get(KEY) == (False, None)
    assert not marker.exists()
    assert "does not match its signed checksum" in flowyml_warnings.text


def test_a_signed_entry_copied_under_another_key_is_a_miss(
    store: ObjectCacheStore, bucket: s3fs.S3FileSystem, flowyml_warnings: pytest.LogCaptureFixture
) -> None:
    store.put("step:genuine", pickle.dumps({"value": "for another key"}))
    bucket.copy(store.path_for("step:genuine"), store.path_for(KEY))

    assert store.get(KEY) == (False, None)
    assert "signature that does not verify" in flowyml_warnings.text


def test_a_truncated_entry_is_a_miss_with_a_warning(
    store: ObjectCacheStore, bucket: s3fs.S3FileSystem, flowyml_warnings: pytest.LogCaptureFixture
) -> None:
    store.put(KEY, pickle.dumps({"value": list(range(1000))}))
    whole = bucket.cat_file(store.path_for(KEY))
    bucket.pipe_file(store.path_for(KEY), whole[: len(whole) // 2])

    assert store.get(KEY) == (False, None)
    assert "is damaged" in flowyml_warnings.text


def test_an_entry_holds_neither_the_secret_nor_a_key_derived_from_it(
    store: ObjectCacheStore, bucket: s3fs.S3FileSystem
) -> None:
    store.put(KEY, pickle.dumps("value"))

    stored = b"".join(bucket.cat_file(path) for path in bucket.find(store.location))
    assert SECRET.encode() not in stored
    assert store.secret_key not in stored


def test_the_secret_params_key_comes_from_the_shared_secret_not_a_file_in_the_bucket(
    store: ObjectCacheStore, bucket: s3fs.S3FileSystem
) -> None:
    same = ObjectCacheStore(store.location, SECRET.encode())
    other = ObjectCacheStore(store.location, OTHER_SECRET.encode())

    assert store.secret_key == same.secret_key != other.secret_key
    assert bucket.find(store.location) == []


def test_usage_counts_the_entries_and_their_bytes(
    store: ObjectCacheStore, bucket: s3fs.S3FileSystem
) -> None:
    store.put("step:one", pickle.dumps(1))
    store.put("step:two", pickle.dumps(2))

    sizes = [bucket.size(store.path_for(key)) for key in ("step:one", "step:two")]
    assert store.usage() == (2, sum(sizes))


def test_an_entry_written_after_usage_listed_the_store_is_a_hit(store: ObjectCacheStore) -> None:
    store.usage()
    ObjectCacheStore(store.location, SECRET.encode()).put(KEY, pickle.dumps("late"))

    assert store.get(KEY) == (True, "late")
