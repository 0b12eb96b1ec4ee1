"""Per-step run overhead of a flowyml job on Dagster, against a hand-written Dagster asset job.

Run with ``.venv/bin/python bench/dagster_run.py``. Dagster itself costs milliseconds per step
(events, IO manager, storage); what flowyml adds on top (its op body, the shared step core, the
cache resource) must cost nothing next to that. The references are measured in this same
process: hand-written ``@dg.asset`` functions of the same graph in an asset job, run the same way,
once bare and once doing what a flowyml job does beyond that and a user wants (flowyml's IO
manager, whose location run config cannot move and which never leaves a torn value; the same two
metadata entries on each output). The target is judged against the second, like for like; the
ratio to the bare job shows what those cost. Only ratios are judged, so the table means the same
on a laptop and on a loaded CI runner; the script reports and always exits 0.

Both jobs run with ``execute_in_process`` on the ``in_process_executor``, each run on a fresh
``DagsterInstance.ephemeral()`` made outside the timed region (so no run sees a bigger event
log than another), with the console logger at ERROR on both sides (printing DEBUG events would
time the terminal). The graph is a chain of ``CHAIN_LENGTH`` trivial steps (step i adds 1 to
step i-1's output), so each step's Dagster work is all there is to measure. The target ratio
is the median of per-round ratios of interleaved runs; further rows count the Python calls of
one run of each job (cProfile), a number that, unlike time, does not move with machine load.

Rows for information: the same pipeline on the plain flowyml runner (``Pipeline.run``, no
Dagster at all), and the flowyml job with its cache on, second run, every step a hit.
"""

from __future__ import annotations

import cProfile
import gc
import pstats
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dagster as dg
from _harness import Row, median_seconds, print_table, private_dirs, run_scenarios

import flowyml
import flowyml_dagster
from flowyml_dagster.constants import CACHE_METADATA_KEY, DURATION_METADATA_KEY
from flowyml_dagster.storage import instance_storage_io_manager

CHAIN_LENGTH = 30
PAIRS = 21  # interleaved rounds of the three jobs
CACHED_PAIRS = 11
TARGET_RATIO = 1.0
JOB_NAME = "bench_run"
QUIET: dict[str, Any] = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}
LAST_KEY = dg.AssetKey(f"v{CHAIN_LENGTH - 1}")


def _increment(x: int) -> int:
    """A step body so cheap that everything a run spends beyond it is the orchestrator's."""
    return x + 1


def _start() -> int:
    return 0


def make_pipeline(*, enable_cache: bool) -> flowyml.Pipeline:
    """The chain ``v0 -> ... -> v<N-1>`` as flowyml user code makes it; ``v0`` has no input."""
    flowyml.clear_step_registry()
    pipeline = flowyml.Pipeline(JOB_NAME, enable_cache=enable_cache)
    for i in range(CHAIN_LENGTH):
        made = flowyml.step(
            name=f"step_{i}",
            inputs=[f"v{i - 1}"] if i else [],
            outputs=[f"v{i}"],
            register=False,
        )(_increment if i else _start)
        pipeline.add_step(made)
    pipeline.build()
    return pipeline


def flowyml_job(pipeline: flowyml.Pipeline, *, cache_dir: Path | None) -> dg.JobDefinition:
    """The pipeline's job with the in-process executor; ``cache_dir=None`` turns the cache off."""
    defs = flowyml_dagster.build_definitions(
        [pipeline],
        executor=dg.in_process_executor,
        enable_cache=cache_dir is not None,
        cache_dir=str(cache_dir) if cache_dir is not None else None,
    )
    return defs.resolve_job_def(JOB_NAME)


def hand_written_job(*, like_flowyml: bool = False) -> dg.JobDefinition:
    """What a Dagster user writes for the same chain: same keys, deps, executor.

    ``like_flowyml`` also gives it what a flowyml job does beyond that and a user wants: the IO
    manager flowyml binds (run config cannot move it; a value is written beside its place and
    renamed over it, never torn) and the same output metadata (``flowyml/cache``,
    ``flowyml/duration_seconds``), so the ratio against it is like for like.
    """
    assets = []
    for i in range(CHAIN_LENGTH):
        ins = {"x": dg.AssetIn(key=dg.AssetKey(f"v{i - 1}"))} if i else {}
        if like_flowyml:
            body: Callable[..., Any] = _increment_as_flowyml if i else _start_as_flowyml
        else:
            body = _increment if i else _start
        assets.append(dg.asset(key=dg.AssetKey(f"v{i}"), ins=ins)(body))
    job = dg.define_asset_job(
        JOB_NAME, selection=dg.AssetSelection.assets(*(a.key for a in assets))
    )
    resources = {"io_manager": instance_storage_io_manager()} if like_flowyml else {}
    defs = dg.Definitions(
        assets=assets, jobs=[job], executor=dg.in_process_executor, resources=resources
    )
    return defs.resolve_job_def(JOB_NAME)


