"""Fixtures of the reliability tests: a real Dagster instance and a work directory per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
from reliability_support import INSTANCE_OVERRIDES


@pytest.fixture
def instance(tmp_path: Path) -> Iterator[dg.DagsterInstance]:
    """A real Dagster instance (SQLite storage, filesystem IO manager) in a temp dir."""
    home = tmp_path / "dagster-home"
    home.mkdir()
    with dg.instance_for_test(overrides=INSTANCE_OVERRIDES, temp_dir=str(home)) as test_instance:
        yield test_instance


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """Where steps, in whatever process they run, record what they did."""
    path = tmp_path / "work"
    path.mkdir()
    return path


@pytest.fixture
def cache_dir(tmp_path: Path) -> Path:
    """The flowyml cache of one test's runs."""
    return tmp_path / "step-cache"


@pytest.fixture(scope="module")
def module_tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A temp dir shared by the tests of one module (for a run several tests look at)."""
    return tmp_path_factory.mktemp("module")


@pytest.fixture(scope="module", autouse=True)
def module_cache_dir(module_tmp: Path) -> Iterator[None]:
    """Module-scoped fixtures run before the per-test cache directory is set: give them one too,
    so nothing a module sets up reads or writes the user's own flowyml cache."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FLOWYML_CACHE_DIR", str(module_tmp / "default-cache"))
        yield


@pytest.fixture(scope="module")
def module_instance(module_tmp: Path) -> Iterator[dg.DagsterInstance]:
    """A real Dagster instance shared by the tests of one module."""
    home = module_tmp / "dagster-home"
    home.mkdir()
    with dg.instance_for_test(overrides=INSTANCE_OVERRIDES, temp_dir=str(home)) as test_instance:
        yield test_instance
