"""Cost of turning a flowyml pipeline into Dagster definitions, against hand-written Dagster.

Run with ``.venv/bin/python bench/dagster_build.py``. A Dagster code location pays this on every
load (``dagster dev``, each run's worker process), so it must stay close to what the same graph
costs written directly in Dagster.
The reference is measured in this same process: hand-written ``@dg.asset`` functions of the
same graph that carry what our assets carry (compare like with like), in an asset job with the
same selection and default run config, resolved the same way.
Only the ratio is judged, so the table means the same on a laptop and on a loaded CI runner; the
script reports and always exits 0.

What is timed, on each side:

- flowyml: ``build_definitions([pipeline])`` then ``defs.resolve_job_def(job)`` (Dagster builds
  jobs lazily, so an unresolved ``Definitions`` would hide most of the cost). The steps and the
  ``Pipeline`` exist beforehand, as they do after importing a user's module; their creation
  (``@step``) is timed separately and reported for information.
- hand-written: ``@dg.asset`` on each function, ``define_asset_job``, ``Definitions``, then
  ``resolve_job_def``; the plain functions exist beforehand, like the flowyml step functions.

What each step and its reference asset carry. The bench's steps use the options that make our
assets carry something: a docstring, two tags (``team``, ``chain``), a context param
``step_by: int`` (given in the pipeline context), and ``retry=2`` on every ``RETRY_EVERY``-th step.
The hand-written asset of a step carries the same, written as a Dagster user writes it:

- key, ``ins`` (the upstream asset), ``group_name="shared"`` (our group of an unscoped step);
- ``description``: the docstring's text; ``kinds={"python"}``;
- asset ``tags`` and ``op_tags``: the step's two tags (both strict, so both are asset tags);
- ``code_version``: a 16-hex-digit literal (ours is the step's code fingerprint, worked out
  during the build: that work is ours to pay, a user's literal costs nothing);
- definition ``metadata``: the very entries our translator writes, with the same values and
  types: ``flowyml/step``, ``flowyml/cache_strategy``, ``flowyml/retry`` (a dict, on retried
  steps), ``dagster/code_references`` (a ``CodeReferencesMetadataValue`` to the function's file
  and line) and ``flowyml/produced_by`` (a JSON value), built in the timed region as a
  decorator's arguments are evaluated when its module is imported;
- ``retry_policy=dg.RetryPolicy(max_retries=2)`` on the steps that have ``retry=2``;
- ``config_schema={"step_by": dg.Field(int, is_required=False)}`` (ours: the same optional
  field, made through a ``dagster.Config`` model), read by the function from ``op_config``;
- the job's default run config: ``step_by`` for every op, as our job carries the context's.

What the reference leaves out, as a user of plain Dagster would not write it: our cache resource
(``required_resource_keys``), our IO manager and executor (one each per ``Definitions``, not per
step), and skippable outputs (our multi-asset's ``is_required=False`` outs). An information row
keeps the old reference, bare assets with only the keys and deps, to show what the carried
definitions cost Dagster itself.

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
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import dagster as dg
from _harness import Row, print_table, private_dirs, run_scenarios

import flowyml
import flowyml_dagster
from flowyml_dagster.constants import (
    CACHE_STRATEGY_METADATA_KEY,
    PRODUCED_BY_METADATA_KEY,
    RETRY_METADATA_KEY,
    STEP_METADATA_KEY,
)

WIDTH = 50
RETRY_EVERY = 10  # every tenth step has retry=2, so some ops carry a retry policy and some not
RETRIES = 2
STEP_TAGS = {"team": "bench"}  # plus "chain": the step's chain
CONTEXT = {"step_by": 1}
SIZES = (100, 1000, 5000)
MAX_REPEATS = 7
# Repetitions of one size stop once the next one would overrun this: a 5000-step build takes
# seconds and the whole script must stay within a few minutes on two cores.
SIZE_BUDGET_S = 75.0
TARGET_RATIO = 1.0
CHAIN_WORKS = 1000  # deep, but under Dagster's recursion limit
CHAIN_FAILS = 2000  # over it
JOB_NAME = "bench_graph"


@dataclass(frozen=True)
class Node:
    """One step of the benchmark graph: its name, output, the output it reads (if any), its
    chain (a tag) and whether it has ``retry=RETRIES``."""

    name: str
    output: str
    upstream: str | None
    chain: str
    retried: bool

    @property
    def tags(self) -> dict[str, str]:
        return {**STEP_TAGS, "chain": self.chain}


def wide_graph(size: int, width: int = WIDTH) -> list[Node]:
    """``width`` independent chains of depth ``size // width``; outputs ``c<chain>/v<depth>``."""
    depth = size // width
    return [
        Node(
            f"s_{c}_{d}",
            f"c{c}/v{d}",
            f"c{c}/v{d - 1}" if d else None,
            f"c{c}",
            (c * depth + d) % RETRY_EVERY == RETRY_EVERY - 1,
        )
        for c in range(width)
        for d in range(depth)
    ]


