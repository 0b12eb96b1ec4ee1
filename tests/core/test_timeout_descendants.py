"""No process a ``timeout`` attempt started outlives it, not even one in a new session.

``run_with_deadline`` is called directly with small targets that start processes and record their
pids with their kernel start time, so a reused pid is never mistaken for one of them. A process
counts as gone once it no longer runs: absent, or a zombie (finished, waiting to be reaped).
Whatever a test started and the code under test did not stop, the test stops.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from core_support import (
    PYTHON,
    process_running,
    python_env,
    read_pids,
    record_pids,
    start_time,
    wait_until,
)

from flowyml import StepCrashedError, StepTimeoutError
from flowyml.core.isolation import run_with_deadline

# Far more than SIGTERM, the grace and SIGKILL take, even on 2 loaded cores.
GONE_SECONDS = 10.0
# How long a Python subprocess may take to start and record itself on 2 loaded cores.
STARTED_SECONDS = 60.0
# A short grace between SIGTERM and SIGKILL, so the tests that wait it out stay quick.
GRACE = 0.5
# Long enough for a target to start its processes and record them, on 2 loaded cores.
SHORT_TIMEOUT = 3.0
# Far beyond any test: a step that must be ended some other way than by its deadline.
LONG_TIMEOUT = 120.0
CORE_TESTS = Path(__file__).parent


def subprocess_env() -> dict[str, str]:
    """The environment of a test's Python subprocess: this checkout and ``core_support``."""
    env = python_env()
    env["PYTHONPATH"] = os.pathsep.join([str(CORE_TESTS), env["PYTHONPATH"]])
    return env


# Records itself, then sleeps; only SIGKILL ends it.
IGNORING_SIGTERM = """
    import os, signal, sys, time
    from pathlib import Path
    from core_support import record_pids

    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    record_pids(Path(sys.argv[1]), os.getpid())
    time.sleep(60)
"""

# A classic daemon: fork, setsid, fork, the first two exit; the third is an orphan in its own
# session, out of the step's process group, and ignores SIGTERM.
DOUBLE_FORK_DAEMON = """
    import os, signal, sys, time
    from pathlib import Path
    from core_support import record_pids

    if os.fork():
        os._exit(0)
    os.setsid()
    if os.fork():
        os._exit(0)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    record_pids(Path(sys.argv[1]), os.getpid())
    time.sleep(60)
"""

# Starts a grandchild of the step running ``IGNORING_SIGTERM`` (argv[2]), then sleeps.
PARENT_OF_AN_IGNORER = """
    import subprocess, sys, time

    subprocess.Popen([sys.executable, "-c", sys.argv[2], sys.argv[1]])
    time.sleep(60)
"""

# Never the same process for long: each generation forks, leaves, and its child starts a new
# session, every millisecond, ignoring SIGTERM, until the stop file (argv[2]) appears.
RESPAWNING = """
    import os, signal, sys, time

    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    open(sys.argv[1], "w").close()
    while not os.path.exists(sys.argv[2]):
        if os.fork():
            os._exit(0)
        os.setsid()
        time.sleep(0.001)
"""


def start_python(
    script: str, *args: str, new_session: bool = False, keep_fd: int | None = None
) -> subprocess.Popen[bytes]:
    """Start ``script`` in a Python subprocess, optionally keeping the file ``keep_fd`` open."""
    return subprocess.Popen(
        [PYTHON, "-c", textwrap.dedent(script), *args],
        env=subprocess_env(),
        start_new_session=new_session,
        pass_fds=() if keep_fd is None else (keep_fd,),
    )


def start_sleep(pid_file: Path, *, new_session: bool) -> None:
    """Start ``sleep 60`` and record it (from the step: the pid is known at once)."""
    sleeper = subprocess.Popen(["sleep", "60"], start_new_session=new_session)
    record_pids(pid_file, sleeper.pid)


