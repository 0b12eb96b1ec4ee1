"""Run a callable in a forked child process; end it, and every process it started, at a deadline.

Python cannot interrupt a thread stuck in C code or ignoring signals, so a timeout that is really
enforced needs a process. ``fork`` (about 10 ms here, against about 600 ms for ``spawn``) gives the
child the parent's memory, so the step function and its inputs are never pickled; only the result
travels back, through a pipe.

``timeout`` covers the whole attempt: no process the step started outlives it, whether the step
returns, raises, times out or crashes, or the parent is interrupted or killed. A process group is
not enough for that: a process started in a new session (``Popen(..., start_new_session=True)``,
a daemon's double fork) leaves the group, and once its parent exits Linux hands it to init, out
of reach. So an attempt has three processes::

    parent ──fork──> supervisor ──fork──> worker ──> whatever the step starts
      ^  ^                │                  │
      │  └────────────────┘ the worker's wait status, the supervisor's last act
      └──────────────────────────────────────┘ the result, one framed message

The supervisor marks itself a *child subreaper* (``PR_SET_CHILD_SUBREAPER``): Linux re-parents an
orphan to its nearest subreaper ancestor instead of init, so every process the step starts stays
below the supervisor, whatever its session or group. The supervisor runs only this module's code
(and the ``os.register_at_fork`` hooks of imported libraries), with its signals blocked and taken
synchronously (``sigwaitinfo``), so nothing the step does can replace its handlers. It waits for
the worker to exit, or for a request to stop: SIGTERM, from the parent at the deadline or on an
interruption, or as its parent-death signal. (The terminal's SIGINT, SIGQUIT and SIGHUP stay
pending: the supervisor follows the parent's response to them.) Then it ends every descendant:
SIGTERM (with SIGCONT, or a stopped process would not see it), up to the grace
(``TERM_GRACE_SECONDS``) for them to exit, then SIGKILL in rounds until it has no child left.
Descendants are found by walking /proc's ``children`` files from the supervisor down, and each is
signalled as soon as it is listed: a SIGKILLed process can no longer fork, so a round misses only
what was forked in the microseconds between a listing and its kill, and that orphan is the
supervisor's own child by the next round. Having no child means having no descendant at all, so a
step that leaves nothing behind costs no walk. The supervisor reaps every process, reports the
worker's wait status and exits; the parent waits for it, so when ``run_with_deadline`` returns or
raises, every process of the attempt is gone, reaped.

The worker leads its own process group, so a step's ``killpg(0, ...)`` reaches neither the parent
nor the supervisor, and dies with the supervisor (``PR_SET_PDEATHSIG``). After a result the parent
signals nothing: the worker exits, and the supervisor ends what it left. At the deadline, or on an
interruption, the parent SIGTERMs the supervisor and gives it the grace and its kill rounds, and
then some, before SIGKILL. The price is a second fork per attempt, of a process as large as the
parent, and a second exit to wait for.

Not guaranteed: Linux only (subreaper, /proc, ``sigwaitinfo``); on a kernel without /proc
``children`` files (``CONFIG_PROC_CHILDREN``) only the worker's process group is ended, as it was
before the supervisor. A process started outside the tree (by systemd, a container runtime,
``at``, ssh) is not the step's to end. A descendant the user may not signal (one now running as
another user, e.g. under ``sudo``) survives. A process in uninterruptible sleep ends only when its
I/O does, though SIGKILL is pending. If the supervisor itself is SIGKILLed (the parent's last
resort, or the OOM killer) the worker dies with it, but the rest may not. A pid listed in /proc
could be reused by an unrelated process before it is signalled, if the pid space wrapped around in
those microseconds. ptrace does not change a process's parent, so a traced descendant is found too.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import pickle
import select
import signal
import struct
import sys
import time
import traceback
from collections.abc import Callable, Iterable
from types import FrameType
from typing import Any, NoReturn, TypeAlias, TypeVar

from flowyml.core.errors import StepCrashedError, StepExecutionError, StepTimeoutError

T = TypeVar("T")
# What ``signal.signal`` takes and returns (None: a handler set outside Python).
_Handler: TypeAlias = Callable[[int, FrameType | None], Any] | int | signal.Handlers | None

# Time a step and its processes get between SIGTERM and SIGKILL to clean up (flush, free GPUs).
TERM_GRACE_SECONDS = 2.0
# Longest the supervisor goes on with SIGKILL rounds after the grace; only an unkillable process
# (uninterruptible sleep) or a huge heap being torn down takes more than a round or two.
_KILL_SECONDS = 3.0
# Pause between SIGKILL rounds: enough for the killed to exit and their orphans to be re-parented.
_KILL_ROUND_SECONDS = 0.05
# How long the parent waits for the supervisor beyond its grace and kill rounds before the last
# resort, SIGKILL: scheduling delay on a loaded machine.
_SUPERVISOR_SLACK_SECONDS = 2.0
# Longest single wait for the pipe, so a deadline is checked at least this often.
_MAX_POLL_SECONDS = 1.0
_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36
# The worker's one message: a kind byte, the pickle's length and the number of out-of-band
# buffers, each buffer's length, then the pickle and the buffers. Protocol 5 leaves a large
# buffer (a numpy array's) out of the pickle: it crosses the pipe from the array's own memory and
# the array is rebuilt on the buffer it lands in, so neither side holds it twice.
_HEADER = struct.Struct("!cQI")
_LENGTH = struct.Struct("!Q")
_RESULT, _ERROR = b"R", b"E"
# The supervisor's one message: the worker's wait status.
_STATUS = struct.Struct("!i")
# A result as the worker sends it: a pickle and its out-of-band buffers.
Pickled: TypeAlias = tuple[bytes, list[pickle.PickleBuffer]]


class RemoteTraceback(Exception):
    """The traceback of an exception raised in the child, shown as its ``__cause__``."""

    def __init__(self, formatted: str) -> None:
        super().__init__(formatted)
        self.formatted = formatted

    def __str__(self) -> str:
        return self.formatted


def dumps_out_of_band(value: Any) -> Pickled:
    """``value`` pickled with protocol 5, its large buffers left out of the pickle to be sent as
    they are."""
    buffers: list[pickle.PickleBuffer] = []
    return pickle.dumps(value, protocol=5, buffer_callback=buffers.append), buffers


def run_with_deadline(
    target: Callable[[], T],
    *,
    timeout: float,
    step: str,
    dumps: Callable[[T], Pickled] = dumps_out_of_band,
    term_grace: float = TERM_GRACE_SECONDS,
) -> T:
    """Return ``target()`` computed in a child process, or raise at ``timeout`` seconds.

    Raises ``StepTimeoutError`` at the deadline, ``StepCrashedError`` if the child dies without a
    result, or the child's own exception (with the child's traceback as ``__cause__``).
    ``dumps`` serialises the result in the child (as :func:`dumps_out_of_band` does), so its
    errors name what could not be sent.
    Whatever happens, every process the attempt started is gone when this returns or raises.
    """
    deadline = time.monotonic() + timeout
    result_read, result_write = os.pipe()
    status_read, status_write = os.pipe()
    parent_pid = os.getpid()
    _prctl_function()  # looked up here, once per process, not in every child
    _flush_std_streams()  # else the children inherit unflushed output and write it a second time
    # Blocked across the fork, so the supervisor is born with them blocked and never runs the
    # parent's Python handlers; the parent unblocks them inside the ``try`` below.
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, _supervisor_signals())
    try:
        supervisor = os.fork()
    except OSError:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        for fd in (result_read, result_write, status_read, status_write):
            os.close(fd)
        raise
    if supervisor == 0:  # pragma: no cover - runs in the supervisor, which leaves with os._exit
        os.close(result_read)
        os.close(status_read)
        _supervisor_main(target, dumps, result_write, status_write, parent_pid, mask, term_grace)
    os.close(result_write)
    os.close(status_write)
    ended = False
    try:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)  # a signal held back is handled here
        try:
            message = _read_message(result_read, deadline)
        except _DeadlinePassed:
            _end_supervisor(supervisor, status_read, time.monotonic(), term_grace)
            ended = True
            raise StepTimeoutError(step, timeout) from None
        worker_status, supervisor_status = _end_supervisor(
            supervisor, status_read, deadline, term_grace
        )
        ended = True
    finally:
        os.close(result_read)
        try:
            if not ended:  # interrupted (KeyboardInterrupt, run termination): leave nothing
                _end_supervisor(supervisor, status_read, time.monotonic(), term_grace)
        finally:
            os.close(status_read)
    return _decode(message, worker_status, supervisor_status, step)


def _supervisor_signals() -> set[signal.Signals]:
    """The signals the supervisor keeps blocked: a child's exit and a request to stop, which it
    waits for, and the terminal's SIGINT, SIGQUIT and SIGHUP, which it leaves pending for good.

    Those three go to the whole foreground process group; the supervisor follows the parent's
    response instead: an exception (the parent then sends SIGTERM), death (the parent-death
    signal), or nothing at all (ignored, as under ``nohup``). A function, not a constant, so that
    importing this module works where these signals do not exist.
    """
    return {signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGHUP}


def _flush_std_streams() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()


# --- the supervisor -----------------------------------------------------------------------------


def _supervisor_main(
    target: Callable[[], Any],
    dumps: Callable[[Any], Pickled],
    result_fd: int,
    status_fd: int,
    parent_pid: int,
    mask: set[signal.Signals],
    grace: float,
) -> NoReturn:  # pragma: no cover - runs in the supervisor
    """Fork the worker, wait for it to exit or for a stop request, then end every descendant.

    Exits 0 after reporting the worker's wait status (if it could reap the worker), 1 if it
    failed before that; the parent reads it as the supervisor's exit code.
    """
    code = 1
    try:
        _prctl(_PR_SET_CHILD_SUBREAPER, 1)
        _die_with_parent(parent_pid, signal.SIGTERM)  # a stop request like any other
        # Ignored, SIGCHLD would make the kernel reap the worker before its status is read.
        chld_handler = signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        supervisor_pid = os.getpid()
        worker = os.fork()
        if worker == 0:
            os.close(status_fd)  # or a process the step leaves could hide the supervisor's end
            _worker_main(target, dumps, result_fd, supervisor_pid, mask, chld_handler)
        with contextlib.suppress(OSError):
            os.setpgid(worker, worker)  # also done by the worker; whichever runs first wins
        os.close(result_fd)  # the parent sees end of file once the worker's side is gone
        children = _Children(worker)
        children.wait_for_worker()
        children.end_all(grace)
        if children.worker_status is not None:
            with contextlib.suppress(OSError):  # the parent may be gone
                os.write(status_fd, _STATUS.pack(children.worker_status))
        code = 0
    finally:
        os._exit(code)


class _Children:
    """The supervisor's children: the worker, and every orphan of the step re-parented to it."""

    def __init__(self, worker: int) -> None:
        self.worker = worker
        self.worker_status: int | None = None

    def reap(self) -> bool:
        """Reap every child that has exited; whether none is left (so no descendant at all)."""
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return True
            if pid == 0:
                return False
            if pid == self.worker:
                self.worker_status = status

    def wait_for_worker(self) -> None:
        """Return when the worker has exited, or on a request to stop (SIGTERM)."""
        while self.worker_status is None:
            if signal.sigwaitinfo({signal.SIGCHLD, signal.SIGTERM}).si_signo == signal.SIGTERM:
                return
            self.reap()

    def signal_all(self, signals: tuple[signal.Signals, ...]) -> None:
        """Signal the worker's group, then every descendant /proc lists.

        The group by its id, which cannot be reused while the worker is unreaped: that much is
        signalled even where /proc has no ``children`` files (a kernel without
        ``CONFIG_PROC_CHILDREN``).
        """
        if self.worker_status is None:
            _signal_all((-self.worker,), signals)
        _signal_tree(os.getpid(), signals)

    def wait_childless(self, until: float) -> bool:
        """Reap until no child is left or the monotonic time ``until``; whether none is left."""
        while not self.reap():
            remaining = until - time.monotonic()
            if remaining <= 0:
                return False
            signal.sigtimedwait({signal.SIGCHLD}, remaining)
        return True

    def end_all(self, grace: float) -> None:
        """SIGTERM every descendant, allow ``grace`` seconds, then SIGKILL until none is left."""
        if self.reap():
            return
        self.signal_all((signal.SIGTERM, signal.SIGCONT))  # SIGCONT: a stopped one must see it
        if self.wait_childless(time.monotonic() + grace):
            return
        give_up = time.monotonic() + _KILL_SECONDS
        while True:
            self.signal_all((signal.SIGKILL,))
            next_round = min(give_up, time.monotonic() + _KILL_ROUND_SECONDS)
            if self.wait_childless(next_round) or time.monotonic() >= give_up:
                return