def chain_graph(size: int) -> list[Node]:
    """One chain of ``size`` steps: the deepest graph of that size."""
    return wide_graph(size, width=1)


def fresh_function(has_input: bool) -> Callable[..., int]:
    """A new step function per step, as a real module has one per step (nothing is shared).

    It has a docstring (the asset's description) and a context param (a run-config field)."""
    if has_input:

        def increment(x: int, step_by: int = 1) -> int:
            """The next value of a chain: the previous one plus ``step_by``."""
            return x + step_by

        return increment

    def start(step_by: int = 1) -> int:
        """The first value of a chain."""
        return 0

    return start


def fresh_hand_function(has_input: bool) -> Callable[..., int]:
    """The same function as a Dagster user writes it: ``step_by`` comes from the op config.

    ``context`` is left unannotated: under ``from __future__ import annotations`` Dagster sees
    the annotation as a string and refuses it."""
    if has_input:

        def increment(context, x: int) -> int:
            """The next value of a chain: the previous one plus ``step_by``."""
            return x + context.op_config.get("step_by", 1)

        return increment

    def start(context) -> int:
        """The first value of a chain."""
        return 0

    return start


def make_pipeline(nodes: list[Node]) -> flowyml.Pipeline:
    """The flowyml pipeline of ``nodes``, made as user code makes it (``@step`` + ``add_step``)."""
    flowyml.clear_step_registry()
    pipeline = flowyml.Pipeline(JOB_NAME, context=CONTEXT)
    for node in nodes:
        made = flowyml.step(
            name=node.name,
            inputs=[node.upstream] if node.upstream else [],
            outputs=[node.output],
            retry=RETRIES if node.retried else 0,
            tags=node.tags,
            register=False,
        )(fresh_function(node.upstream is not None))
        pipeline.add_step(made)
    return pipeline


def build_flowyml(pipeline: flowyml.Pipeline) -> dg.JobDefinition:
    """The timed flowyml side: Definitions with the library defaults, then the job resolved."""
    defs = flowyml_dagster.build_definitions([pipeline])
    return defs.resolve_job_def(JOB_NAME)


@dataclass(frozen=True)
class HandCode:
    """What a hand-written module holds before its decorators run: the functions, and the
    literal code version a user would write for each."""

    funcs: list[Callable[..., int]]
    code_versions: list[str]

    @classmethod
    def of(cls, nodes: list[Node]) -> HandCode:
        return cls(
            [fresh_hand_function(n.upstream is not None) for n in nodes],
            [f"{i:016x}" for i in range(len(nodes))],
        )


def hand_metadata(node: Node, func: Callable[..., int]) -> dict[str, Any]:
    """The definition metadata our translator writes for ``node``, as literal entries."""
    metadata: dict[str, Any] = {
        STEP_METADATA_KEY: node.name,
        CACHE_STRATEGY_METADATA_KEY: "code_hash",
    }
    if node.retried:
        metadata[RETRY_METADATA_KEY] = {
            "max_retries": RETRIES,
            "delay": 0.0,
            "backoff": "constant",
            "jitter": "none",
        }
    metadata["dagster/code_references"] = dg.CodeReferencesMetadataValue(
        code_references=[
            dg.LocalFileCodeReference(
                file_path=func.__code__.co_filename,
                line_number=func.__code__.co_firstlineno,
                label=node.name,
            )
        ]
    )
    metadata[PRODUCED_BY_METADATA_KEY] = dg.MetadataValue.json({JOB_NAME: JOB_NAME})
    return metadata


