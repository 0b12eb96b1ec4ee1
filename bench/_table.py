"""The report table and timing helper shared by the benchmark scripts.

Every script prints the same four columns (measurement, value, target, met) so a reader can scan
any of them the same way, and measures with the same median-of-repetitions rule.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
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
