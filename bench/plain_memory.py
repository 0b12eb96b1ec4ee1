"""Peak memory of the plain runner passing a large numpy array, against plain Python.

Run with ``.venv/bin/python bench/plain_memory.py``. Why: a step's outputs are pickled for the
cache, and a pickle built as one ``bytes`` object costs a second copy of every output while it
is written. This script shows what a run costs beyond the array itself, as a ratio to the
array's size, so the figures mean the same thing on any machine.

Each scenario runs in a fresh interpreter (peak memory is a high-water mark, so scenarios must
not share a process). It builds the pipeline, runs it once on a tiny array (imports, code
fingerprints and cache folders are paid there), reads ``getrusage(RUSAGE_SELF).ru_maxrss`` as
the baseline, then runs on an array of ``ARRAY_BYTES`` and reads it again: the peak growth of
resident memory. ``tracemalloc`` (which sees numpy's buffers and pickle's bytes) gives the same
peak counted in Python-level allocations, without the kernel's rounding. Figures are ratios of
those growths to the array's size.

Scenarios:

1. two steps, ``make`` (returns the array) -> ``total`` (its sum): cache off (``total`` gets a
   private copy, README "One answer on every runner"), cache on (first run: a miss and a write;
   ``total`` loads its copy from the entry after the runner let go of ``make``'s), cache on again
   (second run, in a new process: two hits);
2. one step, ``make`` only: what the cache's write and read cost by themselves;
3. the two steps with ``timeout=`` (each attempt in a forked child; the child writes the cache and
   sends the outputs back through a pipe): the parent, and the largest child;
4. references: the two functions called by hand, ``pickle.dump`` of the array into a file, and
   ``pickle.dumps`` then a write (how an entry was written before it was streamed).

The target, at most ``TARGET_RATIO`` times the array with the cache on, is checked on scenario
1 (the two-step run) and on scenario 2 (the cache's own cost). The script only reports and
always exits 0.
"""

from __future__ import annotations

import gc
import json
import pickle
import resource
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _harness import Row, print_table, private_dirs, run_scenarios

ARRAY_BYTES = 300_000_000  # 300 MB (decimal) of float64
WARMUP_BYTES = 80_000
TARGET_RATIO = 1.5
MB = 1_000_000
SCRIPT = Path(__file__).resolve()


# --- the measured process ------------------------------------------------------------------------


def make(n: int) -> Any:
    """The producer: a fresh array of ``n`` float64, every page written (resident)."""
    import numpy as np

    return np.ones(n)


def total(a: Any) -> float:
    """The consumer: reads every page, keeps nothing."""
    return float(a.sum())


def build(two_steps: bool, cache: bool, timeout: float | None) -> Any:
    import flowyml

    flowyml.clear_step_registry()
    pipeline = flowyml.Pipeline("plain_memory", enable_cache=cache)
    pipeline.add_step(
        flowyml.step(name="make", inputs=["n"], outputs=["a"], timeout=timeout, register=False)(
            make
        )
    )
    if two_steps:
        pipeline.add_step(
            flowyml.step(
                name="total", inputs=["a"], outputs=["t"], timeout=timeout, register=False
            )(total)
        )
    pipeline.build()
    return pipeline


def run_checked(pipeline: Any, n: int, *, expect_cached: bool | None) -> None:
    result = pipeline.run(inputs={"n": n})
    failed = [r for r in result.step_results.values() if not r.success]
    if failed:
        raise RuntimeError(f"step {failed[0].step_name} did not succeed: {failed[0].error}")
    if expect_cached is not None:
        cached = {r.cached for r in result.step_results.values()}
        if cached != {expect_cached}:
            raise RuntimeError(f"expected cached={expect_cached}, got {cached}")


def reference(kind: str, n: int, spare: Path) -> None:
    a = make(n)
    if kind == "by-hand":
        total(a)
    elif kind == "pickle-dump":
        with open(spare, "wb") as file:
            pickle.dump(a, file, protocol=5)
    elif kind == "pickle-dumps":
        payload = pickle.dumps(a, protocol=5)
        with open(spare, "wb") as file:
            file.write(payload)
        del payload
    else:
        raise ValueError(kind)


