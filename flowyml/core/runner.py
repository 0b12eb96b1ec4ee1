"""The plain-Python runner: executes a pipeline graph in this process, step by step.

It owns what Dagster would own on the Dagster path (order, retries, skipping what depends on a
skipped or failed step); each attempt is one call of the shared core, ``execute_step``.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Mapping
from typing import Any

from flowyml.core.caching import CacheStore
from flowyml.core.errors import StepExecutionError, StepOutputError
from flowyml.core.execution import StepOutcome, StepStatus, execute_step, resolve_params
from flowyml.core.graph import PipelineGraph, blocked, check_inputs
from flowyml.core.results import ErrorInfo, PipelineResult, StepResult
from flowyml.core.step import Step

logger = logging.getLogger(__name__)


def run_graph(
    graph: PipelineGraph,
    *,
    inputs: Mapping[str, Any],
    context: Mapping[str, Any],
    cache: CacheStore | None,
    run_id: str | None = None,
) -> PipelineResult:
    """Run every unit of ``graph`` in order and collect a :class:`PipelineResult`."""
    check_inputs(graph, inputs)
    started = time.perf_counter()
    values: dict[str, Any] = {name: inputs[name] for name in graph.pipeline_inputs}
    results: dict[str, StepResult] = {}
    for unit in graph.units:
        for step in unit.steps:
            why = blocked(graph, step, {n: r.status for n, r in results.items()})
            if why is not None:
                results[step.name] = StepResult(step.name, why[0], reason=why[1])
                continue
            step_inputs = {name: values[name] for name in step.inputs}
            result = _run_with_retries(step, step_inputs, resolve_params(step, context), cache)
            results[step.name] = result
            values.update(result.outputs)
    outputs = {k: v for r in results.values() for k, v in r.outputs.items()}
    return PipelineResult(
        pipeline_name=graph.name,
        run_id=run_id or uuid.uuid4().hex,
        step_results=results,
        outputs=outputs,
        duration_seconds=time.perf_counter() - started,
    )


def _run_with_retries(
    step: Step, inputs: Mapping[str, Any], params: Mapping[str, Any], cache: CacheStore | None
) -> StepResult:
    policy = step.retry_policy
    started = time.perf_counter()
    for attempt in range(policy.max_attempts):
        try:
            outcome: StepOutcome = execute_step(step, inputs, params, cache=cache)
        except Exception as exc:
            # A return value that does not fit the outputs or cannot be pickled fails the same way
            # on every attempt: not retried (as on Dagster, where it is a Failure without retries).
            if attempt < policy.max_retries and not isinstance(exc, StepOutputError):
                delay = policy.delay_before_retry(attempt + 1)
                logger.warning(
                    "step '%s' attempt %d/%d failed (%s); retrying in %.2fs",
                    step.name, attempt + 1, policy.max_attempts, exc, delay,
                )  # fmt: skip
                time.sleep(delay)
                continue
            logger.error("step '%s' failed after %d attempt(s): %s", step.name, attempt + 1, exc)
            return StepResult(
                step.name,
                StepStatus.FAILED,
                error=ErrorInfo.from_exception(exc),
                retries=attempt,
                duration_seconds=time.perf_counter() - started,
                reason=str(exc) if isinstance(exc, StepExecutionError) else None,
            )
        return StepResult(
            step.name,
            outcome.status,
            outputs=outcome.outputs,
            cached=outcome.cached,
            retries=attempt,
            duration_seconds=time.perf_counter() - started,
            cache_key=outcome.cache_key,
            reason="condition is false" if outcome.status is StepStatus.SKIPPED else None,
        )
    raise AssertionError("unreachable: the last attempt returns")
