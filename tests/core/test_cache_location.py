"""A cache location is a local path or a storage URL; one that cannot be used safely is refused
when the pipeline or the Dagster resource is built, with an error that says what to do and never
echoes a secret, and never becomes a local folder named ``s3:``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import fsspec
import pytest
from fsspec.registry import known_implementations

from flowyml import CacheLocationError, CacheStore, Pipeline
from flowyml.core.cache_location import CACHE_SECRET_ENV, open_cache_store
from flowyml.core.object_cache_store import ObjectCacheStore
from flowyml_dagster import FlowymlCacheResource

SECRET = "a-test-secret-of-more-than-thirty-two-characters"


@pytest.fixture
def cache_secret(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv(CACHE_SECRET_ENV, SECRET)
    return SECRET


@pytest.fixture
def uninstalled_protocol() -> Iterator[str]:
    """A protocol fsspec knows, whose package is not installed."""
    fsspec.register_implementation(
        "flowymltest", "flowyml_absent_fs_package.FileSystem", errtxt="Install it"
    )
    yield "flowymltest"
    del known_implementations["flowymltest"]


def test_a_url_with_credentials_is_refused_without_echoing_them(cache_secret: str) -> None:
    with pytest.raises(CacheLocationError, match="credentials") as refused:
        Pipeline("p", cache_dir="s3://AKIAEXAMPLE:wJalr/XUtnFEMI@bucket/cache")

    assert "AKIAEXAMPLE" not in str(refused.value)
    assert "wJalr" not in str(refused.value)
    assert "XUtnFEMI" not in str(refused.value)
    assert "s3://bucket/cache" in str(refused.value)


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


def test_an_unknown_protocol_is_refused(cache_secret: str) -> None:
    with pytest.raises(CacheLocationError, match="'nosuchfs://' is unknown"):
        Pipeline("p", cache_dir="nosuchfs://bucket/cache")


def test_a_protocol_whose_package_is_missing_is_refused_naming_the_package(
    cache_secret: str, uninstalled_protocol: str
) -> None:
    with pytest.raises(CacheLocationError, match="pip install flowyml_absent_fs_package"):
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