def measured(spec: dict[str, Any]) -> dict[str, float]:
    """One scenario in this process: growth of peak RSS and of traced memory, in bytes."""
    n = ARRAY_BYTES // 8
    spare = Path(spec["spare"])
    work: Callable[[int], None]
    if spec["kind"] == "pipeline":
        pipeline = build(spec["two_steps"], spec["cache"], spec["timeout"])
        if spec.get("seed"):  # the first run of a hit scenario, in its own process
            run_checked(pipeline, n, expect_cached=False)
            return {}
        expect = None if not spec["cache"] else spec["expect_cached"]
        run_checked(pipeline, WARMUP_BYTES // 8, expect_cached=None)

        def work(size: int) -> None:
            run_checked(pipeline, size, expect_cached=expect)
    else:

        def work(size: int) -> None:
            reference(spec["kind"], size, spare)

        work(WARMUP_BYTES // 8)
    gc.collect()
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    base_children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    tracemalloc.start()
    work(n)
    _, traced = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    return {
        "rss": peak - base,
        "traced": traced,
        # A forked child starts with the parent's resident pages: its growth is over the base.
        "children_rss": max(0, children - max(base, base_children)),
    }


# --- the report ----------------------------------------------------------------------------------


def in_fresh_process(spec: dict[str, Any]) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--measure", json.dumps(spec)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"scenario {spec} exited {done.returncode}: {last}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def pipeline_run(
    two_steps: bool, cache: bool, *, hit: bool = False, timeout: float | None = None
) -> dict[str, float]:
    """One pipeline scenario in its own cache; a hit is measured in a process after the seed."""
    with private_dirs() as spare:
        spec = {
            "kind": "pipeline",
            "two_steps": two_steps,
            "cache": cache,
            "timeout": timeout,
            "expect_cached": hit,
            "spare": str(spare),
        }
        if hit:
            in_fresh_process({**spec, "seed": True})
        return in_fresh_process(spec)


def reference_run(kind: str) -> dict[str, float]:
    with private_dirs() as spare:
        spare.mkdir()
        return in_fresh_process({"kind": kind, "spare": str(spare / "array.pkl")})


def ratio_rows(label: str, figures: dict[str, float], *, target: bool = False) -> list[Row]:
    rss = figures["rss"] / ARRAY_BYTES
    traced = figures["traced"] / ARRAY_BYTES
    rows = [
        Row(
            f"{label}: peak RSS / array",
            f"{rss:.2f}x",
            f"<= {TARGET_RATIO:g}x" if target else "info",
            rss <= TARGET_RATIO if target else None,
        ),
        Row(f"{label}: traced peak / array", f"{traced:.2f}x"),
    ]
    return rows


def bench_references() -> list[Row]:
    rows: list[Row] = []
    for kind, label in [
        ("by-hand", "by hand, make then total"),
        ("pickle-dump", "by hand, make then pickle.dump to a file"),
        ("pickle-dumps", "by hand, make then pickle.dumps + write"),
    ]:
        rows += ratio_rows(label, reference_run(kind))
    return rows


def cache_rows(steps: str, two_steps: bool) -> list[Row]:
    """Cache off, first run, second run; and what the cache adds over cache off."""
    off = pipeline_run(two_steps, False)
    first = pipeline_run(two_steps, True)
    second = pipeline_run(two_steps, True, hit=True)
    added = (first["rss"] - off["rss"]) / ARRAY_BYTES
    return [
        *ratio_rows(f"{steps}, cache off", off),
        *ratio_rows(f"{steps}, cache on, first run", first, target=True),
        *ratio_rows(f"{steps}, cache on, second run (hits)", second, target=True),
        Row(f"{steps}, first run's peak RSS minus cache off's / array", f"{added:+.2f}x"),
    ]


def bench_two_steps() -> list[Row]:
    return cache_rows("two steps", True)


def bench_one_step() -> list[Row]:
    return cache_rows("one step", False)


def bench_timeout() -> list[Row]:
    rows: list[Row] = []
    for cache, label in [(False, "cache off"), (True, "cache on, first run")]:
        figures = pipeline_run(True, cache, timeout=600)
        rows += [
            Row(
                f"timeout steps, {label}: parent peak RSS / array",
                f"{figures['rss'] / ARRAY_BYTES:.2f}x",
            ),
            Row(
                f"timeout steps, {label}: largest child's growth / array",
                f"{figures['children_rss'] / ARRAY_BYTES:.2f}x",
            ),
        ]
    return rows


def main() -> int:
    """Run every scenario; an error in one is reported as a row, never as a failing exit."""
    started = time.perf_counter()
    rows = run_scenarios([bench_references, bench_two_steps, bench_one_step, bench_timeout])
    print(f"array: {ARRAY_BYTES / MB:.0f} MB of float64; figures are growth over the baseline\n")
    print_table(rows)
    print(
        "\nWith the cache off the plain runner hands 'total' a private copy of 'a' (the caller "
        "keeps the run's\noutputs): two steps cost 2x. With the cache on it lets go of 'a' once "
        "its entry is written,\nand 'total' and the result each load their own copy from the "
        "entry the run holds open."
    )
    print(f"\ntotal benchmark time: {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--measure":
        print(json.dumps(measured(json.loads(sys.argv[2]))))
        sys.exit(0)
    sys.exit(main())
