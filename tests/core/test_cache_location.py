"""A cache location is a local path or a storage URL; one that cannot be used safely is refused
when the pipeline or the Dagster resource is built, with an error that says what to do and never
echoes a secret, and never becomes a local folder named ``s3:``."""

from __future__ import annotations

from pathlib import Path

import pytest
from fsspec.implementations.memory import MemoryFileSystem
from fsspec.registry import _registry as FSSPEC_REGISTRY  # the imported implementations
from fsspec.registry import known_implementations

from flowyml import CacheLocationError, CacheStore, Pipeline
from flowyml.core.cache_location import (
    CACHE_SECRET_ENV,
    open_cache_store,
    resolve_cache_location,
)
from flowyml.core.object_cache_store import ObjectCacheStore
from flowyml_dagster import FlowymlCacheResource

SECRET = "a-test-secret-of-more-than-thirty-two-characters"


@pytest.fixture
def cache_secret(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv(CACHE_SECRET_ENV, SECRET)
    return SECRET


@pytest.fixture
def uninstalled_protocol(monkeypatch: pytest.MonkeyPatch) -> str:
    """A supported protocol whose package is not installed, with fsspec's install hint."""
    monkeypatch.setitem(
        known_implementations,
        "gs",
        {"class": "flowyml_absent_fs_package.FileSystem", "err": "Get it with pip install gsx"},
    )
    monkeypatch.delitem(FSSPEC_REGISTRY, "gs", raising=False)
    return "gs"


@pytest.fixture
def azure_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    """``abfs://`` opens (fsspec's memory store standing in for adlfs)."""
    monkeypatch.setitem(FSSPEC_REGISTRY, "abfs", MemoryFileSystem)


def test_a_url_with_credentials_is_refused_without_echoing_them(cache_secret: str) -> None:
    with pytest.raises(CacheLocationError, match="credentials") as refused:
        Pipeline("p", cache_dir="s3://AKIAEXAMPLE:wJalr/XUtnFEMI@bucket/cache")

    assert "AKIAEXAMPLE" not in str(refused.value)
    assert "wJalr" not in str(refused.value)
    assert "XUtnFEMI" not in str(refused.value)
    assert "s3://<hidden>" in str(refused.value)


def test_a_token_after_the_last_at_sign_is_not_echoed(cache_secret: str) -> None:
    with pytest.raises(CacheLocationError, match="credentials") as refused:
        Pipeline("p", cache_dir="s3://bucket/cache@SECRETTOKEN")

    assert "SECRETTOKEN" not in str(refused.value)


def test_a_remote_cache_without_the_secret_is_refused_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(CACHE_SECRET_ENV, raising=False)

    with pytest.raises(CacheLocationError, match=f"{CACHE_SECRET_ENV} is not set"):
        Pipeline("p", cache_dir="s3://bucket/cache")


def test_a_short_cache_secret_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CACHE_SECRET_ENV, "short")

    with pytest.raises(CacheLocationError, match=f"{CACHE_SECRET_ENV} is shorter than 32"):
        Pipeline("p", cache_dir="s3://bucket/cache")


@pytest.mark.parametrize(
    "padded", [SECRET + "\n", " " + SECRET, SECRET + " "], ids=["newline", "leading", "trailing"]
)
def test_a_cache_secret_with_surrounding_whitespace_is_refused_without_echoing_it(
    monkeypatch: pytest.MonkeyPatch, padded: str
) -> None:
    monkeypatch.setenv(CACHE_SECRET_ENV, padded)

    with pytest.raises(
        CacheLocationError, match=f"{CACHE_SECRET_ENV} has leading or trailing"
    ) as refused:
        Pipeline("p", cache_dir="s3://bucket/cache")
    assert SECRET not in str(refused.value)


def test_a_whitespace_only_cache_secret_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CACHE_SECRET_ENV, " " * 40)

    with pytest.raises(CacheLocationError, match=CACHE_SECRET_ENV):
        Pipeline("p", cache_dir="s3://bucket/cache")


def test_a_cache_secret_of_few_different_characters_is_refused_without_echoing_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    weak = "abab" * 10
    monkeypatch.setenv(CACHE_SECRET_ENV, weak)

    with pytest.raises(CacheLocationError, match="fewer than 8 different characters") as refused:
        Pipeline("p", cache_dir="s3://bucket/cache")
    assert weak not in str(refused.value)


def test_an_unknown_protocol_is_refused_naming_the_supported_ones(cache_secret: str) -> None:
    with pytest.raises(CacheLocationError, match=r"'nosuchfs://' is not a storage.*s3://"):
        Pipeline("p", cache_dir="nosuchfs://bucket/cache")