def wait_for(path: Path) -> None:
    """Wait in the step until a process it started has recorded itself."""
    if not wait_until(path.exists, timeout=STARTED_SECONDS):
        raise TimeoutError(f"{path.name} was never written")


def assert_gone(pid_file: Path) -> None:
    """Every process ``pid_file`` lists stops running within ``GONE_SECONDS``."""
    recorded = read_pids(pid_file)
    assert recorded

    def all_gone() -> bool:
        return not any(process_running(pid, started) for pid, started in recorded)

    assert wait_until(all_gone, timeout=GONE_SECONDS), f"still running: {recorded}"


@pytest.fixture
def pid_dir(tmp_path: Path) -> Iterator[Path]:
    """Where the processes record themselves; any of them still running at the end is killed."""
    yield tmp_path
    for path in tmp_path.glob("*.pids"):
        for pid, started in read_pids(path):
            if process_running(pid, started):
                os.kill(pid, signal.SIGKILL)


def test_a_process_the_step_left_in_its_group_ends_when_the_step_returns(pid_dir: Path) -> None:
    pids = pid_dir / "sleep.pids"

    def leave_one() -> int:
        start_sleep(pids, new_session=False)
        return 42

    assert run_with_deadline(leave_one, timeout=LONG_TIMEOUT, step="leave") == 42
    assert_gone(pids)


def test_a_process_in_a_new_session_ends_when_the_step_returns(pid_dir: Path) -> None:
    pids = pid_dir / "sleep.pids"

    def leave_one() -> int:
        start_sleep(pids, new_session=True)
        return 42

    assert run_with_deadline(leave_one, timeout=LONG_TIMEOUT, step="leave") == 42
    assert_gone(pids)


def test_the_steps_processes_are_reaped_before_run_with_deadline_returns(pid_dir: Path) -> None:
    pids = pid_dir / "sleep.pids"

    def leave_two() -> None:
        start_sleep(pid_dir / "group.pids", new_session=False)
        start_sleep(pids, new_session=True)

    run_with_deadline(leave_two, timeout=LONG_TIMEOUT, step="leave")

    # No polling: gone from /proc altogether, not even a zombie waiting for init.
    for path in (pid_dir / "group.pids", pids):
        [(pid, started)] = read_pids(path)
        assert start_time(pid) != started


def test_a_process_in_a_new_session_ends_when_the_step_raises(pid_dir: Path) -> None:
    pids = pid_dir / "sleep.pids"

    def leave_one_and_raise() -> None:
        start_sleep(pids, new_session=True)
        raise ValueError("bad input")

    with pytest.raises(ValueError, match="bad input"):
        run_with_deadline(leave_one_and_raise, timeout=LONG_TIMEOUT, step="raise")
    assert_gone(pids)


def test_a_process_in_a_new_session_ends_when_the_steps_process_crashes(pid_dir: Path) -> None:
    pids = pid_dir / "sleep.pids"

    def leave_one_and_crash() -> None:
        start_sleep(pids, new_session=True)
        os.kill(os.getpid(), signal.SIGKILL)

    with pytest.raises(StepCrashedError, match="killed by SIGKILL"):
        run_with_deadline(leave_one_and_crash, timeout=LONG_TIMEOUT, step="crash")
    assert_gone(pids)


def test_the_step_and_every_process_it_started_end_at_the_timeout(pid_dir: Path) -> None:
    pids = pid_dir / "hang.pids"

    def hang() -> None:
        in_group = subprocess.Popen(["sleep", "60"])
        in_new_session = subprocess.Popen(["sleep", "60"], start_new_session=True)
        record_pids(pids, os.getpid(), in_group.pid, in_new_session.pid)
        time.sleep(60)

    with pytest.raises(StepTimeoutError):
        run_with_deadline(hang, timeout=SHORT_TIMEOUT, step="hang", term_grace=GRACE)
    assert_gone(pids)


