"""Helpers shared by the core tests: a call log that survives process boundaries, modules built
from source text, and checks that a process is really gone.

Not a test module; imported by the tests of this directory.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any


class CallLog:
    """Records step calls in a file, so calls made in a forked child are counted too.

    Each call appends one line ``name`` (an ``O_APPEND`` write of a few bytes is atomic).
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    def record(self, name: str) -> None:
        with open(self.path, "a", encoding="utf-8") as log:
            log.write(f"{name}\n")

    def names(self) -> list[str]:
        if not self.path.exists():
            return []
        return self.path.read_text(encoding="utf-8").splitlines()

    def count(self, name: str) -> int:
        return self.names().count(name)

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)


def load_module(directory: Path, module_name: str, source: str) -> ModuleType:
    """Write ``source`` to ``directory/module_name.py`` and import it (its own file, its own name).

    A fresh file name per call keeps ``linecache`` from serving an earlier text.
    """
    path = directory / f"{module_name}.py"
    path.write_text(source, encoding="utf-8")
    spec = importlib.util.spec_from_file_location(module_name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def exec_in_module(module_name: str, source: str) -> dict[str, Any]:
    """Run ``source`` as if it were the body of module ``module_name`` (a notebook cell)."""
    namespace: dict[str, Any] = {"__name__": module_name}
    exec(compile(source, f"<cell in {module_name}>", "exec"), namespace)
    return namespace


def start_time(pid: int) -> int | None:
    """The kernel's start time of ``pid`` (clock ticks since boot), or None if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name is in parentheses and may contain spaces: split after the last ')'.
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[19])


def process_running(pid: int, started: int) -> bool:
    """True while the process ``pid`` that started at ``started`` exists and is not a zombie.

    A zombie has finished running; it only waits for its parent (often init for an orphan) to
    reap it, which is not ours to do. A different start time means the pid was reused.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    fields = stat[stat.rindex(")") + 2 :].split()
    state, ticks = fields[0], int(fields[19])
    return ticks == started and state not in ("Z", "X")


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.02) -> bool:
    """Poll ``predicate`` until it holds or ``timeout`` seconds pass; its last value."""
    give_up = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= give_up:
            return predicate()
        time.sleep(interval)


def record_pids(path: Path, *pids: int) -> None:
    """Write ``pid start_time`` lines atomically, so a reader never sees half a file."""
    lines = "".join(f"{pid} {start_time(pid)}\n" for pid in pids)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(lines)
    os.replace(tmp, path)


def read_pids(path: Path) -> list[tuple[int, int]]:
    pairs = []
    for line in path.read_text().splitlines():
        pid, started = line.split()
        pairs.append((int(pid), int(started)))
    return pairs


def python_env() -> dict[str, str]:
    """The environment for a child Python that imports this checkout's ``flowyml``."""
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    return env


PYTHON = sys.executable


def run_script(path: Path, source: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Write ``source`` (dedented) to ``path`` and run it in a child Python with ``args``; a
    non-zero exit raises."""
    path.write_text(textwrap.dedent(source))
    return subprocess.run(
        [PYTHON, str(path), *args],
        env=python_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