@pytest.mark.parametrize(
    "location",
    ["zip://x", "tar://x", "http://host/x", "https://host/x", "reference://x", "filecache://x"],
)
def test_a_protocol_that_is_no_writable_store_is_refused_naming_the_supported_ones(
    cache_secret: str, location: str
) -> None:
    with pytest.raises(CacheLocationError, match=r"not a storage.*supported: s3://"):
        Pipeline("p", cache_dir=location)


@pytest.mark.parametrize(
    ("location", "meant"), [("s3:/bucket/x", "s3://bucket/x"), ("s3:bucket", "s3://bucket")]
)
def test_a_protocol_without_slashes_is_refused_instead_of_becoming_a_local_folder(
    cache_secret: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, location: str, meant: str
) -> None:
    monkeypatch.chdir(tmp_path)

    with pytest.raises(CacheLocationError, match=f"did you mean {meant}\\?"):
        Pipeline("p", cache_dir=location)
    assert list(tmp_path.iterdir()) == []


def test_a_chain_after_the_url_is_refused(cache_secret: str) -> None:
    with pytest.raises(CacheLocationError, match="chained"):
        Pipeline("p", cache_dir="s3://bucket/x::file:///tmp/y")


@pytest.mark.parametrize("location", ["s3://bucket/x\n", "s3://buck\tet/x", "/tmp/ca\x00che"])
def test_a_location_with_a_control_character_is_refused(cache_secret: str, location: str) -> None:
    with pytest.raises(CacheLocationError, match="control character"):
        Pipeline("p", cache_dir=location)


@pytest.mark.parametrize("location", ["s3://bucket/x ", " s3://bucket/x", "/tmp/cache "])
def test_a_location_with_surrounding_whitespace_is_refused(
    cache_secret: str, location: str
) -> None:
    with pytest.raises(CacheLocationError, match="leading or trailing whitespace"):
        Pipeline("p", cache_dir=location)


def test_an_azure_url_naming_its_storage_account_is_accepted(
    cache_secret: str, azure_installed: None
) -> None:
    url = "abfs://container@account.dfs.core.windows.net/cache"

    assert str(resolve_cache_location(url)) == url


def test_azure_credentials_in_the_url_are_refused_with_an_azure_hint(
    cache_secret: str, azure_installed: None
) -> None:
    with pytest.raises(CacheLocationError, match="AZURE_STORAGE") as refused:
        Pipeline("p", cache_dir="abfs://account:KEYKEY@container/cache")

    assert "AWS" not in str(refused.value)
    assert "KEYKEY" not in str(refused.value)


def test_a_protocol_whose_package_is_missing_is_refused_naming_the_package(
    cache_secret: str, uninstalled_protocol: str
) -> None:
    with pytest.raises(CacheLocationError, match=r"flowyml_absent_fs_package.*pip install gsx"):
        Pipeline("p", cache_dir=f"{uninstalled_protocol}://bucket/cache")


def test_the_dagster_resource_refuses_an_unusable_location_when_built(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(CACHE_SECRET_ENV, raising=False)

    with pytest.raises(CacheLocationError, match=CACHE_SECRET_ENV):
        FlowymlCacheResource(cache_dir="s3://bucket/cache")


def test_an_s3_url_in_flowyml_cache_dir_is_an_object_store_not_a_local_folder(
    cache_secret: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FLOWYML_CACHE_DIR", "s3://bucket/cache")

    store = Pipeline("p").cache_store

    assert isinstance(store, ObjectCacheStore)
    assert store.location == "s3://bucket/cache"
    assert list(tmp_path.iterdir()) == []


def test_the_local_store_refuses_a_url_instead_of_making_a_folder_of_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FLOWYML_CACHE_DIR", "s3://bucket/cache")

    with pytest.raises(CacheLocationError, match="not a s3:// URL"):
        CacheStore()
    assert list(tmp_path.iterdir()) == []


def test_a_file_url_is_the_checked_local_store(tmp_path: Path) -> None:
    store = open_cache_store(f"file://{tmp_path}/cache")

    assert isinstance(store, CacheStore)
    assert store.root == tmp_path / "cache"


def test_a_local_cache_needs_no_secret(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(CACHE_SECRET_ENV, raising=False)

    assert isinstance(Pipeline("p", cache_dir=tmp_path).cache_store, CacheStore)


def test_a_pipeline_without_cache_does_not_check_its_location(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(CACHE_SECRET_ENV, raising=False)

    assert Pipeline("p", cache_dir="s3://bucket/cache", enable_cache=False).cache_store is None
