"""Overhead of flowyml's plain runner, measured against plain Python in the same process.

Run with ``.venv/bin/python bench/core_runner.py``. Every number is a difference or a ratio
against a reference measured in this same process (a hand-written loop calling the same
functions, raw ``hashlib.sha256`` on the same bytes, a bare interpreter start), so the table
means the same thing on a fast laptop and a slow CI runner. Timed assertions in tests would
flake on shared runners instead; this script only reports and always exits 0.

Scenarios, all on a chain of ``CHAIN_LENGTH`` trivial steps (step i adds 1 to step i-1's output):

1. uncached per-step overhead of ``Pipeline.run`` (``enable_cache=False``, no timeout);
2. extra cost per step of ``timeout=`` (each attempt runs in a forked child);
3. cache-key hashing throughput on a 100 MB float64 array;
4. ``import flowyml`` time in a fresh interpreter;
5. a cached run where every step is a hit (information only).

Each timing is the median of several repetitions with ``time.perf_counter``.
"""

from __future__ import annotations

import gc
import hashlib
import os
import statistics
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from _harness import Row, median_seconds, print_table, private_dirs, run_scenarios

import flowyml

CHAIN_LENGTH = 100
HASH_BYTES = 100_000_000  # 100 MB (decimal), 12.5 M float64 values
MB = 1_000_000
REPO_ROOT = Path(__file__).resolve().parent.parent

TARGET_STEP_OVERHEAD_MS = 1.0
TARGET_TIMEOUT_EXTRA_MS = 20.0
TARGET_HASH_MB_S = 500.0
TARGET_IMPORT_S = 0.2


def _increment(x: int) -> int:
    """The step body: so cheap that everything a run spends beyond it is the runner's overhead."""
    return x + 1


def build_chain(*, timeout: float | None = None, **pipeline_options: Any) -> flowyml.Pipeline:
    """A built ``CHAIN_LENGTH``-step chain ``v0 -> v1 -> ... -> vN``; ``v0`` is the pipeline input.

    Built outside the timed region: decoration and graph validation are one-off costs, not
    per-run overhead. The registry is cleared first so scenarios cannot see each other's steps.
    """
    flowyml.clear_step_registry()
    pipeline = flowyml.Pipeline("bench_chain", **pipeline_options)
    for i in range(1, CHAIN_LENGTH + 1):
        made = flowyml.step(
            name=f"step_{i}",
            inputs=[f"v{i - 1}"],
            outputs=[f"v{i}"],
            timeout=timeout,
            register=False,
        )(_increment)
        pipeline.add_step(made)
    pipeline.build()
    return pipeline


def run_checked(pipeline: flowyml.Pipeline, *, expect_cached: bool | None = None) -> None:
    """Run the chain and check it really computed ``N``: a failed step does not raise, and a
    broken run that stops early would otherwise look like a fast one."""
    result = pipeline.run(inputs={"v0": 0})
    failed = [r for r in result.step_results.values() if not r.success]
    if failed:
        raise RuntimeError(f"step {failed[0].step_name} did not succeed: {failed[0].error}")
    if result.outputs.get(f"v{CHAIN_LENGTH}") != CHAIN_LENGTH:
        raise RuntimeError(f"wrong chain output {result.outputs.get(f'v{CHAIN_LENGTH}')!r}")
    if expect_cached is not None:
        hits = sum(r.cached for r in result.step_results.values())
        if hits != (CHAIN_LENGTH if expect_cached else 0):
            raise RuntimeError(f"expected cached={expect_cached}, got {hits} cache hits")


def reference_loop_seconds() -> float:
    """The same functions called by hand, the floor any runner is compared against."""
    funcs = [s.func for s in build_chain(enable_cache=False).steps]

    def loop() -> None:
        value = 0
        for func in funcs:
            value = func(value)
        assert value == CHAIN_LENGTH

    return median_seconds(loop, repeat=15, number=2000)


def bench_uncached(reference: float) -> tuple[float, list[Row]]:
    """Scenario 1; returns the median run time too, the baseline of the timeout scenario."""
    pipeline = build_chain(enable_cache=False)
    run = median_seconds(lambda: run_checked(pipeline), repeat=31, number=5, warmup=3)
    per_step_ms = (run - reference) / CHAIN_LENGTH * 1e3
    return run, [
        Row("reference loop, 100 calls (us)", f"{reference * 1e6:.2f}"),
        Row("uncached run, 100 steps (ms)", f"{run * 1e3:.3f}"),
        Row(
            "uncached per-step overhead (ms)",
            f"{per_step_ms:.4f}",
            f"<= {TARGET_STEP_OVERHEAD_MS:g}",
            per_step_ms <= TARGET_STEP_OVERHEAD_MS,
        ),
        Row("uncached run / reference loop", f"{run / reference:.0f}x"),
    ]


