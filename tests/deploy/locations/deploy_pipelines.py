"""Steps the deployment tests run on Celery workers, each pipeline with its own steps.

A step that must be found by the test while it runs writes its pid to the file its context
names (``pid_file``), then waits: the test signals or inspects that process.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from flowyml import Pipeline, context, step

STUBBORN_TIMEOUT = 1.0  # seconds; the step outlives it, ignoring SIGTERM
LONG_SLEEP = 600.0  # seconds; only ever ended by termination or a kill
# The queue of the step whose worker a test kills; the test starts that queue's workers itself.
FRAGILE_QUEUE = "fragile"
CELERY_QUEUE_TAG = "dagster-celery/queue"


def _record_pid(pid_file: str) -> None:
    path = Path(pid_file)
    path.write_text(str(os.getpid()), encoding="utf-8")


@step(outputs=["stubborn/never"], timeout=STUBBORN_TIMEOUT, retry=1, pipeline="stubborn")
def ignore_sigterm() -> int:
    """Ignores the polite request at its deadline: only the SIGKILL after the grace ends it."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    time.sleep(LONG_SLEEP)
    return 0


@step(outputs=["long/never"], timeout=LONG_SLEEP, pipeline="long")
def sleep_long(pid_file: str = "") -> int:
    """Runs until its run is terminated."""
    _record_pid(pid_file)
    time.sleep(LONG_SLEEP)
    return 0


@step(outputs=["fragile/first"], pipeline="fragile")
def quick_first() -> int:
    return 1


@step(
    inputs=["fragile/first"],
    outputs=["fragile/second"],
    pipeline="fragile",
    tags={CELERY_QUEUE_TAG: FRAGILE_QUEUE},  # a user tag is an op tag: dagster-celery reads it
)
def slow_second(first: int, pid_file: str = "", seconds: float = 4.0) -> int:
    """Long enough for the test to kill its worker in the middle of it."""
    _record_pid(pid_file)
    time.sleep(seconds)
    return first + 1


# Explicit steps: auto-discovery would also take the example's unscoped ``load_digits``.
stubborn = Pipeline("stubborn", steps=[ignore_sigterm])
long = Pipeline("long", context=context(pid_file=""), steps=[sleep_long])
fragile = Pipeline(
    "fragile", context=context(pid_file="", seconds=4.0), steps=[quick_first, slow_second]
)


@step(outputs=["flaky/source"], pipeline="flaky")
def source() -> int:
    return 2


@step(
    inputs=["flaky/source"], outputs=["flaky/doubled"], execution_group="finish", pipeline="flaky"
)
def doubled(source: int) -> int:
    return source * 2


@step(
    inputs=["flaky/doubled"], outputs=["flaky/checked"], execution_group="finish", pipeline="flaky"
)
def checked(doubled: int, marker: str = "") -> int:
    """Fails while the file ``marker`` exists: a fault the test clears before re-executing."""
    if marker and Path(marker).exists():
        raise RuntimeError(f"failing while {marker} exists")
    return doubled


flaky = Pipeline("flaky", context=context(marker=""), steps=[source, doubled, checked])


def over_limit(total: int, limit: int) -> bool:
    return total > limit


@step(outputs=["parity/numbers"], pipeline="parity")
def numbers() -> list[int]:
    return [1, 2, 3]


@step(
    inputs=["parity/numbers"], outputs=["parity/total"], execution_group="sums", pipeline="parity"
)
def total(numbers: list[int]) -> int:
    return sum(numbers)


@step(
    inputs=["parity/numbers", "parity/total"],
    outputs=["parity/mean"],
    execution_group="sums",
    pipeline="parity",
)
def mean(numbers: list[int], total: int) -> float:
    return total / len(numbers)


@step(
    inputs=["parity/total"], outputs=["parity/published"], condition=over_limit, pipeline="parity"
)
def publish(total: int) -> int:
    return total


@step(inputs=["parity/published"], outputs=["parity/announced"], pipeline="parity")
def announce(published: int) -> str:
    return f"published {published}"


parity = Pipeline(
    "parity", context=context(limit=100), steps=[numbers, total, mean, publish, announce]
)