def build_hand_written(nodes: list[Node], code: HandCode) -> dg.JobDefinition:
    """The timed reference: what a Dagster user writes for the same graph carrying the same
    definitions (see the module docstring), resolved the same way."""
    assets = []
    with warnings.catch_warnings():  # code references are beta: one filter for the module
        warnings.simplefilter("ignore", dg.BetaWarning)
        for node, func, code_version in zip(nodes, code.funcs, code.code_versions, strict=True):
            ins = {"x": dg.AssetIn(key=_key(node.upstream))} if node.upstream else {}
            assets.append(
                dg.asset(
                    key=_key(node.output),
                    ins=ins,
                    description=func.__doc__,
                    group_name="shared",
                    kinds={"python"},
                    tags=node.tags,
                    op_tags=node.tags,
                    metadata=hand_metadata(node, func),
                    code_version=code_version,
                    retry_policy=dg.RetryPolicy(max_retries=RETRIES) if node.retried else None,
                    config_schema={"step_by": dg.Field(int, is_required=False)},
                )(func)
            )
    job = dg.define_asset_job(
        JOB_NAME,
        selection=dg.AssetSelection.assets(*(a.key for a in assets)),
        config={"ops": {a.op.name: {"config": dict(CONTEXT)} for a in assets}},
    )
    defs = dg.Definitions(assets=assets, jobs=[job])
    return defs.resolve_job_def(JOB_NAME)


def build_bare(nodes: list[Node], code: HandCode) -> dg.JobDefinition:
    """Information: the old reference, assets with only the same keys and deps."""
    assets = []
    for node, func in zip(nodes, code.funcs, strict=True):
        ins = {"x": dg.AssetIn(key=_key(node.upstream))} if node.upstream else {}
        assets.append(dg.asset(key=_key(node.output), ins=ins)(func))
    job = dg.define_asset_job(
        JOB_NAME, selection=dg.AssetSelection.assets(*(a.key for a in assets))
    )
    defs = dg.Definitions(assets=assets, jobs=[job])
    return defs.resolve_job_def(JOB_NAME)


def _key(output: str) -> dg.AssetKey:
    return dg.AssetKey(output.split("/"))


def carried(job: dg.JobDefinition) -> dict[dg.AssetKey, tuple[Any, ...]]:
    """Asset key → what its asset and op carry, in a resolved job: the two sides must match
    (parents, description, tags, kinds, group, metadata keys, a code version, op tags, retry
    policy, config fields), or the comparison would not be like with like."""
    layer = job.asset_layer
    result = {}
    for key in layer.executable_asset_keys:
        node = layer.asset_graph.get(key)
        op = node.assets_def.op
        schema = op.config_schema.as_field().config_type if op.config_schema else None
        result[key] = (
            frozenset(node.parent_keys),
            node.description,
            tuple(sorted(node.tags.items())),
            node.group_name,
            tuple(sorted(node.metadata)),
            node.code_version is not None,
            tuple(sorted(op.tags.items())),
            op.retry_policy.max_retries if op.retry_policy else 0,
            tuple(sorted(schema.fields)) if schema is not None else (),
        )
    return result


@dataclass
class Samples:
    """Seconds per repetition: each side, and the creation of the flowyml steps."""

    flowyml: list[float]
    hand: list[float]
    bare: list[float]
    decorate: list[float]

    def add(self, flowyml_s: float, hand_s: float, bare_s: float, decorate_s: float) -> None:
        self.flowyml.append(flowyml_s)
        self.hand.append(hand_s)
        self.bare.append(bare_s)
        self.decorate.append(decorate_s)


def _timed(func: Callable[[], Any]) -> tuple[float, Any]:
    gc.collect()
    started = time.perf_counter()
    result = func()
    return time.perf_counter() - started, result


def sample_pair(nodes: list[Node], *, turn: int, check: bool) -> tuple[float, ...]:
    """One repetition of the three builds on fresh objects, in an order that rotates with
    ``turn``; ``check`` compares what the flowyml and hand-written assets carry.

    Fresh steps and functions each time: the build reads each step's source for its code
    version, which a step caches, and a rerun on warm steps would not be a code location load.
    """
    decorate_s, pipeline = _timed(lambda: make_pipeline(nodes))
    code = HandCode.of(nodes)
    builds: dict[str, Callable[[], dg.JobDefinition]] = {
        "flowyml": lambda: build_flowyml(pipeline),
        "hand": lambda: build_hand_written(nodes, code),
        "bare": lambda: build_bare(nodes, code),
    }
    order = list(builds)[turn % 3 :] + list(builds)[: turn % 3]
    times: dict[str, float] = {}
    jobs: dict[str, dg.JobDefinition] = {}
    for side in order:
        times[side], jobs[side] = _timed(builds[side])
    if check:
        flowyml_carries, hand_carries = carried(jobs["flowyml"]), carried(jobs["hand"])
        if flowyml_carries != hand_carries or len(hand_carries) != len(nodes):
            raise RuntimeError("flowyml and hand-written assets do not carry the same things")
    return times["flowyml"], times["hand"], times["bare"], decorate_s


