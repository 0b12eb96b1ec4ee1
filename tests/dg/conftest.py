"""The ``dg`` tests run the real ``dg`` and ``create-dagster`` commands: each gets the ``e2e``
marker, so ``pytest -m "not e2e"`` skips them for a quick run."""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "e2e: end-to-end test against real Dagster servers")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.e2e)
