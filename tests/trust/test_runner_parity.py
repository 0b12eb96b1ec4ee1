"""One answer everywhere: each fixture pipeline gives the same outputs whichever way it runs.

The ways: the plain runner; the plain runner with a ``timeout`` on every step (each step in a
forked child); ``flowyml_dagster.run`` (Dagster's in-process executor); Dagster's multiprocess
executor through ``execute_job`` on a reconstructable job and a real ``DagsterInstance`` (every
op in its own worker process, values through the filesystem IO manager). Each way runs twice with
one cache dir of its own: the first run computes, the second (``+cached``) must be all hits.

Outputs are compared with the values ``parity_pipelines.EXPECTED`` states, computed by hand, so
every way equals every other. Values are compared by type and content (a frame by columns, dtypes,
index and values; ``2`` is not ``2.0``).
"""

from __future__ import annotations

import multiprocessing.forkserver
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg
import numpy as np
import pandas as pd
import parity_pipelines as pp
import pytest
from pydantic import BaseModel
from run_support import execute, lines, run_config

from flowyml import Pipeline, Step
from flowyml.core.results import PipelineResult
from flowyml_dagster import run as dagster_run
from flowyml_dagster.constants import CACHE_METADATA_KEY
from flowyml_dagster.definitions import translate

TIMEOUT_SECONDS = 120  # far above any step here: the point is the forked child, not the deadline
WAYS = ("plain", "plain-timeout", "dagster-run", "dagster-multiprocess")
VALUE_PIPELINES = ("mutating", "grouped", "conditional", "typed", "multi")


# --- comparing values ---------------------------------------------------------------------------


def canon(value: Any) -> Any:
    """A comparable form of ``value`` that keeps its type and whole content."""
    if isinstance(value, pd.DataFrame):
        return (
            "frame",
            [canon(c) for c in value.columns],
            [str(value[c].dtype) for c in value.columns],
            [canon(i) for i in value.index.tolist()],
            [[canon(v) for v in row] for row in value.itertuples(index=False)],
        )
    if isinstance(value, pd.Series):
        return ("series", canon(value.to_frame()))
    if isinstance(value, np.ndarray):
        return ("array", str(value.dtype), value.shape, canon(value.tolist()))
    if isinstance(value, np.generic):
        return ("numpy", str(value.dtype), canon(value.item()))
    if isinstance(value, BaseModel):
        return ("model", type(value).__name__, canon(value.model_dump()))
    if isinstance(value, dict):
        return ("dict", {canon(k): canon(v) for k, v in value.items()})
    if isinstance(value, list | tuple):
        return (type(value).__name__, [canon(v) for v in value])
    if isinstance(value, bool | int | float | str | None):
        return (type(value).__name__, value)
    return ("repr", type(value).__qualname__, repr(value))


def canon_outputs(outputs: dict[str, Any]) -> dict[str, Any]:
    return {name: canon(value) for name, value in outputs.items()}


# --- running every way --------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """What one run gave: every output by name and, by step, whether it was a cache hit."""

    outputs: dict[str, Any]
    cached: dict[str, bool]
    success: bool


def from_result(result: PipelineResult) -> Outcome:
    return Outcome(
        outputs=dict(result.outputs),
        cached={n: r.cached for n, r in result.step_results.items() if r.success},
        success=result.success,
    )


def with_timeout(step: Step) -> Step:
    """The same step with a timeout: every attempt then runs in a forked child."""
    return Step(
        step.func,
        name=step.name,
        inputs=step.inputs,
        outputs=step.outputs,
        cache=step.cache,
        retry=step.retry_policy,
        timeout=TIMEOUT_SECONDS,
        resources=step.resources,
        tags=step.tags,
        condition=step.condition,
        execution_group=step.execution_group,
    )


def copy_of(pipeline: Pipeline, cache_dir: Path, timeout: bool = False) -> Pipeline:
    return Pipeline(
        pipeline.name,
        context=pipeline.context,
        steps=[with_timeout(s) if timeout else s for s in pipeline.steps],
        cache_dir=cache_dir,
    )


def multiprocess_outcome(name: str, instance: dg.DagsterInstance, config: dict) -> Outcome:
    """Run the job of pipeline ``name`` as Dagster launches it; read values back from storage."""
    run = execute(pp.JOBS[name], instance, config)
    pipeline = pp.PIPELINES[name]
    keys = translate([pipeline]).plan.keys
    defs = pp.definitions(pipeline)
    materialized = run.materializations()
    outputs: dict[str, Any] = {}
    cached: dict[str, bool] = {}
    for step in pipeline.steps:
        produced = [o for o in step.output_names if keys[o] in materialized]
        for output in produced:
            outputs[output] = defs.load_asset_value(keys[output], instance=instance)
        if produced:
            metadata = materialized[keys[produced[0]]].metadata
            cached[step.name] = metadata[CACHE_METADATA_KEY].value == "hit"
    return Outcome(outputs, cached, run.succeeded)


