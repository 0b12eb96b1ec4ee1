"""Steps and pipelines the reliability tests break on purpose, and the functions that rebuild
their Dagster jobs in worker processes.

Not a test module. Every step is made with ``register=False`` and added to its ``Pipeline``
explicitly, so the autouse empty-registry fixture leaves them alone. Steps run in child processes
(a timeout's fork, Dagster's step workers, subprocess runs), so they report through files in
``workdir``, a context param each test sets: the plain runner gets it from ``run(context=...)``,
Dagster from op config. The ``*_job`` functions are module-level so the job can be rebuilt by
``dagster.reconstructable``-style pointers in every worker process.
"""

from __future__ import annotations

import hashlib
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import dagster as dg
import numpy as np
from pydantic import SecretStr

from flowyml import Pipeline, context, step
from flowyml_dagster import build_definitions


def note(workdir: str, file_name: str, line: object = "") -> int:
    """Append ``line`` to ``workdir/file_name`` and return how many lines it now has.

    One short ``O_APPEND`` write per call, so concurrent writers never interleave inside a line.
    """
    if not workdir:
        raise RuntimeError("the test did not set 'workdir' in the context / run config")
    path = Path(workdir) / file_name
    with path.open("a", encoding="utf-8") as log:
        log.write(f"{line}\n")
    return len(path.read_text(encoding="utf-8").splitlines())


def source_line(function_name: str, marker: str) -> int:
    """The line number in this file of the line containing ``marker`` inside ``function_name``."""
    lines = Path(__file__).read_text(encoding="utf-8").splitlines()
    start = next(i for i, text in enumerate(lines) if text.startswith(f"def {function_name}("))
    offset = next(i for i, text in enumerate(lines[start:]) if marker in text)
    return start + offset + 1


# --- a step raises ------------------------------------------------------------------------------

BROKEN_RETRIES = 2
BROKEN_MESSAGE = "the broken step fails on purpose"
BROKEN_RAISE = "raise ValueError(BROKEN_MESSAGE)"


@step(outputs=["raising/source"], register=False)
def raising_source(workdir: str = "") -> list[int]:
    note(workdir, "raising_source.calls", os.getpid())
    return [1, 2, 3]


@step(inputs=["raising/source"], outputs=["raising/broken"], retry=BROKEN_RETRIES, register=False)
def raising_broken(source: list[int], workdir: str = "") -> int:
    note(workdir, "raising_broken.attempts", os.getpid())
    raise ValueError(BROKEN_MESSAGE)


@step(inputs=["raising/broken"], outputs=["raising/after"], register=False)
def raising_after(broken: int, workdir: str = "") -> int:
    note(workdir, "raising_after.calls", os.getpid())
    return broken


@step(outputs=["raising/branch"], register=False)
def raising_branch(workdir: str = "") -> str:
    note(workdir, "raising_branch.calls", os.getpid())
    return "branch"


@step(inputs=["raising/branch"], outputs=["raising/branch_end"], register=False)
def raising_branch_end(branch: str) -> str:
    return f"{branch} end"


RAISING = Pipeline(
    "raising",
    steps=[raising_source, raising_broken, raising_after, raising_branch, raising_branch_end],
)
RAISE_LINE = source_line("raising_broken", BROKEN_RAISE)


# --- a step hangs and ignores SIGTERM -----------------------------------------------------------

HANG_TIMEOUT = 1


@step(outputs=["hanging/never"], timeout=HANG_TIMEOUT, register=False)
def hanging_stubborn(workdir: str = "") -> str:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    note(workdir, "hanging_stubborn.pids", os.getpid())
    time.sleep(300)
    return "never"


@step(outputs=["hanging/branch"], register=False)
def hanging_branch() -> str:
    return "branch"


HANGING = Pipeline("hanging", steps=[hanging_stubborn, hanging_branch])


# --- a step kills its own process ---------------------------------------------------------------


def exit_now(workdir: str, name: str) -> None:
    note(workdir, f"{name}.pids", os.getpid())
    os._exit(1)


def sigkill_self(workdir: str, name: str) -> None:
    note(workdir, f"{name}.pids", os.getpid())
    os.kill(os.getpid(), signal.SIGKILL)


