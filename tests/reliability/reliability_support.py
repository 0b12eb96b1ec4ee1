"""Helpers of the reliability tests: run pipelines in subprocesses of their own.

Running jobs and reading them back is ``run_support``'s (shared with ``tests/dagster``). Not a
test module; imported by the tests of this directory.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from run_support import lines

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
PYTHON = sys.executable


# --- processes ----------------------------------------------------------------------------------


def pids_in(path: Path) -> list[int]:
    """Every pid a step recorded in ``path`` (whitespace-separated, one or more per line)."""
    return [int(token) for line in lines(path) for token in line.split()]


def python_env(**extra: str) -> dict[str, str]:
    """The environment of a child Python that imports this checkout, this directory and the
    shared test support in ``tests/``."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(REPO_ROOT), str(HERE), str(HERE.parent), env.get("PYTHONPATH")) if p
    )
    env.update(extra)
    return env


def start_python(code: str, *, log: Path, **env: str) -> subprocess.Popen[bytes]:
    """Start ``python -c code`` in its own session, its output going to ``log``."""
    with log.open("wb") as output:
        return subprocess.Popen(
            [PYTHON, "-c", textwrap.dedent(code)],
            cwd=str(HERE),
            env=python_env(**env),
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
