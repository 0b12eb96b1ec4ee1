"""Whoever runs ``pipeline.run()`` on a terminal sees each step start and end; nobody else does."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from flowyml import Pipeline, step

PROGRAM = textwrap.dedent(
    """
    import sys
    from flowyml import Pipeline, step

    @step(outputs=["rows"])
    def load_rows():
        return [1, 2, 3]

    @step(inputs=["rows"], outputs=["total"])
    def add_up(rows):
        return sum(rows)

    progress = {"auto": None, "off": False}[sys.argv[1]]
    Pipeline("shown", steps=[load_rows, add_up]).run(progress=progress)
    print("stdout stays the program's")
    """
)


def mixed_pipeline() -> Pipeline:
    @step(outputs=["rows"], register=False)
    def load_rows() -> list[int]:
        return [1, 2, 3]

    @step(inputs=["rows"], outputs=["total"], condition=lambda: False, register=False)
    def add_up(rows: list[int]) -> int:
        return sum(rows)

    @step(inputs=["rows"], outputs=["check"], register=False)
    def check_rows(rows: list[int]) -> None:
        raise ValueError("row 2 is bad")

    return Pipeline("mixed", steps=[load_rows, add_up, check_rows])


def run_on_a_terminal(tmp_path: Path, mode: str) -> tuple[str, str]:
    """Run ``PROGRAM`` with stderr on a pseudo-terminal; ``(terminal text, stdout)``."""
    script = tmp_path / "program.py"
    script.write_text(PROGRAM)
    controller, terminal = pty.openpty()
    env = {**os.environ, "FLOWYML_CACHE_DIR": str(tmp_path / "cache"), "TERM": "xterm"}
    env.pop("NO_COLOR", None)
    try:
        done = subprocess.run(
            [sys.executable, str(script), mode],
            stderr=terminal,
            stdout=subprocess.PIPE,
            env=env,
            timeout=120,
            check=True,
        )
    finally:
        os.close(terminal)
    shown = b""
    try:
        while chunk := os.read(controller, 65536):
            shown += chunk
    except OSError:  # EIO: the terminal has no writer left
        pass
    finally:
        os.close(controller)
    return shown.decode(), done.stdout.decode()


def test_progress_on_a_terminal_shows_each_step_and_the_outcome(tmp_path: Path) -> None:
    shown, stdout = run_on_a_terminal(tmp_path, "auto")

    assert "load_rows" in shown
    assert "add_up" in shown
    assert "done in" in shown
    assert "shown completed" in shown
    assert stdout == "stdout stays the program's\n"


def test_progress_false_keeps_a_terminal_quiet(tmp_path: Path) -> None:
    shown, _ = run_on_a_terminal(tmp_path, "off")

    assert shown == ""


def test_progress_is_quiet_when_output_is_not_a_terminal(
    capfd: pytest.CaptureFixture[str],
) -> None:
    mixed_pipeline().run()

    assert capfd.readouterr().err == ""


def test_progress_true_says_which_steps_ran_were_skipped_or_failed(
    capfd: pytest.CaptureFixture[str],
) -> None:
    mixed_pipeline().run(progress=True)

    shown = capfd.readouterr().err
    assert "▶ load_rows" in shown
    assert "✓ load_rows" in shown
    assert "not run: condition is false" in shown
    assert "failed after" in shown
    assert "ValueError: row 2 is bad" in shown
    assert "mixed failed" in shown


def test_a_cached_step_is_shown_as_cached(capfd: pytest.CaptureFixture[str]) -> None:
    pipeline = mixed_pipeline()
    pipeline.run()

    pipeline.run(progress=True)

    assert "cached in" in capfd.readouterr().err


def test_importing_flowyml_does_not_import_the_display_library() -> None:
    probe = "import sys, flowyml; print(any(m.split('.')[0] == 'rich' for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)

    assert out.stdout.strip() == "False"
