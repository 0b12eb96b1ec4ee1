"""Cost of turning a flowyml pipeline into Dagster definitions, against hand-written Dagster.

Run with ``.venv/bin/python bench/dagster_build.py``. A Dagster code location pays this on every
load (``dagster dev``, each run's worker process), so it must stay close to what the same graph
costs written directly in Dagster.
The reference is measured in this same process: hand-written ``@dg.asset`` functions with the
same asset keys and dependencies, an asset job with the same selection, resolved the same way.
Only the ratio is judged, so the table means the same on a laptop and on a loaded CI runner; the
script reports and always exits 0.

What is timed, on each side:

- flowyml: ``build_definitions([pipeline])`` then ``defs.resolve_job_def(job)`` (Dagster builds
  jobs lazily, so an unresolved ``Definitions`` would hide most of the cost). The steps and the
  ``Pipeline`` exist beforehand, as they do after importing a user's module; their creation
  (``@step``) is timed separately and reported for information.
- hand-written: ``@dg.asset`` on each function, ``define_asset_job``, ``Definitions``, then
  ``resolve_job_def``; the plain functions exist beforehand, like the flowyml step functions.

Graph shape: Dagster itself fails on deep graphs (a recursive DFS raises ``RecursionError`` at
~1500-2000 levels of depth, and its toposort is O(N^2) on a chain), so the target is judged on a
*wide* graph that Dagster handles at 5000 steps: ``WIDTH`` independent chains of depth
``N / WIDTH``. Pure chains are tried too, for information, to show what Dagster does with them.
Whether Dagster's DFS overflows on a chain depends on the order it visits the ops, which follows
the iteration order of a set of asset keys, i.e. ``PYTHONHASHSEED``: the same 2000-step chain
fails in some processes and resolves in others, on either side.

Each timing is the median of several repetitions (interleaved, alternating which side goes
first); the 5000-step size repeats only while its time budget lasts, and says how many it got.
"""

from __future__ import annotations

import gc
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import dagster as dg
from _harness import Row, print_table, private_dirs, run_scenarios

import flowyml
import flowyml_dagster

WIDTH = 50
SIZES = (100, 1000, 5000)
MAX_REPEATS = 7
# Repetitions of one size stop once the next one would overrun this: a 5000-step build takes
# tens of seconds and the whole script must stay within a few minutes on two cores. (While the
# flowyml side of 5000 steps takes ~45 s, that size gets one repetition; its ratio is then far
# from the target either way.)
SIZE_BUDGET_S = 75.0
TARGET_RATIO = 1.5
CHAIN_WORKS = 1000  # deep, but under Dagster's recursion limit
CHAIN_FAILS = 2000  # over it
JOB_NAME = "bench_graph"


@dataclass(frozen=True)
class Node:
    """One step of the benchmark graph: its name, its output, and the output it reads (if any)."""

    name: str
    output: str
    upstream: str | None


def wide_graph(size: int, width: int = WIDTH) -> list[Node]:
    """``width`` independent chains of depth ``size // width``; outputs ``c<chain>/v<depth>``."""
    depth = size // width
    return [
        Node(f"s_{c}_{d}", f"c{c}/v{d}", f"c{c}/v{d - 1}" if d else None)
        for c in range(width)
        for d in range(depth)
    ]


def chain_graph(size: int) -> list[Node]:
    """One chain of ``size`` steps: the deepest graph of that size."""
    return wide_graph(size, width=1)


def fresh_function(has_input: bool) -> Callable[..., int]:
    """A new function object per step, as a real module has one per step (nothing is shared)."""
    if has_input:

        def increment(x: int) -> int:
            return x + 1

        return increment

    def start() -> int:
        return 0

    return start


def make_pipeline(nodes: list[Node]) -> flowyml.Pipeline:
    """The flowyml pipeline of ``nodes``, made as user code makes it (``@step`` + ``add_step``)."""
    flowyml.clear_step_registry()
    pipeline = flowyml.Pipeline(JOB_NAME)
    for node in nodes:
        made = flowyml.step(
            name=node.name,
            inputs=[node.upstream] if node.upstream else [],
            outputs=[node.output],
            register=False,
        )(fresh_function(node.upstream is not None))
        pipeline.add_step(made)
    return pipeline


