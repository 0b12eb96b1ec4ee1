"""Programs written for flowyml 2.2.1 run unchanged on this package.

Each file in ``programs/`` is a standalone flowyml 2.x script that checks its own expectations
with ``assert`` and prints ``OK`` at the end; each was verified to print ``OK`` under the original
flowyml 2.2.1. Here each runs in a fresh interpreter, in an empty working directory, with its
own cache directory.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

PROGRAMS = sorted((Path(__file__).parent / "programs").glob("*.py"))


def test_the_program_directory_is_not_empty() -> None:
    assert len(PROGRAMS) >= 6, PROGRAMS


@pytest.mark.parametrize("program", PROGRAMS, ids=[p.stem for p in PROGRAMS])
def test_flowyml2_program_runs_unchanged(program: Path, tmp_path: Path) -> None:
    env = {**os.environ, "FLOWYML_CACHE_DIR": str(tmp_path / "cache")}
    completed = subprocess.run(
        [sys.executable, str(program)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    report = (
        f"{program.name} exited {completed.returncode}\n"
        f"--- stdout ---\n{completed.stdout}\n--- stderr ---\n{completed.stderr}"
    )
    assert completed.returncode == 0, report
    assert "OK" in completed.stdout.splitlines(), report
