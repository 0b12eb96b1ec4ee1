"""Big values between two steps on Dagster's multiprocess executor, against hand-written assets.

Run with ``.venv/bin/python bench/dagster_big_values.py``. ML pipelines hand arrays and frames of
hundreds of megabytes from step to step; on Dagster each value leaves its step's process through
the IO manager (one pickle to disk) and is loaded by the next. A flowyml job must not add a
second serialisation of its own. The reference is the same two functions as hand-written
``@dg.asset``s, run in this same process with the same executor (``multiprocess_executor``, its
default settings) and Dagster's default filesystem IO manager under the instance's storage.

Scenarios: a 300 MB float64 array and a 300 MB pandas frame (float and int columns), each with
the flowyml cache off and on (a fresh cache directory per run, so every run writes its entry:
the cost a user pays once per change). Each ratio is the median of per-pair ratios of
interleaved runs. A last row counts how many times one output is pickled in a run (a value whose
``__reduce__`` notes each call), with the cache off and on. Information and targets only; the
script always exits 0.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dagster as dg
import numpy as np
import pandas as pd
from _counted import Counted, count_file
from _harness import Row, print_table, private_dirs, run_scenarios

import flowyml
import flowyml_dagster

VALUE_BYTES = 300_000_000
PAIRS = 5
TARGET_RATIO = 1.1
KIND_ENV = "BENCH_VALUE_KIND"
CACHE_ENV = "BENCH_CACHE_DIR"  # unset: cache off
QUIET: dict[str, Any] = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}


def make_value() -> Any:
    """The value the first step returns: 300 MB, built the same way on both sides."""
    kind = os.environ[KIND_ENV]
    if kind == "array":
        return np.arange(VALUE_BYTES // 8, dtype=np.float64)
    if kind == "frame":
        rows = VALUE_BYTES // 16
        return pd.DataFrame({"x": np.arange(rows, dtype=np.float64), "n": np.arange(rows)})
    return Counted(np.arange(1000))


def last_of(value: Any) -> float:
    """What the second step computes: something that reads the value."""
    if isinstance(value, pd.DataFrame):
        return float(value["x"].iloc[-1])
    if isinstance(value, Counted):
        return float(value.payload[-1])
    return float(value[-1])


def produce() -> Any:
    return make_value()


def consume(value: Any) -> float:
    return last_of(value)


def flowyml_job() -> dg.JobDefinition:
    """Two flowyml steps, cache per ``$BENCH_CACHE_DIR``, the multiprocess executor."""
    flowyml.clear_step_registry()
    first = flowyml.step(outputs=["value"], register=False)(produce)
    second = flowyml.step(inputs=["value"], outputs=["last"], register=False)(consume)
    pipeline = flowyml.Pipeline("big_values", steps=[first, second])
    cache_dir = os.environ.get(CACHE_ENV)
    defs = flowyml_dagster.build_definitions(
        [pipeline],
        executor=dg.multiprocess_executor,
        enable_cache=cache_dir is not None,
        cache_dir=cache_dir,
    )
    return defs.resolve_job_def("big_values")


def hand_written_job() -> dg.JobDefinition:
    """What a Dagster user writes for the same two steps."""

    @dg.asset(key="value")
    def value() -> Any:
        return make_value()

    @dg.asset(key="last", ins={"value": dg.AssetIn(key="value")})
    def last(value: Any) -> float:
        return last_of(value)

    job = dg.define_asset_job("big_values", selection=dg.AssetSelection.assets("value", "last"))
    defs = dg.Definitions(assets=[value, last], jobs=[job], executor=dg.multiprocess_executor)
    return defs.resolve_job_def("big_values")


def timed_run(job_fn: Callable[[], dg.JobDefinition], *, cache: bool) -> float:
    """Seconds of one multiprocess run on a fresh instance (and a fresh cache when ``cache``)."""
    with tempfile.TemporaryDirectory(prefix="big-values-") as tmp:
        if cache:
            os.environ[CACHE_ENV] = str(Path(tmp, "cache"))
        else:
            os.environ.pop(CACHE_ENV, None)
        with dg.instance_for_test(temp_dir=tmp) as instance:
            started = time.perf_counter()
            result = dg.execute_job(dg.reconstructable(job_fn), instance=instance, run_config=QUIET)
            seconds = time.perf_counter() - started
            if not result.success:
                raise RuntimeError(f"{job_fn.__name__} failed")
    return seconds


def pair_ratio(kind: str, *, cache: bool) -> list[Row]:
    os.environ[KIND_ENV] = kind
    timed_run(flowyml_job, cache=cache)
    timed_run(hand_written_job, cache=False)
    ours, theirs = [], []
    for i in range(PAIRS):
        if i % 2:
            theirs.append(timed_run(hand_written_job, cache=False))
            ours.append(timed_run(flowyml_job, cache=cache))
        else:
            ours.append(timed_run(flowyml_job, cache=cache))
            theirs.append(timed_run(hand_written_job, cache=False))
    ratio = statistics.median(o / t for o, t in zip(ours, theirs, strict=True))
    label = f"300 MB {kind}, cache {'on' if cache else 'off'}"
    return [
        Row(f"{label}: hand-written (s, n={PAIRS})", f"{statistics.median(theirs):.2f}"),
        Row(f"{label}: flowyml (s, n={PAIRS})", f"{statistics.median(ours):.2f}"),
        Row(
            f"{label}: flowyml / hand-written",
            f"{ratio:.3f}x",
            f"<= {TARGET_RATIO:g}x",
            ratio <= TARGET_RATIO,
        ),
    ]


def serialisations() -> list[Row]:
    """How many times the first step's output is pickled in one run."""
    os.environ[KIND_ENV] = "counted"
    rows = []
    for cache in (False, True):
        path = count_file()
        path.write_text("")
        timed_run(flowyml_job, cache=cache)
        ours = len(path.read_text().splitlines())
        path.write_text("")
        timed_run(hand_written_job, cache=False)
        theirs = len(path.read_text().splitlines())
        rows.append(
            Row(
                f"pickles of one output, cache {'on' if cache else 'off'} (hand-written: {theirs})",
                str(ours),
                "<= 1",
                ours <= 1,
            )
        )
    return rows


def main() -> None:
    started = time.perf_counter()
    with private_dirs():
        rows = run_scenarios(
            [
                lambda: pair_ratio("array", cache=False),
                lambda: pair_ratio("array", cache=True),
                lambda: pair_ratio("frame", cache=False),
                lambda: pair_ratio("frame", cache=True),
                serialisations,
            ]
        )
    print_table(rows)
    print(f"\ntotal benchmark time: {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    sys.exit(main())