def build_flowyml(pipeline: flowyml.Pipeline) -> dg.JobDefinition:
    """The timed flowyml side: Definitions with the library defaults, then the job resolved."""
    defs = flowyml_dagster.build_definitions([pipeline])
    return defs.resolve_job_def(JOB_NAME)


def build_hand_written(nodes: list[Node], funcs: list[Callable[..., int]]) -> dg.JobDefinition:
    """The timed reference: what a Dagster user writes for the same graph, resolved the same way."""
    assets = []
    for node, func in zip(nodes, funcs, strict=True):
        ins = {"x": dg.AssetIn(key=_key(node.upstream))} if node.upstream else {}
        assets.append(dg.asset(key=_key(node.output), ins=ins)(func))
    job = dg.define_asset_job(
        JOB_NAME, selection=dg.AssetSelection.assets(*(_key(n.output) for n in nodes))
    )
    defs = dg.Definitions(assets=assets, jobs=[job])
    return defs.resolve_job_def(JOB_NAME)


def _key(output: str) -> dg.AssetKey:
    return dg.AssetKey(output.split("/"))


def asset_graph_of(job: dg.JobDefinition) -> dict[dg.AssetKey, set[dg.AssetKey]]:
    """Asset key → parent keys of a resolved job: both sides must build the very same graph."""
    layer = job.asset_layer
    return {k: set(layer.asset_graph.get(k).parent_keys) for k in layer.executable_asset_keys}


@dataclass
class Samples:
    """Seconds per repetition, on each side."""

    flowyml: list[float]
    hand: list[float]
    decorate: list[float]

    def add(self, flowyml_s: float, hand_s: float, decorate_s: float) -> None:
        self.flowyml.append(flowyml_s)
        self.hand.append(hand_s)
        self.decorate.append(decorate_s)


def _timed(func: Callable[[], Any]) -> tuple[float, Any]:
    gc.collect()
    started = time.perf_counter()
    result = func()
    return time.perf_counter() - started, result


def sample_pair(nodes: list[Node], *, flowyml_first: bool, check: bool) -> tuple[float, ...]:
    """One repetition of both sides on fresh objects; ``check`` compares the two asset graphs.

    Fresh steps and functions each time: the build reads each step's source for its code
    version, which a step caches, and a rerun on warm steps would not be a code location load.
    """
    decorate_s, pipeline = _timed(lambda: make_pipeline(nodes))
    funcs = [fresh_function(n.upstream is not None) for n in nodes]
    times: dict[str, float] = {}
    jobs: dict[str, Any] = {}
    order = ("flowyml", "hand") if flowyml_first else ("hand", "flowyml")
    for side in order:
        if side == "flowyml":
            times[side], jobs[side] = _timed(lambda: build_flowyml(pipeline))
        else:
            times[side], jobs[side] = _timed(lambda: build_hand_written(nodes, funcs))
    if check:
        flowyml_graph, hand_graph = asset_graph_of(jobs["flowyml"]), asset_graph_of(jobs["hand"])
        if flowyml_graph != hand_graph or len(hand_graph) != len(nodes):
            raise RuntimeError("flowyml and hand-written jobs do not have the same asset graph")
    return times["flowyml"], times["hand"], decorate_s