def _flowyml_output(body: Callable[..., int], *args: int) -> dg.Output[int]:
    """``body``'s value with the metadata a flowyml step's output carries."""
    started = time.perf_counter()
    value = body(*args)
    duration = round(time.perf_counter() - started, 6)
    return dg.Output(value, metadata={CACHE_METADATA_KEY: "off", DURATION_METADATA_KEY: duration})


def _start_as_flowyml() -> dg.Output[int]:
    return _flowyml_output(_start)


def _increment_as_flowyml(x: int) -> dg.Output[int]:
    return _flowyml_output(_increment, x)


def timed_run(job: dg.JobDefinition, *, expect_cache: str | None = None) -> float:
    """Seconds of one ``execute_in_process`` on a fresh ephemeral instance, result checked.

    A failed or short-circuited run would look fast, so the run must succeed with the chain's
    real value; ``expect_cache`` (``"hit"``/``"miss"``/``"off"``) checks every step's record.
    """
    instance = dg.DagsterInstance.ephemeral()
    gc.collect()
    started = time.perf_counter()
    result = job.execute_in_process(instance=instance, run_config=QUIET)
    seconds = time.perf_counter() - started
    if not result.success:
        raise RuntimeError(f"job {job.name} failed")
    if result.asset_value(LAST_KEY) != CHAIN_LENGTH - 1:
        raise RuntimeError(f"wrong chain output {result.asset_value(LAST_KEY)!r}")
    if expect_cache is not None:
        events = result.get_asset_materialization_events()
        states = [e.materialization.metadata[CACHE_METADATA_KEY].value for e in events]
        if len(states) != CHAIN_LENGTH or set(states) != {expect_cache}:
            raise RuntimeError(f"expected every step cache={expect_cache}, got {states}")
    instance.dispose()
    return seconds


def bench_uncached() -> tuple[float, list[Row]]:
    """The target: the flowyml job against the hand-written one that does the same work, and
    for information against the bare hand-written one; interleaved, rotating who goes first,
    after a warm-up.

    The ratio judged is the median of per-pair ratios: the runs of a round are adjacent in time,
    so a slow phase of a shared machine hits them alike instead of skewing one median.
    """
    sides = {
        "flowyml": flowyml_job(make_pipeline(enable_cache=False), cache_dir=None),
        "like": hand_written_job(like_flowyml=True),
        "bare": hand_written_job(),
    }
    expect = {"flowyml": "off", "like": "off", "bare": None}
    seconds: dict[str, list[float]] = {name: [] for name in sides}
    for name, job in sides.items():
        for _ in range(2):
            timed_run(job, expect_cache=expect[name])
    order = list(sides)
    for i in range(PAIRS):
        for name in order[i % 3 :] + order[: i % 3]:
            seconds[name].append(timed_run(sides[name], expect_cache=expect[name]))
    n = CHAIN_LENGTH
    medians = {name: statistics.median(values) for name, values in seconds.items()}

    def ratio(a: str, b: str) -> float:
        return statistics.median(x / y for x, y in zip(seconds[a], seconds[b], strict=True))

    def extra_ms(a: str, b: str) -> float:
        return (
            statistics.median(x - y for x, y in zip(seconds[a], seconds[b], strict=True)) / n * 1e3
        )

    like, bare = ratio("flowyml", "like"), ratio("flowyml", "bare")
    calls = {name: call_count(job) for name, job in sides.items()}
    return medians["flowyml"], [
        Row(f"hand-written asset job, {n} steps (ms, n={PAIRS})", f"{medians['bare'] * 1e3:.1f}"),
        Row(
            f"hand-written, flowyml's IO manager and output metadata (ms, n={PAIRS})",
            f"{medians['like'] * 1e3:.1f}",
        ),
        Row(
            f"flowyml job, {n} steps, cache off (ms, n={PAIRS})", f"{medians['flowyml'] * 1e3:.1f}"
        ),
        Row(
            "flowyml job / hand-written doing the same (median of rounds)",
            f"{like:.3f}x",
            f"<= {TARGET_RATIO:g}x",
            like <= TARGET_RATIO,
        ),
        Row("flowyml job / bare hand-written job (median of rounds)", f"{bare:.3f}x"),
        Row("hand-written Dagster, per step (ms)", f"{medians['bare'] / n * 1e3:.2f}"),
        Row(
            "flowyml extra per step over hand-written doing the same (ms)",
            f"{extra_ms('flowyml', 'like'):.3f}",
        ),
        Row(
            "flowyml extra per step over bare hand-written (ms)",
            f"{extra_ms('flowyml', 'bare'):.3f}",
        ),
        Row(
            "Python calls per run, flowyml / hand-written doing the same",
            f"{calls['flowyml'] / calls['like']:.3f}x",
        ),
        Row(
            "Python calls per run, flowyml / bare hand-written",
            f"{calls['flowyml'] / calls['bare']:.3f}x",
        ),
    ]


