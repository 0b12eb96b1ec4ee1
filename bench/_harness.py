"""What every benchmark script shares: the report table, timing, scenarios and private dirs.

Every script prints the same four columns (measurement, value, target, met) so a reader can scan
any of them the same way, measures with the same median-of-repetitions rule, reports a failing
scenario as a row (a benchmark reports, it never fails), and never touches the user's own cache
or Dagster instance.
"""

from __future__ import annotations

import gc
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Row:
    """One line of the report; ``met`` is ``None`` for rows that are information only."""

    measurement: str
    value: str
    target: str = "info"
    met: bool | None = None


def median_seconds(
    func: Callable[[], Any], *, repeat: int, number: int = 1, warmup: int = 1
) -> float:
    """Median over ``repeat`` samples of the time of one call, each sample averaging ``number``.

    ``number > 1`` is for calls too short for one ``perf_counter`` reading to resolve; warm-up
    calls keep first-call costs (imports, caches filling) out of the steady state measured here.
    """
    for _ in range(warmup):
        func()
    gc.collect()
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        for _ in range(number):
            func()
        samples.append((time.perf_counter() - started) / number)
    return statistics.median(samples)


def print_table(rows: list[Row]) -> None:
    """The rows as an aligned text table; ``met`` prints ``yes``, ``NO`` or ``-`` (info).

    The value column is at least 10 wide and widens for a longer value (an error name), so the
    target and met columns stay aligned.
    """
    width = max(len(r.measurement) for r in rows)
    value_width = max(10, *(len(r.value) for r in rows))
    print(f"{'measurement':<{width}}  {'value':>{value_width}}  {'target':>9}  met")
    print("-" * (width + value_width + 20))
    for r in rows:
        met = "-" if r.met is None else ("yes" if r.met else "NO")
        print(f"{r.measurement:<{width}}  {r.value:>{value_width}}  {r.target:>9}  {met}")


def run_scenarios(scenarios: list[Callable[[], list[Row]]]) -> list[Row]:
    """The rows of every scenario; one that raises becomes an error row and the rest still run."""
    rows: list[Row] = []
    for scenario in scenarios:
        try:
            rows += scenario()
        except Exception as exc:
            rows.append(Row("scenario", f"ERROR: {type(exc).__name__}: {exc}", met=False))
    return rows


@contextmanager
def private_dirs() -> Iterator[Path]:
    """Throw-away ``FLOWYML_CACHE_DIR``, ``FLOWYML_RUNS_DIR`` and ``DAGSTER_HOME``; yields a spare
    temp directory."""
    names = ("FLOWYML_CACHE_DIR", "FLOWYML_RUNS_DIR", "DAGSTER_HOME")
    saved = {n: os.environ.get(n) for n in names}
    with tempfile.TemporaryDirectory(prefix="flowyml-bench-") as tmp:
        for name in names:
            os.environ[name] = os.path.join(tmp, name.lower())
            os.makedirs(os.environ[name])
        try:
            yield Path(tmp, "spare")
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
