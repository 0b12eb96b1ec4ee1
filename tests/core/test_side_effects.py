"""A run has no side effects beyond the cache directory: no files in the cwd, no output."""

from __future__ import annotations

import os
import subprocess
import textwrap
from pathlib import Path

import pytest
from core_support import PYTHON, python_env

from flowyml import Pipeline, step


def mixed_pipeline() -> Pipeline:
    """In-process, child-process, skipped and failing steps, none of which prints."""

    @step(outputs=["data"])
    def load() -> list[int]:
        return [1, 2]

    @step(inputs=["data"], outputs=["total"], timeout=30)
    def total(data: list[int]) -> int:
        return sum(data)

    @step(inputs=["data"], outputs=["skipped"], condition=lambda: False)
    def never(data: list[int]) -> int:
        return 0

    @step(inputs=["total"], outputs=["broken"])
    def broken(total: int) -> int:
        raise ValueError("expected")

    pipeline = Pipeline("quiet")
    for made in (load, total, never, broken):
        pipeline.add_step(made)
    return pipeline


def test_running_a_pipeline_writes_nothing_to_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, private_cache_dir: Path
) -> None:
    workdir = tmp_path / "work"
    workdir.mkdir()
    monkeypatch.chdir(workdir)

    mixed_pipeline().run()
    mixed_pipeline().run()

    assert list(workdir.iterdir()) == []
    assert private_cache_dir.exists()  # the cache is the one place written to


def test_running_a_pipeline_of_silent_steps_prints_nothing(
    capsys: pytest.CaptureFixture[str],
) -> None:
    mixed_pipeline().run()

    assert capsys.readouterr().out == ""


PRINTING_SCRIPT = """
    from flowyml import Pipeline, step


    @step(outputs=["x"], timeout=30, register=False)
    def noisy():
        print("from the step")
        return 1


    print("before the run")
    Pipeline("noisy").add_step(noisy).run()
    print("after the run")
"""


@pytest.fixture
def buffered_output(tmp_path: Path) -> str:
    """What a script printing around a child-process step writes to a pipe (block-buffered)."""
    script = tmp_path / "printing.py"
    script.write_text(textwrap.dedent(PRINTING_SCRIPT))
    env = python_env()
    env.pop("PYTHONUNBUFFERED", None)  # a pipe is block-buffered unless this is set
    done = subprocess.run(
        [PYTHON, str(script)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        timeout=60,
        check=True,
        cwd=os.fspath(tmp_path),
    )
    return done.stdout


def test_output_printed_before_a_child_process_step_is_written_once(buffered_output: str) -> None:
    assert buffered_output.count("before the run") == 1
    assert buffered_output.count("after the run") == 1


def test_output_printed_by_a_child_process_step_is_written_once(buffered_output: str) -> None:
    assert buffered_output.count("from the step") == 1