def test_a_double_fork_daemon_ignoring_sigterm_is_killed_after_the_grace(pid_dir: Path) -> None:
    pids = pid_dir / "daemon.pids"

    def start_daemon() -> None:
        start_python(DOUBLE_FORK_DAEMON, str(pids)).wait()
        wait_for(pids)

    started = time.monotonic()
    run_with_deadline(start_daemon, timeout=LONG_TIMEOUT, step="daemon", term_grace=GRACE)

    assert time.monotonic() - started >= GRACE
    assert_gone(pids)


def test_a_grandchild_ignoring_sigterm_is_killed_after_the_grace(pid_dir: Path) -> None:
    pids = pid_dir / "grandchild.pids"

    def start_grandchild() -> None:
        child = start_python(PARENT_OF_AN_IGNORER, str(pids), textwrap.dedent(IGNORING_SIGTERM))
        record_pids(pid_dir / "child.pids", child.pid)
        wait_for(pids)

    started = time.monotonic()
    run_with_deadline(start_grandchild, timeout=LONG_TIMEOUT, step="tree", term_grace=GRACE)

    assert time.monotonic() - started >= GRACE
    assert_gone(pids)
    assert_gone(pid_dir / "child.pids")


def closed_by_all_writers(read_fd: int, timeout: float) -> bool:
    """Whether the pipe reaches end of file within ``timeout`` seconds: no process holds it."""
    poller = select.poll()
    poller.register(read_fd, select.POLLIN)
    return bool(poller.poll(timeout * 1000)) and os.read(read_fd, 1) == b""


def test_a_process_forking_into_new_sessions_over_and_over_is_ended(tmp_path: Path) -> None:
    started, stop = tmp_path / "started", tmp_path / "stop"
    # Every generation inherits the write end: the pipe's end of file means all of them are gone
    # (a /proc scan would miss a process that changes its pid every few milliseconds).
    alive_read, alive_write = os.pipe()

    def start_respawning() -> None:
        start_python(RESPAWNING, str(started), str(stop), new_session=True, keep_fd=alive_write)
        wait_for(started)
        time.sleep(0.2)  # let it go through generations, each an orphan of the last

    try:
        run_with_deadline(start_respawning, timeout=LONG_TIMEOUT, step="hydra", term_grace=GRACE)
        os.close(alive_write)

        assert closed_by_all_writers(alive_read, GONE_SECONDS)
    finally:
        stop.touch()  # a generation that escaped stops at its next turn
        with contextlib.suppress(OSError):
            os.close(alive_write)
        closed_by_all_writers(alive_read, GONE_SECONDS)
        os.close(alive_read)


# A runner of one hung step, as a Dagster step process would be: the step (recording itself and
# its supervisor) ignores SIGTERM and has started a process in a new session.
HUNG_RUNNER = """
    import os, signal, subprocess, sys, time
    from pathlib import Path
    from core_support import record_pids
    from flowyml.core.isolation import run_with_deadline

    PIDS = Path(sys.argv[1])
    if sys.argv[2] == "interrupt-on-sigterm":  # as Dagster's step process does

        def interrupt(signum, frame):
            raise KeyboardInterrupt

        signal.signal(signal.SIGTERM, interrupt)


    def hang():
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        daemon = subprocess.Popen(["sleep", "60"], start_new_session=True)
        record_pids(PIDS, os.getpid(), os.getppid(), daemon.pid)
        time.sleep(60)


    run_with_deadline(hang, timeout={timeout}, step="hang", term_grace={grace})
"""


