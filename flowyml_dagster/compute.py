"""The body of every flowyml op or multi-asset: Dagster inputs → the shared core → Dagster outputs.

One function serves both flavours (asset jobs and op jobs). It only adapts: values and config in,
``execute_step`` for each step of the unit, then ``Output`` events with a data version and
metadata, or a ``dagster.Failure`` naming the step. Retries belong to Dagster's ``RetryPolicy``.
"""

# No ``from __future__ import annotations`` here: Dagster reads the ``context`` annotation of the
# compute function at definition time and needs the class itself, not its name as a string.
import inspect
import traceback
import warnings
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import dagster as dg
from dagster._core.definitions.metadata import normalize_metadata
from dagster_shared.serdes import serialize_value

from flowyml.core.errors import StepExecutionError, StepTimeoutError, exception_text
from flowyml.core.execution import (
    StepOutcome,
    StepStatus,
    execute_step,
    resolve_params,
    retryable,
    run_attempts,
)
from flowyml.core.handoff import ValueHandoff
from flowyml.core.step import Step
from flowyml_dagster.constants import (
    CACHE_METADATA_KEY,
    CACHE_REASON_METADATA_KEY,
    CACHE_RESOURCE_KEY,
    DURATION_METADATA_KEY,
    ERROR_MESSAGE_METADATA_KEY,
    ERROR_TYPE_METADATA_KEY,
    SKIPPED_METADATA_KEY,
    STEP_METADATA_KEY,
    TIMEOUT_METADATA_KEY,
    TRACEBACK_METADATA_KEY,
)
from flowyml_dagster.planning import OutputMetadata, UnitPlan
from flowyml_dagster.storage import offered_entry


def make_compute_fn(
    plan: UnitPlan, output_metadata: OutputMetadata
) -> Callable[..., Iterator[dg.Output]]:
    """The compute function of ``plan``'s op (a generator: a skipped step yields nothing).

    Every decision is in ``plan``; ``output_metadata`` (the translator's ``get_output_metadata``)
    is the one question asked at run time, as its answer depends on the value."""
    grouped = len(plan.unit.steps) > 1
    takers = tuple(i for step in plan.unit.steps for i in step.inputs)  # the same on every run

    def compute(context: dg.OpExecutionContext, **dagster_inputs: Any) -> Iterator[dg.Output]:
        handoff = ValueHandoff(takers)
        for name, dagster_name in plan.inputs.items():
            if dagster_name in dagster_inputs:  # loaded by the IO manager for this op alone
                handoff.add(name, dagster_inputs[dagster_name], owned=True)
        params_source = {
            **plan.contexts.get(context.job_name, plan.default_context),
            **(context.op_config or {}),
        }
        store = getattr(context.resources, CACHE_RESOURCE_KEY).store()
        for step in plan.unit.steps:
            missing = [name for name in step.inputs if name not in handoff]
            if missing:
                context.log.info(f"step '{step.name}' skipped: no value for {missing}")
                continue
            supply = handoff.supplier(
                step.inputs, isolated=step.timeout is not None, retried=grouped and step.retry > 0
            )
            outcome = _run(step, supply, params_source, store, retry_here=grouped)
            if outcome.status is StepStatus.SKIPPED:
                context.log.info(f"step '{step.name}' skipped: its condition is false")
                _observe_skip(context, plan, step)
                continue
            for name, value in outcome.outputs.items():
                handoff.add(name, value)
                with offered_entry(value, outcome.pinned):
                    yield _output(context, plan, output_metadata, step, outcome, name, value)

    # Dagster reads a compute function's signature some fifteen times while it builds one op;
    # ``inspect.signature`` returns a ``__signature__`` as it is, so it is worked out once.
    compute.__signature__ = inspect.signature(compute)  # type: ignore[attr-defined]
    return compute


def _observe_skip(context: dg.OpExecutionContext, plan: UnitPlan, step: Step) -> None:
    """Record on each of the step's assets that it was skipped, so the UI shows why it is missing.

    Dagster itself records nothing for an optional output that is not produced.
    """
    if not context.has_assets_def:
        return
    for output in step.output_names:
        context.log_event(
            dg.AssetObservation(
                asset_key=context.asset_key_for_output(plan.outputs[output]),
                metadata={SKIPPED_METADATA_KEY: f"condition of step '{step.name}' is false"},
            )
        )


