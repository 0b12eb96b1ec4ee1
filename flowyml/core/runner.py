"""The plain-Python runner: executes a pipeline graph in this process, step by step.

It owns what Dagster would own on the Dagster path (order, skipping what depends on a skipped or
failed step, handing values over); retries are the core's ``run_attempts`` and each attempt is
one call of the shared core, ``execute_step``.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from flowyml.core import cache_store
from flowyml.core.cache_location import StepCache
from flowyml.core.errors import CacheEntryError, StepExecutionError
from flowyml.core.execution import (
    StepOutcome,
    StepStatus,
    execute_step,
    resolve_params,
    run_attempts,
)
from flowyml.core.graph import PipelineGraph, blocked, check_inputs
from flowyml.core.handoff import ValueHandoff
from flowyml.core.results import ErrorInfo, PipelineResult, StepResult
from flowyml.core.step import Step

if TYPE_CHECKING:
    from flowyml.core.cache_store import PinnedEntry

logger = logging.getLogger(__name__)


class RunObserver(Protocol):
    """Told of a run as it goes (the progress display is one)."""

    def run_started(self, graph: PipelineGraph) -> None: ...

    def step_started(self, step: Step) -> None: ...

    def step_finished(self, result: StepResult) -> None: ...

    def run_finished(self, result: PipelineResult) -> None: ...


def run_graph(
    graph: PipelineGraph,
    *,
    inputs: Mapping[str, Any],
    context: Mapping[str, Any],
    cache: StepCache | None,
    run_id: str | None = None,
    observer: RunObserver | None = None,
) -> PipelineResult:
    """Run every unit of ``graph`` in order and collect a :class:`PipelineResult`."""
    check_inputs(graph, inputs)
    started_at = datetime.now(UTC)
    started = time.perf_counter()
    if observer is not None:
        observer.run_started(graph)
    handoff = ValueHandoff(i for step in graph.steps for i in step.inputs)
    for name in graph.pipeline_inputs:
        handoff.add(name, inputs[name])  # the caller's own objects: steps get copies
    results: dict[str, StepResult] = {}
    released: list[Step] = []  # steps whose outputs only their cache entry holds
    try:
        for unit in graph.units:
            for step in unit.steps:
                result, let_go = _run_in_turn(
                    step, graph, results, handoff, context, cache, observer
                )
                results[step.name] = result
                if let_go:
                    released.append(step)
                if observer is not None:
                    observer.step_finished(result)
                del result  # a released step's outputs must not stay alive through the next step
        for step in released:  # loaded again now that no step holds a copy
            results[step.name] = _reclaimed(results[step.name], step, handoff)
    finally:
        handoff.close()
    outputs = {k: v for r in results.values() for k, v in r.outputs.items()}
    result = PipelineResult(
        pipeline_name=graph.name,
        run_id=run_id or uuid.uuid4().hex,
        step_results=results,
        outputs=outputs,
        duration_seconds=time.perf_counter() - started,
        started_at=started_at,
    )
    if observer is not None:
        observer.run_finished(result)
    return result


def _run_in_turn(
    step: Step,
    graph: PipelineGraph,
    results: Mapping[str, StepResult],
    handoff: ValueHandoff,
    context: Mapping[str, Any],
    cache: StepCache | None,
    observer: RunObserver | None,
) -> tuple[StepResult, bool]:
    """Run ``step`` (or say why it is blocked) and hand its outputs over; ``True`` when the
    result was let go of its outputs because their cache entry holds them (large values: one
    copy in memory, not one per taker), for ``run_graph`` to load them again at the end."""
    why = blocked(graph, step, {n: r.status for n, r in results.items()})
    if why is not None:
        return StepResult(step.name, why[0], reason=why[1]), False
    if observer is not None:
        observer.step_started(step)
    timeout, retried = step.timeout is not None, step.retry > 0
    supply = handoff.supplier(step.inputs, isolated=timeout, retried=retried)
    pin_from = cache_store.PIN_MIN_BYTES if handoff.can_hold else None
    result, pinned = _run_step(step, supply, context, cache, pin_from)
    if pinned is not None and handoff.add_pinned(result.outputs, pinned, hit=result.cached):
        return replace(result, outputs={}), True
    for name, value in result.outputs.items():
        handoff.add(name, value)
    return result, False


def _reclaimed(result: StepResult, step: Step, handoff: ValueHandoff) -> StepResult:
    """``result`` with its outputs back from their entry; failed, saying why, if the entry no
    longer loads (changed in place during the run): the run still returns its other results."""
    try:
        return replace(result, outputs=handoff.reclaim(step.output_names))
    except CacheEntryError as exc:
        logger.error("step '%s': its outputs are lost: %s", step.name, exc)
        return replace(
            result, status=StepStatus.FAILED, error=ErrorInfo.from_exception(exc), reason=str(exc)
        )


def _run_step(
    step: Step,
    inputs: Callable[[], dict[str, Any]],
    context: Mapping[str, Any],
    cache: StepCache | None,
    pin_from: int | None,
) -> tuple[StepResult, PinnedEntry | None]:
    started = time.perf_counter()

    def attempt() -> StepOutcome:
        params = resolve_params(step, context)
        return execute_step(step, inputs(), params, cache=cache, pin_from=pin_from)

    attempts = run_attempts(step, attempt)
    duration = time.perf_counter() - started
    if attempts.outcome is None:
        error = attempts.error
        assert error is not None
        return StepResult(
            step.name,
            StepStatus.FAILED,
            error=ErrorInfo.from_exception(error),
            retries=attempts.retries,
            duration_seconds=duration,
            reason=str(error) if isinstance(error, StepExecutionError) else None,
        ), None
    outcome = attempts.outcome
    result = StepResult(
        step.name,
        outcome.status,
        outputs=outcome.outputs,
        cached=outcome.cached,
        retries=attempts.retries,
        duration_seconds=duration,
        cache_key=outcome.cache_key,
        reason="condition is false" if outcome.status is StepStatus.SKIPPED else None,
    )
    return result, outcome.pinned