@dataclass
class Ways:
    """Every run of every pipeline, made on first use and kept for the module's tests."""

    root: Path
    instance: dg.DagsterInstance
    made: dict[tuple[str, str], list[Outcome]] = field(default_factory=dict)

    def workdir(self, name: str, way: str) -> Path:
        path = self.root / "work" / name / way
        path.mkdir(parents=True, exist_ok=True)
        return path

    def runs(self, name: str, way: str) -> tuple[Outcome, Outcome]:
        """The first run and the cached second run of pipeline ``name`` the way ``way``."""
        made = self._made(name, way, 2)
        return made[0], made[1]

    def first(self, name: str, way: str) -> Outcome:
        """Only the first run of pipeline ``name`` the way ``way`` (its calls are counted)."""
        return self._made(name, way, 1)[0]

    def _made(self, name: str, way: str, count: int) -> list[Outcome]:
        made = self.made.setdefault((name, way), [])
        if len(made) < count:
            run: Callable[[], Outcome] = self._way(name, way)
            made.extend(run() for _ in range(count - len(made)))
        return made

    def _way(self, name: str, way: str) -> Callable[[], Outcome]:
        pipeline = pp.PIPELINES[name]
        cache_dir = self.root / "cache" / name / way
        extra = {"workdir": str(self.workdir(name, way))} if name == "failing" else {}
        if way in ("plain", "plain-timeout"):
            copy = copy_of(pipeline, cache_dir, timeout=way == "plain-timeout")
            return lambda: from_result(copy.run(context=extra))
        if way == "dagster-run":
            copy = copy_of(pipeline, cache_dir)
            return lambda: from_result(
                dagster_run(copy, context=extra, instance=self.instance, cache_dir=str(cache_dir))
            )
        assert way == "dagster-multiprocess", way
        config = run_config(pp.JOBS[name](), cache_dir=cache_dir, **extra)
        return lambda: multiprocess_outcome(name, self.instance, config)


@pytest.fixture(scope="module")
def ways(module_instance: dg.DagsterInstance, module_tmp: Path) -> Iterator[Ways]:
    yield Ways(module_tmp, module_instance)
    # Dagster's multiprocess executor started multiprocessing's fork server for its workers:
    # stop it with the module (it is started again by whoever needs it next).
    server = getattr(multiprocessing.forkserver, "_forkserver", None)
    stop = getattr(server, "_stop", None)
    if stop is not None:
        stop()


def all_ways(pipelines: tuple[str, ...]) -> list[Any]:
    return [pytest.param(p, w, id=f"{p}-{w}") for p in pipelines for w in WAYS]


# --- the same outputs every way -----------------------------------------------------------------


@pytest.mark.timeout(600)
@pytest.mark.parametrize(("name", "way"), all_ways(VALUE_PIPELINES))
def test_every_way_gives_the_expected_outputs(ways: Ways, name: str, way: str) -> None:
    first, _ = ways.runs(name, way)

    assert first.success
    assert canon_outputs(first.outputs) == canon_outputs(pp.EXPECTED[name])


@pytest.mark.timeout(600)
@pytest.mark.parametrize(("name", "way"), all_ways(VALUE_PIPELINES))
def test_a_cached_rerun_gives_the_expected_outputs(ways: Ways, name: str, way: str) -> None:
    _, second = ways.runs(name, way)

    assert second.success
    assert canon_outputs(second.outputs) == canon_outputs(pp.EXPECTED[name])


@pytest.mark.timeout(600)
@pytest.mark.parametrize(("name", "way"), all_ways(VALUE_PIPELINES))
def test_a_rerun_with_the_same_cache_is_all_hits(ways: Ways, name: str, way: str) -> None:
    first, second = ways.runs(name, way)

    assert set(first.cached.values()) == {False}
    assert second.cached == dict.fromkeys(first.cached, True)


@pytest.mark.timeout(600)
@pytest.mark.parametrize("way", WAYS)
def test_a_step_mutating_its_input_does_not_change_what_a_later_step_reads(
    ways: Ways, way: str
) -> None:
    first, _ = ways.runs("mutating", way)

    assert first.outputs["mut/seen"]["columns"] == ["a", "b"]


@pytest.mark.timeout(600)
@pytest.mark.parametrize("way", WAYS)
def test_an_int_context_value_reaches_a_float_param_as_a_float(ways: Ways, way: str) -> None:
    first, second = ways.runs("typed", way)

    assert [run.outputs["typed/report"]["rate_type"] for run in (first, second)] == ["float"] * 2


@pytest.mark.timeout(600)
@pytest.mark.parametrize("way", WAYS)
def test_a_dict_context_value_reaches_a_model_param_as_the_model(ways: Ways, way: str) -> None:
    first, second = ways.runs("typed", way)

    assert [run.outputs["typed/report"]["settings_type"] for run in (first, second)] == [
        "Settings"
    ] * 2


# --- a step with retry=0 that raises ------------------------------------------------------------


@pytest.mark.timeout(600)
@pytest.mark.parametrize("way", WAYS)
def test_a_raising_step_with_retry_0_is_called_exactly_once(ways: Ways, way: str) -> None:
    first = ways.first("failing", way)

    assert not first.success
    assert len(lines(ways.workdir("failing", way) / "solo_broken.calls")) == 1


@pytest.mark.timeout(600)
@pytest.mark.parametrize("way", WAYS)
def test_a_raising_step_with_retry_0_in_an_execution_group_is_called_exactly_once(
    ways: Ways, way: str
) -> None:
    first = ways.first("failing", way)

    assert not first.success
    assert len(lines(ways.workdir("failing", way) / "fail_broken.calls")) == 1


@pytest.mark.timeout(600)
@pytest.mark.parametrize("way", WAYS)
def test_a_groups_steps_that_succeeded_are_not_run_again_after_its_step_fails(
    ways: Ways, way: str
) -> None:
    first = ways.first("failing", way)

    assert not first.success
    assert len(lines(ways.workdir("failing", way) / "fail_ok.calls")) == 1