def _run(
    step: Step,
    inputs: Callable[[], dict[str, Any]],
    params_source: Mapping[str, Any],
    store: Any,
    *,
    retry_here: bool,
) -> StepOutcome:
    """One step through the core. Dagster retries a one-step op by its ``RetryPolicy``; in an
    execution group the op cannot be retried without re-running the group's other steps, so
    each step is retried here by its own policy, with the core's one retry loop."""

    # A step's one output can share its serialisation with the IO manager (``offered_entry``):
    # its cache entry is held open, whatever its size. An entry of several outputs cannot.
    pin_from = 0 if len(step.output_names) == 1 else None

    def attempt() -> StepOutcome:
        params = resolve_params(step, params_source)
        return execute_step(step, inputs(), params, cache=store, pin_from=pin_from)

    if retry_here:
        attempts = run_attempts(step, attempt)
        if attempts.outcome is not None:
            return attempts.outcome
        assert attempts.error is not None
        raise _failure(step, attempts.error, allow_retries=False) from attempts.error
    try:
        return attempt()
    except Exception as exc:
        raise _failure(step, exc, allow_retries=retryable(exc)) from exc


def _failure(step: Step, exc: Exception, *, allow_retries: bool) -> dg.Failure:
    """The step's error as a ``dagster.Failure`` naming the step (and the user's traceback)."""
    metadata: dict[str, Any] = {STEP_METADATA_KEY: step.name}
    if isinstance(exc, StepTimeoutError):
        metadata[TIMEOUT_METADATA_KEY] = float(exc.timeout)
    if isinstance(exc, StepExecutionError):
        description = exception_text(exc)
    else:
        # exception_text, as the plain runner: an exception whose __str__ raises is still its own.
        message = exception_text(exc)
        description = f"step '{step.name}' raised {type(exc).__qualname__}: {message}"
        metadata[ERROR_TYPE_METADATA_KEY] = type(exc).__qualname__
        metadata[ERROR_MESSAGE_METADATA_KEY] = dg.MetadataValue.text(message)
        metadata[TRACEBACK_METADATA_KEY] = dg.MetadataValue.text(
            "".join(traceback.format_exception(exc))
        )
    return dg.Failure(description=description, metadata=metadata, allow_retries=allow_retries)


def _output(
    context: dg.OpExecutionContext,
    plan: UnitPlan,
    output_metadata: OutputMetadata,
    step: Step,
    outcome: StepOutcome,
    name: str,
    value: Any,
) -> dg.Output:
    metadata: dict[str, Any] = {
        CACHE_METADATA_KEY: "hit" if outcome.cached else ("miss" if outcome.cache_key else "off"),
        DURATION_METADATA_KEY: round(outcome.duration_seconds, 6),
    }
    if outcome.cache_note:
        metadata[CACHE_REASON_METADATA_KEY] = outcome.cache_note
    metadata.update(_user_metadata(context, output_metadata, step, name, value))
    if outcome.cache_key is None:
        return dg.Output(value, output_name=plan.outputs[name], metadata=metadata)
    # The cache key as data version: a hit records the same version as the run that computed it,
    # so downstream assets stay fresh. ``data_version`` is beta in Dagster; its warning is noise.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.BetaWarning)
        return dg.Output(
            value,
            output_name=plan.outputs[name],
            metadata=metadata,
            data_version=dg.DataVersion(outcome.cache_key.rpartition(":")[2]),
        )


def _user_metadata(
    context: dg.OpExecutionContext,
    output_metadata: OutputMetadata,
    step: Step,
    name: str,
    value: Any,
) -> dict[str, Any]:
    """The translator's metadata for an output, each entry checked the way the event log will
    store it: a bad entry is dropped with a warning, never the step's computed value."""
    try:
        proposed = output_metadata(step, name, value)
    except Exception as exc:
        context.log.warning(f"step '{step.name}': output metadata of '{name}' failed: {exc!r}")
        return {}
    kept: dict[str, Any] = {}
    for key, entry in proposed.items():
        try:
            serialize_value(normalize_metadata({key: entry}))
        except Exception as exc:
            context.log.warning(
                f"step '{step.name}': output metadata '{key}' of '{name}' left out: {exc}"
            )
            continue
        kept[key] = entry
    return kept