def bench_timeout(reference: float, uncached_run: float) -> list[Row]:
    """Scenario 2: every step forks a child; the cost beyond scenario 1 is the fork and pipe."""
    pipeline = build_chain(timeout=30, enable_cache=False)
    run = median_seconds(lambda: run_checked(pipeline), repeat=7, warmup=1)
    extra_ms = (run - uncached_run) / CHAIN_LENGTH * 1e3
    return [
        Row("timeout=30 run, 100 steps (ms)", f"{run * 1e3:.1f}"),
        Row(
            "timeout extra cost per step (ms)",
            f"{extra_ms:.3f}",
            f"<= {TARGET_TIMEOUT_EXTRA_MS:g}",
            extra_ms <= TARGET_TIMEOUT_EXTRA_MS,
        ),
        Row("timeout run / reference loop", f"{run / reference:.0f}x"),
    ]


def bench_cached(reference: float) -> list[Row]:
    """Scenario 5: a first run that fills a fresh cache, then the second run, all hits.

    New steps each repetition so the first run pays what a real first run pays (parsing each
    step's source for its code hash); the second run reuses the same pipeline, as a rerun would.
    """
    cold, warm = [], []
    for _ in range(5):
        with private_dirs() as cache_dir:
            pipeline = build_chain(enable_cache=True, cache_dir=cache_dir)
            gc.collect()
            started = time.perf_counter()
            run_checked(pipeline, expect_cached=False)
            cold.append(time.perf_counter() - started)
            run_checked(pipeline, expect_cached=True)  # warm-up of the hit path
            warm.append(
                median_seconds(
                    lambda p=pipeline: run_checked(p, expect_cached=True), repeat=5, warmup=0
                )
            )
    cold_ms = (statistics.median(cold) - reference) / CHAIN_LENGTH * 1e3
    warm_ms = (statistics.median(warm) - reference) / CHAIN_LENGTH * 1e3
    return [
        Row("first run filling the cache, per step (ms)", f"{cold_ms:.3f}"),
        Row("cached second run (all hits), per step (ms)", f"{warm_ms:.3f}"),
    ]


def bench_hashing() -> list[Row]:
    """Scenario 3: the cache key of a step whose input is a 100 MB array, against raw SHA-256.

    The key hashes the array's bytes in place; the extra peak memory row checks that no copy of
    the array is made on the way (numpy reports its buffers to ``tracemalloc``).
    """
    flowyml.clear_step_registry()
    key_step = flowyml.step(name="hash_me", register=False)(_increment)
    array = np.random.default_rng(0).random(HASH_BYTES // 8)
    raw = memoryview(array).cast("B")
    key = median_seconds(lambda: key_step.get_cache_key({"x": array}, {}), repeat=5)
    sha = median_seconds(lambda: hashlib.sha256(raw).digest(), repeat=5)
    tracemalloc.start()
    key_step.get_cache_key({"x": array}, {})
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    key_rate = HASH_BYTES / MB / key
    sha_rate = HASH_BYTES / MB / sha
    return [
        Row(
            "cache key of 100 MB float64 (MB/s)",
            f"{key_rate:.0f}",
            f">= {TARGET_HASH_MB_S:g}",
            key_rate >= TARGET_HASH_MB_S,
        ),
        Row("raw hashlib.sha256, same bytes (MB/s)", f"{sha_rate:.0f}"),
        Row("cache key / raw sha256 throughput", f"{key_rate / sha_rate:.2f}"),
        Row("cache key extra peak memory (MB)", f"{peak / MB:.2f}"),
    ]


def bench_import() -> list[Row]:
    """Scenario 4: ``import flowyml`` in fresh interpreters, minus a bare interpreter start.

    Runs alternate so that a slow moment of the machine hits both sides alike.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}

    def start(code: str) -> float:
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO_ROOT, env=env)
        return time.perf_counter() - started

    start("import flowyml")  # warm the OS file cache and write .pyc files
    bare, full = [], []
    for _ in range(5):
        bare.append(start("pass"))
        full.append(start("import flowyml"))
    cost = statistics.median(full) - statistics.median(bare)
    return [
        Row("bare interpreter start (s)", f"{statistics.median(bare):.3f}"),
        Row(
            "import flowyml (s)", f"{cost:.3f}", f"<= {TARGET_IMPORT_S:g}", cost <= TARGET_IMPORT_S
        ),
    ]


def main() -> int:
    """Run every scenario; an error in one is reported as a row, never as a failing exit."""
    started = time.perf_counter()
    rows: list[Row] = []
    with private_dirs():
        reference = reference_loop_seconds()
        # Forking scenarios run before the 100 MB array exists: fork cost grows with the
        # parent's mapped memory, and the array is not part of the timeout scenario.
        uncached = float("nan")
        try:
            uncached, uncached_rows = bench_uncached(reference)
            rows += uncached_rows
        except Exception as exc:
            rows.append(Row("uncached run", f"ERROR: {exc}", met=False))
        scenarios: list[Callable[[], list[Row]]] = [
            lambda: bench_timeout(reference, uncached),
            lambda: bench_cached(reference),
            bench_hashing,
            bench_import,
        ]
        rows += run_scenarios(scenarios)
        flowyml.clear_step_registry()
    print_table(rows)
    print(f"\ntotal benchmark time: {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