@step(outputs=["crashing/exit_timeout"], timeout=60, register=False)
def crash_exit_timeout(workdir: str = "") -> int:
    exit_now(workdir, "crash_exit_timeout")
    return 0


@step(outputs=["crashing/sigkill_timeout"], timeout=60, register=False)
def crash_sigkill_timeout(workdir: str = "") -> int:
    sigkill_self(workdir, "crash_sigkill_timeout")
    return 0


@step(outputs=["crashing/exit"], register=False)
def crash_exit(workdir: str = "") -> int:
    exit_now(workdir, "crash_exit")
    return 0


@step(outputs=["crashing/sigkill"], register=False)
def crash_sigkill(workdir: str = "") -> int:
    sigkill_self(workdir, "crash_sigkill")
    return 0


@step(outputs=["crashing/healthy"], register=False)
def crash_healthy() -> list[int]:
    return [4, 5, 6]


@step(inputs=["crashing/healthy"], outputs=["crashing/healthy_sum"], register=False)
def crash_healthy_sum(healthy: list[int]) -> int:
    return sum(healthy)


@step(inputs=["crashing/exit_timeout"], outputs=["crashing/after_exit"], register=False)
def crash_after_exit(value: int, workdir: str = "") -> int:
    note(workdir, "crash_after_exit.calls")
    return value


# On the plain runner only a step with a timeout runs in a child process: a step without one
# calling os._exit would end the runner itself (by design), so those run on Dagster only.
CRASHING_PLAIN = Pipeline(
    "crashing_plain",
    steps=[
        crash_exit_timeout,
        crash_sigkill_timeout,
        crash_healthy,
        crash_healthy_sum,
        crash_after_exit,
    ],
)
CRASHING = Pipeline(
    "crashing",
    steps=[
        crash_exit_timeout,
        crash_sigkill_timeout,
        crash_exit,
        crash_sigkill,
        crash_healthy,
        crash_healthy_sum,
        crash_after_exit,
    ],
)


# --- a step returns something that cannot be pickled --------------------------------------------


@step(outputs=["unpicklable/lock_timeout"], timeout=60, retry=1, register=False)
def unpicklable_lock_timeout(workdir: str = "") -> Any:
    note(workdir, "unpicklable_lock_timeout.attempts")
    return threading.Lock()


@step(outputs=["unpicklable/lambda_timeout"], timeout=60, retry=1, register=False)
def unpicklable_lambda_timeout(workdir: str = "") -> Any:
    note(workdir, "unpicklable_lambda_timeout.attempts")
    return lambda value: value + 1


@step(outputs=["unpicklable/lock"], retry=1, register=False)
def unpicklable_lock(workdir: str = "") -> Any:
    note(workdir, "unpicklable_lock.attempts")
    return threading.Lock()


@step(outputs=["unpicklable/lambda"], retry=1, register=False)
def unpicklable_lambda(workdir: str = "") -> Any:
    note(workdir, "unpicklable_lambda.attempts")
    return lambda value: value + 1


@step(outputs=["unpicklable/fine"], register=False)
def unpicklable_fine() -> str:
    return "fine"


UNPICKLABLE_PLAIN = Pipeline(
    "unpicklable_plain",
    steps=[unpicklable_lock_timeout, unpicklable_lambda_timeout, unpicklable_fine],
)
UNPICKLABLE = Pipeline(
    "unpicklable",
    steps=[
        unpicklable_lock_timeout,
        unpicklable_lambda_timeout,
        unpicklable_lock,
        unpicklable_lambda,
        unpicklable_fine,
    ],
)


# --- re-execution from failure ------------------------------------------------------------------


@step(outputs=["rerun/source"], register=False)
def rerun_source(workdir: str = "") -> list[int]:
    note(workdir, "rerun_source.calls")
    return [1, 2, 3, 4]


@step(inputs=["rerun/source"], outputs=["rerun/prepared"], execution_group="fit", register=False)
def rerun_prepare(source: list[int], workdir: str = "") -> list[int]:
    note(workdir, "rerun_prepare.calls")
    return [value * 10 for value in source]


@step(inputs=["rerun/prepared"], outputs=["rerun/model"], execution_group="fit", register=False)
def rerun_fit(prepared: list[int], workdir: str = "") -> float:
    """Fail on the first run only: the first call leaves a flag file behind."""
    note(workdir, "rerun_fit.calls")
    flag = Path(workdir) / "rerun_fit.failed-once"
    if not flag.exists():
        flag.write_text("failed once\n", encoding="utf-8")
        raise RuntimeError("rerun_fit fails on its first run only")
    return sum(prepared) / len(prepared)


