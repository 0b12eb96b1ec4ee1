"""The body of every flowyml op or multi-asset: Dagster inputs → the shared core → Dagster outputs.

One function serves both flavours (asset jobs and op jobs). It only adapts: values and config in,
``execute_step`` for each step of the unit, then ``Output`` events with a data version and
metadata, or a ``dagster.Failure`` naming the step. Retries belong to Dagster's ``RetryPolicy``.
"""

# No ``from __future__ import annotations`` here: Dagster reads the ``context`` annotation of the
# compute function at definition time and needs the class itself, not its name as a string.
import traceback
import warnings
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import dagster as dg

from flowyml.core.errors import StepExecutionError, StepOutputError, StepTimeoutError
from flowyml.core.execution import StepOutcome, StepStatus, execute_step, resolve_params
from flowyml.core.step import Step
from flowyml_dagster.cache import CACHE_RESOURCE_KEY
from flowyml_dagster.planning import UnitPlan
from flowyml_dagster.translator import CACHE_METADATA_KEY, STEP_METADATA_KEY, FlowymlTranslator


def make_compute_fn(
    plan: UnitPlan, translator: FlowymlTranslator
) -> Callable[..., Iterator[dg.Output]]:
    """The compute function of ``plan``'s op (a generator: a skipped step yields nothing)."""

    def compute(context: dg.OpExecutionContext, **dagster_inputs: Any) -> Iterator[dg.Output]:
        values = {name: dagster_inputs[d] for name, d in plan.inputs.items() if d in dagster_inputs}
        params_source = {
            **plan.contexts.get(context.job_name, plan.default_context),
            **(context.op_config or {}),
        }
        store = getattr(context.resources, CACHE_RESOURCE_KEY).store()
        for step in plan.unit.steps:
            missing = [name for name in step.inputs if name not in values]
            if missing:
                context.log.info(f"step '{step.name}' skipped: no value for {missing}")
                continue
            inputs = {name: values[name] for name in step.inputs}
            outcome = _run(step, inputs, resolve_params(step, params_source), store)
            if outcome.status is StepStatus.SKIPPED:
                context.log.info(f"step '{step.name}' skipped: its condition is false")
                _observe_skip(context, plan, step)
                continue
            values.update(outcome.outputs)
            for name, value in outcome.outputs.items():
                yield _output(plan, translator, step, outcome, name, value)

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
                metadata={"flowyml/skipped": f"condition of step '{step.name}' is false"},
            )
        )


def _run(
    step: Step, inputs: Mapping[str, Any], params: Mapping[str, Any], store: Any
) -> StepOutcome:
    try:
        return execute_step(step, inputs, params, cache=store, require_picklable=True)
    except StepTimeoutError as exc:
        raise dg.Failure(
            description=str(exc),
            metadata={STEP_METADATA_KEY: step.name, "flowyml/timeout_seconds": float(exc.timeout)},
        ) from exc
    except StepOutputError as exc:
        # A wrong return shape or an unpicklable value fails the same way on every attempt.
        raise dg.Failure(
            description=str(exc), metadata={STEP_METADATA_KEY: step.name}, allow_retries=False
        ) from exc
    except StepExecutionError as exc:
        raise dg.Failure(description=str(exc), metadata={STEP_METADATA_KEY: step.name}) from exc
    except Exception as exc:
        raise dg.Failure(
            description=f"step '{step.name}' raised {type(exc).__qualname__}: {exc}",
            metadata={
                STEP_METADATA_KEY: step.name,
                "flowyml/traceback": dg.MetadataValue.text(
                    "".join(traceback.format_exception(exc))
                ),
            },
        ) from exc


def _output(
    plan: UnitPlan,
    translator: FlowymlTranslator,
    step: Step,
    outcome: StepOutcome,
    name: str,
    value: Any,
) -> dg.Output:
    metadata: dict[str, Any] = {
        CACHE_METADATA_KEY: "hit" if outcome.cached else ("miss" if outcome.cache_key else "off"),
        "flowyml/duration_seconds": round(outcome.duration_seconds, 6),
        **translator.get_output_metadata(step, name, value),
    }
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
