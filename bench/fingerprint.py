"""Throughput of content fingerprints (``flowyml.core.fingerprint``) against raw SHA-256.

Run with ``.venv/bin/python bench/fingerprint.py``. A fingerprint can go no faster than SHA-256
over the same bytes, so each scenario is reported as a ratio to raw ``hashlib.sha256`` measured
in this same process on the same buffers: the ratio means the same on a fast laptop and a busy CI
runner, while the MB/s rows are information. This script only reports and always exits 0.

Scenarios:

1. a 100 MB float64 array (contiguous: hashed straight from its buffer), plus the extra peak
   memory of one fingerprint (numpy reports its buffers to ``tracemalloc``, so a copy shows);
2. a 100 MB DataFrame with naive and tz-aware datetime, categorical and float columns (hashed
   column by column from the underlying arrays), against SHA-256 over those same arrays.

Each timing is the median of several repetitions, fingerprint and reference alternating so that
a slow moment of the machine hits both alike.
"""

from __future__ import annotations

import hashlib
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from _harness import Row, print_table, run_scenarios

from flowyml.core.fingerprint import fingerprint

DATA_BYTES = 100_000_000  # 100 MB (decimal)
MB = 1_000_000
REPEAT = 11

TARGET_ARRAY_RATIO = 0.9
TARGET_FRAME_RATIO = 0.8


def alternating_medians(
    first: Callable[[], Any], second: Callable[[], Any], *, repeat: int = REPEAT
) -> tuple[float, float]:
    """Median seconds of ``first`` and of ``second``, run in turns after one warm-up each."""
    first()
    second()
    one, two = [], []
    for _ in range(repeat):
        started = time.perf_counter()
        first()
        one.append(time.perf_counter() - started)
        started = time.perf_counter()
        second()
        two.append(time.perf_counter() - started)
    return statistics.median(one), statistics.median(two)


def raw_sha256(buffers: list[Any]) -> bytes:
    """The reference: SHA-256 over the buffers, in place, with nothing else."""
    hasher = hashlib.sha256()
    for buffer in buffers:
        hasher.update(buffer)
    return hasher.digest()


def rate_rows(
    label: str, nbytes: int, seconds: float, reference: float, target: float
) -> list[Row]:
    ratio = reference / seconds
    return [
        Row(f"{label}: fingerprint (MB/s)", f"{nbytes / MB / seconds:.0f}"),
        Row(f"{label}: raw hashlib.sha256 (MB/s)", f"{nbytes / MB / reference:.0f}"),
        Row(
            f"{label}: fingerprint / raw sha256", f"{ratio:.2f}", f">= {target:g}", ratio >= target
        ),
    ]


def bench_array() -> list[Row]:
    """Scenario 1: a contiguous float64 array is hashed from its own buffer, never copied."""
    array = np.random.default_rng(0).random(DATA_BYTES // 8)
    seconds, reference = alternating_medians(
        lambda: fingerprint(array), lambda: raw_sha256([memoryview(array).cast("B")])
    )
    tracemalloc.start()
    fingerprint(array)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rows = rate_rows("100 MB float64", array.nbytes, seconds, reference, TARGET_ARRAY_RATIO)
    rows.append(Row("100 MB float64: extra peak memory (MB)", f"{peak / MB:.2f}"))
    return rows


def make_frame() -> pd.DataFrame:
    """About 100 MB: 33 bytes a row over five columns of the kinds a feature table has."""
    rows = DATA_BYTES // 33
    rng = np.random.default_rng(0)
    start = pd.Timestamp("2024-01-01")
    return pd.DataFrame(
        {
            "naive": pd.date_range(start, periods=rows, freq="s"),
            "aware": pd.date_range(start, periods=rows, freq="s", tz="Europe/Paris"),
            "category": pd.Categorical.from_codes(
                rng.integers(0, 4, rows, dtype=np.int8), ["a", "b", "c", "d"]
            ),
            "x": rng.random(rows),
            "y": rng.random(rows),
        }
    )


def column_buffers(frame: pd.DataFrame) -> list[Any]:
    """The arrays the fingerprint reads: int64 timestamps, category codes, float values."""
    buffers = []
    for _, column in frame.items():
        values = column.array
        if isinstance(values, pd.Categorical):
            buffers.append(values.codes)
        elif hasattr(values, "asi8"):
            buffers.append(values.asi8)
        else:
            buffers.append(np.asarray(values))
    return buffers


def bench_frame() -> list[Row]:
    """Scenario 2: column by column from the underlying arrays, as SHA-256 over those arrays."""
    frame = make_frame()
    buffers = column_buffers(frame)
    nbytes = sum(b.nbytes for b in buffers)
    seconds, reference = alternating_medians(
        lambda: fingerprint(frame), lambda: raw_sha256(buffers)
    )
    return rate_rows("100 MB DataFrame", nbytes, seconds, reference, TARGET_FRAME_RATIO)


def main() -> int:
    """Run every scenario; an error in one is reported as a row, never as a failing exit."""
    started = time.perf_counter()
    rows = run_scenarios([bench_array, bench_frame])
    print_table(rows)
    print(f"\ntotal benchmark time: {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
