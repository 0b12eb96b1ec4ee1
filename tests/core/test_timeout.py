"""``timeout``: enforced by running the step in a child process that is killed at the deadline.

Every test here uses real processes. Pids are recorded with their kernel start time, so a pid
reused by an unrelated process is never mistaken for the step; a zombie counts as gone (it has
stopped running and only waits for its parent, often init, to reap it).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from core_support import (
    PYTHON,
    CallLog,
    process_running,
    python_env,
    read_pids,
    record_pids,
    wait_until,
)

from flowyml import Pipeline, StepStatus, step


@pytest.fixture
def pid_file(tmp_path: Path) -> Iterator[Path]:
    """Where a step writes its pids; anything still running at the end is killed by pid."""
    path = tmp_path / "pids.txt"
    yield path
    if path.exists():
        for pid, started in read_pids(path):
            if process_running(pid, started):
                os.kill(pid, signal.SIGKILL)


def test_a_step_that_finishes_within_its_timeout_returns_its_value_from_a_child_process() -> None:
    @step(outputs=["pid"], timeout=30)
    def where() -> int:
        return os.getpid()

    result = Pipeline("timeout").add_step(where).run()

    assert result.success
    assert result["pid"] != os.getpid()


def test_a_result_much_larger_than_a_pipe_buffer_comes_back_whole() -> None:
    @step(outputs=["blob"], timeout=60)
    def big() -> bytes:
        return bytes(range(256)) * 40_000  # about 10 MB

    result = Pipeline("timeout").add_step(big).run()

    assert result["blob"] == bytes(range(256)) * 40_000


def test_a_hung_step_that_ignores_sigterm_is_killed_at_its_timeout() -> None:
    @step(timeout=0.5)
    def hang() -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        time.sleep(60)

    started = time.monotonic()
    result = Pipeline("timeout").add_step(hang).run()
    elapsed = time.monotonic() - started

    outcome = result.step_results["hang"]
    assert outcome.status is StepStatus.FAILED
    assert outcome.error is not None
    assert outcome.error.type == "StepTimeoutError"
    assert "step 'hang'" in outcome.error.message
    assert "0.5s" in outcome.error.message
    assert 0.5 <= elapsed < 10


def test_a_timed_out_step_leaves_neither_its_process_nor_its_children_running(
    pid_file: Path,
) -> None:
    @step(timeout=0.5)
    def hang() -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        sleeper = subprocess.Popen(["sleep", "60"])
        record_pids(pid_file, os.getpid(), sleeper.pid)
        time.sleep(60)

    result = Pipeline("timeout").add_step(hang).run()

    assert result.step_results["hang"].error is not None
    (step_pid, _), (sleeper_pid, sleeper_started) = read_pids(pid_file)
    assert step_pid != os.getpid()
    with pytest.raises(ProcessLookupError):
        os.kill(step_pid, 0)  # our direct child: killed and reaped
    assert wait_until(lambda: not process_running(sleeper_pid, sleeper_started), timeout=5)


def test_processes_a_finished_step_left_behind_are_killed_with_it(pid_file: Path) -> None:
    @step(outputs=["x"], timeout=30)
    def spawn_and_return() -> int:
        sleeper = subprocess.Popen(["sleep", "60"])
        record_pids(pid_file, sleeper.pid)
        return 1

    result = Pipeline("timeout").add_step(spawn_and_return).run()

    assert result["x"] == 1
    [(sleeper_pid, sleeper_started)] = read_pids(pid_file)
    assert wait_until(lambda: not process_running(sleeper_pid, sleeper_started), timeout=5)


def test_a_timed_out_step_is_retried_while_retries_remain(calls: CallLog) -> None:
    @step(outputs=["x"], timeout=0.5, retry=1)
    def slow_once() -> str:
        calls.record("slow_once")
        if calls.count("slow_once") == 1:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            time.sleep(60)
        return "second attempt"

    started = time.monotonic()
    result = Pipeline("timeout").add_step(slow_once).run()

    assert result.success
    assert result["x"] == "second attempt"
    assert result.step_results["slow_once"].retries == 1
    assert calls.count("slow_once") == 2
    assert time.monotonic() - started < 15


HANGING_PIPELINE = """
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    from core_support import record_pids
    from flowyml import Pipeline, step

    PIDS = Path(sys.argv[1])


    @step(timeout=120, register=False)
    def hang():
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        sleeper = subprocess.Popen(["sleep", "60"])
        record_pids(PIDS, os.getpid(), sleeper.pid)
        time.sleep(60)


    Pipeline("hang").add_step(hang).run()
"""


@pytest.fixture
def hanging_runner(tmp_path: Path, pid_file: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A Python process running a pipeline whose step hangs, started and waited for by pid."""
    script = tmp_path / "hanging_pipeline.py"
    script.write_text(textwrap.dedent(HANGING_PIPELINE))
    env = python_env()
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).parent), env["PYTHONPATH"]])
    # Output goes to a file, not a pipe: a surviving grandchild would hold a pipe open.
    with open(tmp_path / "runner.log", "wb") as log:
        runner = subprocess.Popen(
            [PYTHON, str(script), str(pid_file)], env=env, stdout=log, stderr=log
        )
    try:
        assert wait_until(pid_file.exists, timeout=60), "the step never started"
        yield runner
    finally:
        if runner.poll() is None:
            runner.kill()
        runner.wait(timeout=30)


def test_interrupting_the_runner_kills_the_hung_step_and_its_children(
    hanging_runner: subprocess.Popen[bytes], pid_file: Path, tmp_path: Path
) -> None:
    (step_pid, step_started), (sleeper_pid, sleeper_started) = read_pids(pid_file)
    assert process_running(step_pid, step_started)

    hanging_runner.send_signal(signal.SIGINT)
    hanging_runner.wait(timeout=30)

    assert hanging_runner.returncode != 0
    assert "KeyboardInterrupt" in (tmp_path / "runner.log").read_text()
    assert wait_until(lambda: not process_running(step_pid, step_started), timeout=10)
    assert wait_until(lambda: not process_running(sleeper_pid, sleeper_started), timeout=10)


def test_killing_the_runner_kills_the_hung_step(
    hanging_runner: subprocess.Popen[bytes], pid_file: Path
) -> None:
    (step_pid, step_started), _ = read_pids(pid_file)
    assert process_running(step_pid, step_started)

    hanging_runner.kill()
    hanging_runner.wait(timeout=30)

    # The runner could not clean up; the kernel's parent-death signal kills the step.
    assert wait_until(lambda: not process_running(step_pid, step_started), timeout=10)


@pytest.mark.skipif(sys.platform != "linux", reason="parent-death signal is Linux only")
def test_the_step_process_asks_to_die_with_its_parent(pid_file: Path) -> None:
    @step(outputs=["signal"], timeout=30)
    def deathsig() -> int:
        import ctypes

        value = ctypes.c_int()
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(2, ctypes.byref(value), 0, 0, 0)  # PR_GET_PDEATHSIG
        return value.value

    assert Pipeline("timeout").add_step(deathsig).run()["signal"] == signal.SIGKILL