def bench_size(size: int) -> list[Row]:
    """Interleaved repetitions at one size, within ``SIZE_BUDGET_S``; rows with the ratio."""
    nodes = wide_graph(size)
    samples = Samples([], [], [])
    spent = 0.0
    while len(samples.flowyml) < MAX_REPEATS:
        started = time.perf_counter()
        samples.add(
            *sample_pair(
                nodes, flowyml_first=len(samples.flowyml) % 2 == 0, check=not samples.flowyml
            )
        )
        last = time.perf_counter() - started
        spent += last
        if spent + last > SIZE_BUDGET_S:  # the next repetition would overrun the budget
            break
    flowyml_s = statistics.median(samples.flowyml)
    hand_s = statistics.median(samples.hand)
    # Median of per-pair ratios: the two builds of a pair are adjacent in time, so a slow phase
    # of a shared machine hits both alike instead of skewing one side's median.
    ratio = statistics.median(f / h for f, h in zip(samples.flowyml, samples.hand, strict=True))
    with_steps = statistics.median(
        (f + d) / h for f, h, d in zip(samples.flowyml, samples.hand, samples.decorate, strict=True)
    )
    runs = len(samples.flowyml)
    return [
        Row(f"{size} steps: flowyml build+resolve (s, n={runs})", f"{flowyml_s:.3f}"),
        Row(f"{size} steps: hand-written build+resolve (s, n={runs})", f"{hand_s:.3f}"),
        Row(
            f"{size} steps: flowyml / hand-written (median of pairs)",
            f"{ratio:.2f}x",
            f"<= {TARGET_RATIO:g}x",
            ratio <= TARGET_RATIO,
        ),
        Row(
            f"{size} steps: with @step creation / hand-written",
            f"{with_steps:.2f}x",
        ),
    ]


def _root_cause(exc: BaseException) -> BaseException:
    """The innermost cause: Dagster wraps the ``RecursionError`` in a definition error."""
    while exc.__cause__ is not None or exc.__context__ is not None:
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    return exc


def _attempt(label: str, build: Callable[[], Any]) -> tuple[Row, float | None]:
    """Time one build; a failure is reported with how long Dagster took to fail, never raised."""
    gc.collect()
    started = time.perf_counter()
    try:
        build()
    except Exception as exc:
        failed_after = time.perf_counter() - started
        return Row(
            f"{label} (fails after {failed_after:.1f} s)", type(_root_cause(exc)).__name__
        ), None
    seconds = time.perf_counter() - started
    return Row(f"{label} (s, n=1)", f"{seconds:.3f}"), seconds


def bench_chains() -> list[Row]:
    """Pure chains, once each: a chain Dagster can resolve, and one past its recursion limit."""
    rows: list[Row] = []
    nodes = chain_graph(CHAIN_WORKS)
    pipeline = make_pipeline(nodes)
    funcs = [fresh_function(n.upstream is not None) for n in nodes]
    flowyml_row, flowyml_s = _attempt(
        f"chain {CHAIN_WORKS}: flowyml build+resolve", lambda: build_flowyml(pipeline)
    )
    hand_row, hand_s = _attempt(
        f"chain {CHAIN_WORKS}: hand-written build+resolve",
        lambda: build_hand_written(nodes, funcs),
    )
    rows += [flowyml_row, hand_row]
    if flowyml_s is not None and hand_s is not None:
        rows.append(
            Row(f"chain {CHAIN_WORKS}: flowyml / hand-written", f"{flowyml_s / hand_s:.2f}x")
        )
    nodes = chain_graph(CHAIN_FAILS)
    funcs = [fresh_function(n.upstream is not None) for n in nodes]
    rows.append(
        _attempt(
            f"chain {CHAIN_FAILS}: hand-written build+resolve",
            lambda: build_hand_written(nodes, funcs),
        )[0]
    )
    pipeline = make_pipeline(nodes)
    rows.append(
        _attempt(f"chain {CHAIN_FAILS}: flowyml build+resolve", lambda: build_flowyml(pipeline))[0]
    )
    return rows


def main() -> int:
    """Every size, then the chains; an error in one scenario is a row, never a failing exit."""
    started = time.perf_counter()
    rows: list[Row] = []
    with private_dirs():
        sample_pair(wide_graph(100), flowyml_first=True, check=False)  # warm-up: first calls
        scenarios: list[Callable[[], list[Row]]] = [
            *(lambda size=size: bench_size(size) for size in SIZES),
            bench_chains,
        ]
        rows += run_scenarios(scenarios)
        flowyml.clear_step_registry()
    print(
        f"graph: wide, {WIDTH} independent chains of depth N/{WIDTH} "
        f"({', '.join(f'{n}: depth {n // WIDTH}' for n in SIZES)}); "
        "one trivial function and one output asset per step\n"
        "chain rows: one chain of N steps, for information; past ~1000 steps Dagster's recursive "
        "DFS may overflow,\n  depending on the hash seed (ops are visited in asset-key set order)\n"
    )
    print_table(rows)
    print(f"\ntotal benchmark time: {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