def _signal_tree(root: int, signals: tuple[signal.Signals, ...]) -> None:
    """Send ``signals`` to every process below ``root``, each as soon as it is listed, parents
    before their children.

    A SIGKILLed process can no longer fork, so a round misses only a process forked in the
    microseconds between its parent's listing and its parent's kill; orphaned, it is the
    supervisor's child by the next round.
    """
    seen = {root}
    frontier = [root]
    while frontier:
        for child in _children_of(frontier.pop()):
            if child not in seen:  # a pid reused during the walk could otherwise close a loop
                seen.add(child)
                _signal_all((child,), signals)
                frontier.append(child)


def _children_of(pid: int) -> list[int]:
    """The children of every thread of ``pid``, from /proc; none if it is gone."""
    children: list[int] = []
    with contextlib.suppress(OSError):
        for tid in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError), open(f"/proc/{pid}/task/{tid}/children", "rb") as f:
                children += map(int, f.read().split())
    return children


def _signal_all(pids: Iterable[int], signals: tuple[signal.Signals, ...]) -> None:
    for pid in pids:
        for sig in signals:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)


# --- the worker ---------------------------------------------------------------------------------


def _worker_main(
    target: Callable[[], Any],
    dumps: Callable[[Any], Pickled],
    fd: int,
    supervisor_pid: int,
    mask: set[signal.Signals],
    chld_handler: _Handler,
) -> NoReturn:  # pragma: no cover - runs in the worker
    """Run ``target`` with the parent's signal handling (bar SIGTERM and SIGINT, which kill it)
    and send its result or exception as the one framed message."""
    try:
        os.setpgid(0, 0)
        _die_with_parent(supervisor_pid, signal.SIGKILL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        if chld_handler is not None:  # None: set outside Python, nothing to put back
            signal.signal(signal.SIGCHLD, chld_handler)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        try:
            data, buffers = dumps(target())
            kind, views = _RESULT, [buffer.raw() for buffer in buffers]
        except BaseException as exc:
            kind, data, views = _ERROR, _dump_exception(exc), []
        lengths = b"".join(_LENGTH.pack(view.nbytes) for view in views)
        _write_all(fd, _HEADER.pack(kind, len(data), len(views)) + lengths)
        for part in (data, *views):
            _write_all(fd, part)
    finally:
        _flush_std_streams()
        os._exit(0)


@functools.cache
def _prctl_function() -> Callable[..., int] | None:
    """libc's ``prctl``, or None where there is none. Looked up once, in the parent, so the
    supervisor and the worker inherit it instead of each paying for ``dlopen`` and ``dlsym``."""
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


def _prctl(option: int, value: int) -> None:
    """Linux's ``prctl``; does nothing where there is none (the guarantees above are lost)."""
    function = _prctl_function()
    if function is not None:
        function(option, value, 0, 0, 0)


def _die_with_parent(ppid: int, sig: signal.Signals) -> None:
    """Ask Linux for ``sig`` when the parent dies, so a killed parent leaves no orphan."""
    _prctl(_PR_SET_PDEATHSIG, sig)
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


def _write_all(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


# --- the parent ---------------------------------------------------------------------------------


# The worker's message as the parent reads it: its kind, the pickle and the out-of-band buffers.
_Message: TypeAlias = tuple[bytes, bytearray, list[bytearray]]


class _DeadlinePassed(Exception):
    """The step's time ran out while the parent waited for its message."""


def _read_message(fd: int, deadline: float) -> _Message | None:
    """The worker's framed message ``(kind, pickle, buffers)``, or ``None`` if the worker died
    without one; raises ``_DeadlinePassed`` when the deadline comes first.

    The frame says how long every part is, so the parent stops reading at its end: a process
    the step forked and left holding the pipe open cannot make a finished step look hung. Each
    part is read into a buffer of its own, which is what the value is then rebuilt on.
    """
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    header = bytearray(_HEADER.size)
    if not _read_exactly(fd, memoryview(header), poller, deadline):
        return None
    kind, length, count = _HEADER.unpack(header)
    lengths = bytearray(_LENGTH.size * count)
    if not _read_exactly(fd, memoryview(lengths), poller, deadline):
        return None
    parts = []
    for size in [length, *(size for (size,) in _LENGTH.iter_unpack(lengths))]:
        part = bytearray(size)
        if not _read_exactly(fd, memoryview(part), poller, deadline):
            return None
        parts.append(part)
    return kind, parts[0], parts[1:]


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


def _end_supervisor(pid: int, status_fd: int, until: float, grace: float) -> tuple[int | None, int]:
    """Wait for the supervisor to finish; at the monotonic time ``until`` tell it to stop
    (SIGTERM), and SIGKILL it only if it has not finished by the end of its grace and kill rounds.

    Returns the worker's wait status as the supervisor reported it (``None`` if it did not) and
    the supervisor's own wait status. Safe to call again after an interruption.
    """
    if not _wait_readable(status_fd, until):
        _signal_all((pid,), (signal.SIGTERM,))
        give_up = time.monotonic() + grace + _KILL_SECONDS + _SUPERVISOR_SLACK_SECONDS
        if not _wait_readable(status_fd, give_up):
            _signal_all((pid,), (signal.SIGKILL,))
    status = 0
    with contextlib.suppress(ChildProcessError):  # reaped by an interrupted earlier call
        _, status = os.waitpid(pid, 0)
    # The report, if any, was written before the supervisor exited; end of file otherwise.
    report = os.read(status_fd, _STATUS.size) if _wait_readable(status_fd, 0.0) else b""
    worker_status = _STATUS.unpack(report)[0] if len(report) == _STATUS.size else None
    return worker_status, status


def _wait_readable(fd: int, until: float) -> bool:
    """Whether ``fd`` is readable (data or end of file) by the monotonic time ``until``."""
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    while True:
        remaining = until - time.monotonic()
        if poller.poll(max(0.0, min(remaining, _MAX_POLL_SECONDS)) * 1000):
            return True
        if remaining <= 0:
            return False


def _decode(
    message: _Message | None,
    worker_status: int | None,
    supervisor_status: int,
    step: str,
) -> Any:
    if message is not None:
        kind, payload, buffers = message
        if kind == _RESULT:
            return pickle.loads(payload, buffers=buffers)
        exc, formatted = pickle.loads(payload)
        if isinstance(exc, str):
            raise StepExecutionError(step, f"raised {exc}:\n{formatted}")
        exc.__cause__ = RemoteTraceback(formatted)
        raise exc
    if worker_status is not None:
        how = f"its process {_how_it_ended(worker_status)}"
    else:
        how = f"its supervisor process {_how_it_ended(supervisor_status)}"
    raise StepCrashedError(step, f"{how} before returning a result")


def _how_it_ended(status: int) -> str:
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        with contextlib.suppress(ValueError):  # a real-time signal has no name
            return f"was killed by {signal.Signals(number).name}"
        return f"was killed by signal {number}"
    return f"exited with code {os.waitstatus_to_exitcode(status)}"
