"""Fixtures of the end-to-end tests: real Dagster servers on 127.0.0.1, started and stopped here.

The servers run the repository's own ``workspace.yaml`` (the example pipelines) or a small code
location of ``locations/``, on an instance with Dagster's default storage (SQLite files in its
``DAGSTER_HOME``) or, for ``postgres_dev``, on a PostgreSQL server of its own. Every test of
this directory gets the ``e2e`` marker, so ``pytest -m "not e2e"`` skips them for a quick run;
``make test`` runs them all.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e_support import (
    EXAMPLES_LOCATION,
    LOCATIONS,
    REPO_ROOT,
    SCHEDULE_LOCATION,
    Deployment,
    dagster_dev,
    python_file_entry,
    write_workspace,
)
from servers.postgres_server import postgres_server

LONG_STEP_LOCATION = "e2e_long_step"
HERE = Path(__file__).resolve().parent


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "e2e: end-to-end test against real Dagster servers")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def examples_dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """``dagster dev -w workspace.yaml``: the example pipelines, webserver and daemon."""
    root = tmp_path_factory.mktemp("examples-dev")
    with dagster_dev(
        "examples-dev", REPO_ROOT / "workspace.yaml", root, [EXAMPLES_LOCATION]
    ) as deployment:
        yield deployment


@pytest.fixture(scope="session")
def postgres_dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """``dagster dev`` on an instance whose runs, events and schedules live in PostgreSQL (a new
    cluster, nobody else's): the example pipelines and the every-minute schedule in one
    workspace, so one server serves the Postgres variant of both the run and the schedule tests.
    """
    root = tmp_path_factory.mktemp("postgres-dev")
    workspace = write_workspace(
        root / "workspace.yaml",
        [
            python_file_entry(REPO_ROOT / "examples" / "definitions.py", EXAMPLES_LOCATION),
            python_file_entry(LOCATIONS / "e2e_schedule_location.py", SCHEDULE_LOCATION),
        ],
    )
    locations = [EXAMPLES_LOCATION, SCHEDULE_LOCATION]
    with (
        postgres_server(name="e2e-postgres") as postgres,
        dagster_dev(
            "postgres-dev", workspace, root, locations, storage=postgres.dagster_storage()
        ) as deployment,
    ):
        yield deployment


@pytest.fixture(scope="session")
def long_step_workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A workspace with the code location whose one step sleeps for an hour."""
    module = LOCATIONS / "e2e_long_step_location.py"
    path = tmp_path_factory.mktemp("long-step-workspace") / "workspace.yaml"
    return write_workspace(path, [python_file_entry(module, LONG_STEP_LOCATION)])