def start_hung_runner(pid_dir: Path, sigterm: str) -> subprocess.Popen[bytes]:
    """The runner, once its step has recorded itself; output to a file (a survivor holding a
    pipe would keep the test waiting)."""
    script = HUNG_RUNNER.format(timeout=LONG_TIMEOUT, grace=GRACE)
    with open(pid_dir / "runner.log", "wb") as log:
        runner = subprocess.Popen(
            [PYTHON, "-c", textwrap.dedent(script), str(pid_dir / "step.pids"), sigterm],
            env=subprocess_env(),
            stdout=log,
            stderr=log,
        )
    if not wait_until((pid_dir / "step.pids").exists, timeout=STARTED_SECONDS):
        runner.kill()
        runner.wait()
        pytest.fail(f"the step never started:\n{(pid_dir / 'runner.log').read_text()}")
    return runner


@pytest.fixture
def stopped_runners() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Runners a test started; any still running at the end is killed and waited for."""
    runners: list[subprocess.Popen[bytes]] = []
    yield runners
    for runner in runners:
        if runner.poll() is None:
            runner.kill()
        runner.wait(timeout=30)


def test_interrupting_the_parent_ends_the_step_and_its_processes(
    pid_dir: Path, stopped_runners: list[subprocess.Popen[bytes]]
) -> None:
    runner = start_hung_runner(pid_dir, sigterm="default")
    stopped_runners.append(runner)

    runner.send_signal(signal.SIGINT)
    runner.wait(timeout=30)

    assert "KeyboardInterrupt" in (pid_dir / "runner.log").read_text()
    assert_gone(pid_dir / "step.pids")


def test_terminating_the_parent_ends_the_step_and_its_processes(
    pid_dir: Path, stopped_runners: list[subprocess.Popen[bytes]]
) -> None:
    runner = start_hung_runner(pid_dir, sigterm="interrupt-on-sigterm")
    stopped_runners.append(runner)

    runner.send_signal(signal.SIGTERM)
    runner.wait(timeout=30)

    assert "KeyboardInterrupt" in (pid_dir / "runner.log").read_text()
    assert_gone(pid_dir / "step.pids")


def test_killing_the_parent_ends_the_step_and_its_processes(
    pid_dir: Path, stopped_runners: list[subprocess.Popen[bytes]]
) -> None:
    runner = start_hung_runner(pid_dir, sigterm="default")
    stopped_runners.append(runner)

    runner.kill()
    runner.wait(timeout=30)

    # No cleanup ran in the parent: the supervisor's parent-death signal set it off.
    assert_gone(pid_dir / "step.pids")


# A runner started under ``nohup``: it ignores SIGHUP, and so must its step. The step records
# itself, then returns once the file argv[2] appears.
NOHUP_RUNNER = """
    import os, signal, sys
    from pathlib import Path
    from core_support import record_pids, wait_until
    from flowyml.core.isolation import run_with_deadline

    signal.signal(signal.SIGHUP, signal.SIG_IGN)


    def wait_for_go():
        record_pids(Path(sys.argv[1]), os.getpid())
        assert wait_until(Path(sys.argv[2]).exists, timeout=60)
        return "finished"


    print(run_with_deadline(wait_for_go, timeout=120, step="nohup"), flush=True)
"""


def test_a_hangup_of_the_runners_group_that_the_runner_ignores_leaves_the_step_running(
    pid_dir: Path, stopped_runners: list[subprocess.Popen[bytes]]
) -> None:
    pids, go = pid_dir / "step.pids", pid_dir / "go"
    runner = subprocess.Popen(
        [PYTHON, "-c", textwrap.dedent(NOHUP_RUNNER), str(pids), str(go)],
        env=subprocess_env(),
        stdout=subprocess.PIPE,
        start_new_session=True,  # its own group, to send the hangup to
    )
    stopped_runners.append(runner)
    assert wait_until(pids.exists, timeout=STARTED_SECONDS)

    os.killpg(runner.pid, signal.SIGHUP)  # reaches the runner and the supervisor, not the step
    time.sleep(GRACE)  # time for a supervisor that took the hangup as a stop to act on it
    go.touch()
    output, _ = runner.communicate(timeout=60)

    assert runner.returncode == 0
    assert output.decode().strip() == "finished"
