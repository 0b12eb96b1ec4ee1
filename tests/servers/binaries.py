"""Finding a server's program, and what a test does when the machine has none.

Outside CI a missing server skips the test, saying which Debian package provides it, so a
developer without Redis or PostgreSQL can still run the rest. In CI (``CI=true``), where
``.ci/run`` installs them, a missing program is a failure: a skip there would hide that the
deployment tests did not run.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import NoReturn

import pytest


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def missing_server(message: str) -> NoReturn:
    """Skip the test for want of a server program, or fail it in CI, saying what is missing."""
    if in_ci():
        pytest.fail(message)
    pytest.skip(message)


def require_binary(name: str, debian_package: str, *, also_in: Iterable[Path] = ()) -> str:
    """The path of program ``name`` (on ``PATH``, else in one of ``also_in``); when there is
    none, skip the test (fail it in CI), naming ``debian_package``."""
    found = shutil.which(name)
    if found is None:
        candidates = (folder / name for folder in also_in)
        found = next((str(path) for path in candidates if os.access(path, os.X_OK)), None)
    if found is not None:
        return found
    missing_server(f"'{name}' is not installed; on Debian: apt-get install {debian_package}")