def _median_ratio(tops: list[float], bottoms: list[float]) -> float:
    """Median of per-pair ratios: the builds of a repetition are adjacent in time, so a slow
    phase of a shared machine hits both alike instead of skewing one side's median."""
    return statistics.median(t / b for t, b in zip(tops, bottoms, strict=True))


def bench_size(size: int) -> list[Row]:
    """Interleaved repetitions at one size, within ``SIZE_BUDGET_S``; rows with the ratio."""
    nodes = wide_graph(size)
    samples = Samples([], [], [], [])
    spent = 0.0
    while len(samples.flowyml) < MAX_REPEATS:
        started = time.perf_counter()
        samples.add(*sample_pair(nodes, turn=len(samples.flowyml), check=not samples.flowyml))
        last = time.perf_counter() - started
        spent += last
        if spent + last > SIZE_BUDGET_S:  # the next repetition would overrun the budget
            break
    ratio = _median_ratio(samples.flowyml, samples.hand)
    with_steps = _median_ratio(
        [f + d for f, d in zip(samples.flowyml, samples.decorate, strict=True)], samples.hand
    )
    runs = len(samples.flowyml)
    return [
        Row(
            f"{size} steps: flowyml build+resolve (s, n={runs})",
            f"{statistics.median(samples.flowyml):.3f}",
        ),
        Row(
            f"{size} steps: hand-written, same definitions (s, n={runs})",
            f"{statistics.median(samples.hand):.3f}",
        ),
        Row(
            f"{size} steps: flowyml / hand-written (median of pairs)",
            f"{ratio:.2f}x",
            f"<= {TARGET_RATIO:g}x",
            ratio <= TARGET_RATIO,
        ),
        Row(f"{size} steps: with @step creation / hand-written", f"{with_steps:.2f}x"),
        Row(
            f"{size} steps: bare assets, keys and deps only (s, n={runs})",
            f"{statistics.median(samples.bare):.3f}",
        ),
        Row(
            f"{size} steps: flowyml / bare assets",
            f"{_median_ratio(samples.flowyml, samples.bare):.2f}x",
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
    code = HandCode.of(nodes)
    flowyml_row, flowyml_s = _attempt(
        f"chain {CHAIN_WORKS}: flowyml build+resolve", lambda: build_flowyml(pipeline)
    )
    hand_row, hand_s = _attempt(
        f"chain {CHAIN_WORKS}: hand-written build+resolve",
        lambda: build_hand_written(nodes, code),
    )
    rows += [flowyml_row, hand_row]
    if flowyml_s is not None and hand_s is not None:
        rows.append(
            Row(f"chain {CHAIN_WORKS}: flowyml / hand-written", f"{flowyml_s / hand_s:.2f}x")
        )
    nodes = chain_graph(CHAIN_FAILS)
    code = HandCode.of(nodes)
    rows.append(
        _attempt(
            f"chain {CHAIN_FAILS}: hand-written build+resolve",
            lambda: build_hand_written(nodes, code),
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
        sample_pair(wide_graph(100), turn=0, check=False)  # warm-up: first calls
        scenarios: list[Callable[[], list[Row]]] = [
            *(lambda size=size: bench_size(size) for size in SIZES),
            bench_chains,
        ]
        rows += run_scenarios(scenarios)
        flowyml.clear_step_registry()
    print(
        f"graph: wide, {WIDTH} independent chains of depth N/{WIDTH} "
        f"({', '.join(f'{n}: depth {n // WIDTH}' for n in SIZES)}); "
        "one trivial function and one output asset per step, each carrying a docstring, two tags, "
        f"a context param, retry={RETRIES} on every {RETRY_EVERY}th step\n"
        "chain rows: one chain of N steps, for information; past ~1000 steps Dagster's recursive "
        "DFS may overflow,\n  depending on the hash seed (ops are visited in asset-key set order)\n"
    )
    print_table(rows)
    print(f"\ntotal benchmark time: {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