@step(inputs=["rerun/model"], outputs=["rerun/report"], register=False)
def rerun_report(model: float, workdir: str = "") -> str:
    note(workdir, "rerun_report.calls")
    return f"mean={model}"


@step(outputs=["rerun/side"], register=False)
def rerun_side(workdir: str = "") -> str:
    note(workdir, "rerun_side.calls")
    return "side"


RERUN = Pipeline("rerun", steps=[rerun_source, rerun_prepare, rerun_fit, rerun_report, rerun_side])


# --- a run terminated mid-step ------------------------------------------------------------------


def step_process() -> int:
    """The pid of the process running the step (the plain runner, Dagster's step worker), seen
    from the timeout's worker: its parent is the timeout's supervisor, whose parent that is."""
    stat = Path(f"/proc/{os.getppid()}/stat").read_text()
    return int(stat[stat.rindex(")") + 2 :].split()[1])


@step(outputs=["terminate/never"], timeout=600, register=False)
def terminate_sleeper(workdir: str = "") -> str:
    """Sleep in the timeout's child process, ignoring SIGTERM (only SIGKILL ends it)."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    note(workdir, "terminate_sleeper.pids", f"{step_process()} {os.getpid()}")
    time.sleep(600)
    return "never"


TERMINATE = Pipeline("terminate", steps=[terminate_sleeper])


# --- the cache on disk --------------------------------------------------------------------------


@step(outputs=["cached/source"], register=False)
def cached_source(workdir: str = "") -> list[int]:
    note(workdir, "cached_source.calls")
    return list(range(100))


@step(inputs=["cached/source"], outputs=["cached/total"], register=False)
def cached_total(source: list[int], workdir: str = "") -> int:
    note(workdir, "cached_total.calls")
    return sum(source)


CACHED = Pipeline("cached", steps=[cached_source, cached_total])

# Concurrent runs: each step waits until every run has reached it, so the runs compute and write
# the same cache entries at the same time. The payload is large enough that a write takes a while.
# The second step also waits for the test's reader, which arrives once it has read the first
# step's entry back, so that reads provably overlap the runs.
CONCURRENT_RUNS = 2
READER = "reader"
CONCURRENT_BYTES = 8 * 2**20
BARRIER_TIMEOUT = 300.0  # generous: two Dagster runs start on 2 loaded cores


def arrive(workdir: str, name: str, party: object) -> None:
    Path(workdir, f"{name}.arrived.{party}").touch()


def barrier(workdir: str, name: str, parties: int = CONCURRENT_RUNS) -> None:
    """Wait until ``parties`` parties have arrived at ``name`` (files in ``workdir``)."""
    arrive(workdir, name, os.getpid())
    give_up = time.monotonic() + BARRIER_TIMEOUT
    while len(list(Path(workdir).glob(f"{name}.arrived.*"))) < parties:
        if time.monotonic() > give_up:
            raise TimeoutError(f"barrier '{name}': the other runs never arrived")
        time.sleep(0.01)


def payload(size: int) -> bytes:
    """``size`` deterministic bytes that do not compress (so writing them takes real time)."""
    return hashlib.shake_256(b"flowyml concurrent cache").digest(size)


@step(outputs=["concurrent/blob"], register=False)
def concurrent_blob(workdir: str = "", size: int = CONCURRENT_BYTES) -> bytes:
    barrier(workdir, "concurrent_blob")
    note(workdir, "concurrent_blob.calls")
    return payload(size)


@step(inputs=["concurrent/blob"], outputs=["concurrent/summary"], register=False)
def concurrent_summary(blob: bytes, workdir: str = "") -> dict[str, Any]:
    barrier(workdir, "concurrent_summary", parties=CONCURRENT_RUNS + 1)  # + the test's reader
    note(workdir, "concurrent_summary.calls")
    return {"sha256": hashlib.sha256(blob).hexdigest(), "size": len(blob)}


CONCURRENT = Pipeline("concurrent", steps=[concurrent_blob, concurrent_summary])


# --- secrets ------------------------------------------------------------------------------------

SECRET_VALUE = "tok-9f1c2e7a-very-secret-4b6d"
API_KEY = SecretStr(SECRET_VALUE)


def describe_secret(api_key: Any) -> dict[str, Any]:
    """What the step saw, without the secret: its type and a digest of its value."""
    value = api_key.get_secret_value() if isinstance(api_key, SecretStr) else str(api_key)
    return {
        "type": type(api_key).__name__,
        "sha256": hashlib.sha256(value.encode()).hexdigest(),
    }


@step(outputs=["secret/in_process"], register=False)
def secret_in_process(api_key: SecretStr) -> dict[str, Any]:
    return describe_secret(api_key)


@step(outputs=["secret/in_child"], timeout=60, register=False)
def secret_in_child(api_key: SecretStr) -> dict[str, Any]:
    return describe_secret(api_key)


@step(outputs=["secret/flaky"], retry=1, register=False)
def secret_flaky(api_key: SecretStr, workdir: str = "") -> dict[str, Any]:
    """Fail the first attempt with the key in the error message (masked by ``SecretStr``)."""
    if note(workdir, "secret_flaky.attempts") == 1:
        raise RuntimeError(f"the service refused the key {api_key} ({api_key!r})")
    return describe_secret(api_key)


SECRET = Pipeline(
    "secret",
    context=context(api_key=API_KEY),
    steps=[secret_in_process, secret_in_child, secret_flaky],
)
SECRET_OUTPUTS = ("secret/in_process", "secret/in_child", "secret/flaky")

# A secret from a tiny space (a 4-digit PIN), given as a plain string to a param annotated
# ``SecretStr``: it must be treated as secret all the same.
PIN = "4821"


@step(outputs=["pin/checked"], register=False)
def check_pin(pin: SecretStr) -> str:
    return type(pin).__name__


PIN_PIPELINE = Pipeline("pin", context={"pin": PIN}, steps=[check_pin])


# --- params Dagster config cannot express ---------------------------------------------------------

WEIGHTS_DEFAULT = np.arange(4, dtype=np.float32)


@step(outputs=["exotic/seen"], register=False)
def exotic_params(
    blob: bytes,
    ids: set[int],
    either: int | str,
    weights: np.ndarray = WEIGHTS_DEFAULT,
) -> dict[str, Any]:
    """Report the params exactly as received (types included)."""
    return {
        "blob": blob,
        "ids": ids,
        "either": either,
        "weights": weights.tolist(),
        "weights_dtype": str(weights.dtype),
    }


EXOTIC_CONTEXT = {"blob": b"\x00\xffraw", "ids": {3, 1, 2}, "either": "seven"}
EXOTIC = Pipeline("exotic", context=context(**EXOTIC_CONTEXT), steps=[exotic_params])


# --- the definitions and jobs the tests run -----------------------------------------------------


def definitions(*pipelines: Pipeline) -> dg.Definitions:
    """A code location with ``build_definitions``' default executor (multiprocess, forkserver)."""
    return build_definitions(list(pipelines))


def raising_job() -> dg.JobDefinition:
    return definitions(RAISING).resolve_job_def("raising")


def hanging_job() -> dg.JobDefinition:
    return definitions(HANGING).resolve_job_def("hanging")


def crashing_job() -> dg.JobDefinition:
    return definitions(CRASHING).resolve_job_def("crashing")


def unpicklable_job() -> dg.JobDefinition:
    return definitions(UNPICKLABLE).resolve_job_def("unpicklable")


def rerun_job() -> dg.JobDefinition:
    return definitions(RERUN).resolve_job_def("rerun")


def terminate_job() -> dg.JobDefinition:
    return definitions(TERMINATE).resolve_job_def("terminate")


def cached_job() -> dg.JobDefinition:
    return definitions(CACHED).resolve_job_def("cached")


def concurrent_job() -> dg.JobDefinition:
    return definitions(CONCURRENT).resolve_job_def("concurrent")


def secret_job() -> dg.JobDefinition:
    return definitions(SECRET).resolve_job_def("secret")


def pin_job() -> dg.JobDefinition:
    return definitions(PIN_PIPELINE).resolve_job_def("pin")


def exotic_job() -> dg.JobDefinition:
    return definitions(EXOTIC).resolve_job_def("exotic")