def call_count(job: dg.JobDefinition) -> int:
    """Python function calls of one run, counted by cProfile.

    Unlike time, the count does not move with the load of the machine, so it backs the timed
    ratio with a number that is the same on every run of this script.
    """
    instance = dg.DagsterInstance.ephemeral()
    profile = cProfile.Profile()
    profile.enable()
    job.execute_in_process(instance=instance, run_config=QUIET)
    profile.disable()
    instance.dispose()
    return pstats.Stats(profile).total_calls  # type: ignore[attr-defined, no-any-return]


def bench_plain(flowyml_run: float) -> list[Row]:
    """Information: the same pipeline without Dagster, and what Dagster costs relative to it."""
    pipeline = make_pipeline(enable_cache=False)

    def run() -> None:
        result = pipeline.run()
        if result.outputs.get(f"v{CHAIN_LENGTH - 1}") != CHAIN_LENGTH - 1:
            raise RuntimeError("plain run gave the wrong chain output")

    plain = median_seconds(run, repeat=15, number=20, warmup=3)
    return [
        Row(f"plain Pipeline.run, same {CHAIN_LENGTH} steps (ms)", f"{plain * 1e3:.3f}"),
        Row("plain runner, per step (ms)", f"{plain / CHAIN_LENGTH * 1e3:.4f}"),
        Row("flowyml job on Dagster / plain runner", f"{flowyml_run / plain:.0f}x"),
    ]


def bench_cached(cache_dir: Path) -> list[Row]:
    """Information: a first run fills the cache, then runs where every step is a hit.

    A hit skips the step function but not Dagster (events, IO manager), so per step it should
    cost about what an uncached trivial step costs. The hit runs alternate with uncached runs
    of the same pipeline, and the ratio is the median of those pairs, as for the target.
    """
    cached = flowyml_job(make_pipeline(enable_cache=True), cache_dir=cache_dir)
    uncached = flowyml_job(make_pipeline(enable_cache=False), cache_dir=None)
    first = timed_run(cached, expect_cache="miss")
    timed_run(cached, expect_cache="hit")  # warm-up of the hit path
    hits, misses = [], []
    for i in range(CACHED_PAIRS):
        if i % 2:
            misses.append(timed_run(uncached, expect_cache="off"))
            hits.append(timed_run(cached, expect_cache="hit"))
        else:
            hits.append(timed_run(cached, expect_cache="hit"))
            misses.append(timed_run(uncached, expect_cache="off"))
    per_step = statistics.median(hits) / CHAIN_LENGTH * 1e3
    ratio = statistics.median(h / m for h, m in zip(hits, misses, strict=True))
    return [
        Row(
            "cached flowyml job, first run (miss), per step (ms)",
            f"{first / CHAIN_LENGTH * 1e3:.2f}",
        ),
        Row(f"cached flowyml job, all hits, per step (ms, n={CACHED_PAIRS})", f"{per_step:.2f}"),
        Row("all-hits run / cache-off run (median of pairs)", f"{ratio:.3f}x"),
    ]


def main() -> int:
    """Run every scenario; an error in one is reported as a row, never as a failing exit."""
    started = time.perf_counter()
    rows: list[Row] = []
    with private_dirs() as cache_dir:
        flowyml_run = float("nan")
        try:
            flowyml_run, uncached_rows = bench_uncached()
            rows += uncached_rows
        except Exception as exc:
            rows.append(Row("uncached runs", f"ERROR: {type(exc).__name__}: {exc}", met=False))
        scenarios: list[Callable[[], list[Row]]] = [
            lambda: bench_plain(flowyml_run),
            lambda: bench_cached(cache_dir),
        ]
        rows += run_scenarios(scenarios)
        flowyml.clear_step_registry()
    print(
        f"graph: a chain of {CHAIN_LENGTH} trivial steps; execute_in_process, in_process_executor, "
        "fresh DagsterInstance.ephemeral() per run, console log level ERROR\n"
    )
    print_table(rows)
    print(f"\ntotal benchmark time: {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
