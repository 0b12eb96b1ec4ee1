"""Run a callable in a forked child process and kill it at a deadline.

Python cannot interrupt a thread stuck in C code or ignoring signals, so a timeout that is really
enforced needs a process. ``fork`` (about 10 ms here, against about 600 ms for ``spawn``) gives the
child the parent's memory, so the step function and its inputs are never pickled; only the result
travels back, through a pipe.

The child leads its own process group, so at the deadline the whole group (the step and anything
it started) gets SIGTERM, then SIGKILL after a short grace. The child also asks Linux to kill it if
the parent dies, and the parent kills it on any interruption, so no orphan outlives a run.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import pickle
import select
import signal
import struct
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any, TypeVar

from flowyml.core.errors import StepCrashedError, StepExecutionError, StepTimeoutError

T = TypeVar("T")

# Time a step gets between SIGTERM and SIGKILL to clean up (flush files, release GPUs).
TERM_GRACE_SECONDS = 2.0
# Poll interval while waiting for a terminated child to exit.
_REAP_POLL_SECONDS = 0.01
# Longest single wait for the pipe, so a deadline is checked at least this often.
_MAX_POLL_SECONDS = 1.0
_PR_SET_PDEATHSIG = 1
# The child's one message: a kind byte and the payload length, then the payload (a pickle).
_HEADER = struct.Struct("!cQ")
_RESULT, _ERROR = b"R", b"E"


class RemoteTraceback(Exception):
    """The traceback of an exception raised in the child, shown as its ``__cause__``."""

    def __init__(self, formatted: str) -> None:
        super().__init__(formatted)
        self.formatted = formatted

    def __str__(self) -> str:
        return self.formatted


def run_with_deadline(
    target: Callable[[], T],
    *,
    timeout: float,
    step: str,
    dumps: Callable[[T], bytes] = pickle.dumps,
    term_grace: float = TERM_GRACE_SECONDS,
) -> T:
    """Return ``target()`` computed in a child process, or raise at ``timeout`` seconds.

    Raises ``StepTimeoutError`` at the deadline, ``StepCrashedError`` if the child dies without a
    result, or the child's own exception (with the child's traceback as ``__cause__``).
    ``dumps`` serialises the result in the child, so its errors name what could not be sent.
    """
    deadline = time.monotonic() + timeout
    read_fd, write_fd = os.pipe()
    parent_pid = os.getpid()
    _flush_std_streams()  # else the child inherits unflushed output and writes it a second time
    try:
        pid = os.fork()
    except OSError:
        os.close(read_fd)
        os.close(write_fd)
        raise
    if pid == 0:  # pragma: no cover - runs in the child, which leaves with os._exit
        os.close(read_fd)
        _child_main(target, dumps, write_fd, parent_pid)
    os.close(write_fd)
    with contextlib.suppress(OSError):
        os.setpgid(pid, pid)  # also done by the child; whichever runs first wins the race
    reaped: int | None = None
    try:
        try:
            message = _read_message(read_fd, deadline)
        except _DeadlinePassed:
            _terminate_group(pid, term_grace)
            reaped = 0
            raise StepTimeoutError(step, timeout) from None
        _, reaped = os.waitpid(pid, 0)
    finally:
        os.close(read_fd)
        if reaped is None:  # interrupted (KeyboardInterrupt, run termination): leave no child
            _terminate_group(pid, term_grace)
        else:
            _kill_group(pid, signal.SIGKILL)  # anything the step left running in its group
    return _decode(message, reaped, step)


def _flush_std_streams() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()


def _child_main(
    target: Callable[[], Any], dumps: Callable[[Any], bytes], fd: int, ppid: int
) -> None:
    try:
        os.setpgid(0, 0)
        _die_with_parent(ppid)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        try:
            kind, payload = _RESULT, dumps(target())
        except BaseException as exc:
            kind, payload = _ERROR, _dump_exception(exc)
        _write_all(fd, _HEADER.pack(kind, len(payload)))
        _write_all(fd, payload)
    finally:
        _flush_std_streams()
        os._exit(0)


def _die_with_parent(ppid: int) -> None:
    """Ask Linux for SIGKILL when the parent dies, so a killed runner leaves no orphan."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != ppid:  # the parent died before prctl took effect
        os._exit(1)


def _dump_exception(exc: BaseException) -> bytes:
    """The exception and its formatted traceback; just the text if the exception would not
    survive the trip (unpicklable, or a custom ``__init__`` that unpickling cannot call)."""
    formatted = "".join(traceback.format_exception(exc))
    try:
        dumped = pickle.dumps((exc, formatted))
        pickle.loads(dumped)
    except Exception:
        return pickle.dumps((f"{type(exc).__module__}.{type(exc).__qualname__}", formatted))
    return dumped


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


class _DeadlinePassed(Exception):
    """The step's time ran out while the parent waited for its message."""


def _read_message(fd: int, deadline: float) -> tuple[bytes, memoryview] | None:
    """The child's framed message ``(kind, payload)``, or ``None`` if the child died without
    one; raises ``_DeadlinePassed`` when the deadline comes first.

    The frame says how long the payload is, so the parent stops reading at its end: a process
    the step forked and left holding the pipe open cannot make a finished step look hung.
    """
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    header = bytearray(_HEADER.size)
    if not _read_exactly(fd, memoryview(header), poller, deadline):
        return None
    kind, length = _HEADER.unpack(header)
    payload = bytearray(length)
    if not _read_exactly(fd, memoryview(payload), poller, deadline):
        return None
    return kind, memoryview(payload)


def _read_exactly(fd: int, buffer: memoryview, poller: select.poll, deadline: float) -> bool:
    """Fill ``buffer`` from ``fd``: ``False`` at end of file; raises at the deadline."""
    while buffer:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise _DeadlinePassed
        if not poller.poll(min(remaining, _MAX_POLL_SECONDS) * 1000):
            continue
        read = os.readv(fd, [buffer])
        if read == 0:
            return False
        buffer = buffer[read:]
    return True


def _kill_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def _terminate_group(pid: int, grace: float) -> None:
    """SIGTERM the child's group, SIGKILL it after ``grace`` seconds, and reap the child."""
    _kill_group(pid, signal.SIGTERM)
    give_up = time.monotonic() + grace
    while time.monotonic() < give_up:
        try:
            reaped, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            break
        if reaped:
            break
        time.sleep(_REAP_POLL_SECONDS)
    _kill_group(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


def _decode(message: tuple[bytes, memoryview] | None, status: int, step: str) -> Any:
    if message is not None:
        kind, payload = message
        if kind == _RESULT:
            return pickle.loads(payload)
        exc, formatted = pickle.loads(payload)
        if isinstance(exc, str):
            raise StepExecutionError(step, f"raised {exc}:\n{formatted}")
        exc.__cause__ = RemoteTraceback(formatted)
        raise exc
    if os.WIFSIGNALED(status):
        how = f"was killed by {signal.Signals(os.WTERMSIG(status)).name}"
    else:
        how = f"exited with code {os.waitstatus_to_exitcode(status)}"
    raise StepCrashedError(step, f"its process {how} before returning a result")
