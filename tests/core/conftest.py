"""Fixtures of the core tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from core_support import CallLog


@pytest.fixture
def calls(tmp_path: Path) -> CallLog:
    """A log of step calls, shared with any child process a step runs in."""
    return CallLog(tmp_path / "calls.log")
