"""Fixtures for every test: an empty step registry, a private cache and runs directory; and how
``make test`` spreads the tests over pytest-xdist's workers."""

from __future__ import annotations

from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest
from servers.object_store import S3Server, log_tail

from flowyml.core.step import get_step_registry

# Directories whose tests share servers started once per session (``dagster dev`` servers, Celery
# workers with Redis and PostgreSQL, a ``dg`` project): each runs whole in one xdist worker, so
# its servers start once. Elsewhere a test file is the unit: its module fixtures run once.
SHARED_SERVER_DIRECTORIES = frozenset({"e2e", "deploy", "dg"})


def xdist_scope(nodeid: str) -> str:
    """The unit of work of ``nodeid`` for xdist: its directory under ``tests/`` if that is one of
    ``SHARED_SERVER_DIRECTORIES``, else its file."""
    path = nodeid.split("::", 1)[0]
    parts = path.split("/")
    if len(parts) > 2 and parts[0] == "tests" and parts[1] in SHARED_SERVER_DIRECTORIES:
        return "/".join(parts[:2])
    return path


def starts_late(scope: str) -> bool:
    """False for the units that go out first: the shared-server directories, each many minutes
    of servers and runs but few tests. xdist hands out the units with the most tests first, so
    these came last and one worker ran on alone for ten minutes while the other idled."""
    parts = scope.split("/")
    return not (len(parts) == 2 and parts[0] == "tests" and parts[1] in SHARED_SERVER_DIRECTORIES)


@pytest.hookimpl(tryfirst=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """With ``--dist loadscope`` (``make test``), the scope is ``xdist_scope``'s: xdist's own
    scopes are the file or class, and its ``xdist_group`` marks do not reach the scheduler with
    pytest 9 (it renames items through an attribute pytest no longer reads)."""
    if config.getvalue("dist") != "loadscope":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class SharedServerScheduling(LoadScopeScheduling):
        ordered = False

        def _split_scope(self, nodeid: str) -> str:
            return xdist_scope(nodeid)

        def _assign_work_unit(self, node: Any) -> None:
            if not self.ordered:  # the queue is complete when the first unit is handed out
                self.ordered = True
                for scope in sorted(self.workqueue, key=starts_late):  # stable: keeps xdist's
                    self.workqueue.move_to_end(scope)
            super()._assign_work_unit(node)

    return SharedServerScheduling(config, log)


@pytest.fixture(autouse=True)
def empty_registry() -> Iterator[None]:
    """Each test registers its own steps; none leak into the next test."""
    registry = get_step_registry()
    saved = registry.get_all()
    registry.clear()
    yield
    registry.clear()
    for step in saved:
        registry.register(step)


@pytest.fixture(autouse=True)
def private_cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The default cache directory of a test is its own, never the user's."""
    cache_dir = tmp_path / "flowyml-cache"
    monkeypatch.setenv("FLOWYML_CACHE_DIR", str(cache_dir))
    return cache_dir


@pytest.fixture(scope="session", autouse=True)
def session_runs_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Runs started by session- or module-scoped fixtures (before any test's own directory is
    set) leave their records in a temporary directory too, never in the user's state folder."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FLOWYML_RUNS_DIR", str(tmp_path_factory.mktemp("session-runs")))
        yield


@pytest.fixture(autouse=True)
def private_runs_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Plain runs of a test leave their records in the test's own directory."""
    runs_dir = tmp_path / "flowyml-runs"
    monkeypatch.setenv("FLOWYML_RUNS_DIR", str(runs_dir))
    return runs_dir


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, None]:
    """A failed test (a pytest-timeout included) that used the S3 server shows the tail of the
    server's log in its report: the server's side of a hang, kept after its directory is gone."""
    outcome = yield
    report = outcome.get_result()
    server = getattr(item, "funcargs", {}).get("s3_server")
    if report.failed and isinstance(server, S3Server):
        report.sections.append(("SeaweedFS log (tail)", log_tail(server)))
