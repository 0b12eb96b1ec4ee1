"""Run a flowyml pipeline through Dagster from Python; get the plain runner's result shape.

``run(pipeline)`` builds the pipeline's definitions, records its pipeline inputs as
materializations of their external assets, launches the job on a Dagster instance and reads the
run's event log back into a ``PipelineResult``. Everything is in Dagster's storage afterwards:
the run, its events and the asset values, visible in the UI of that instance.

On the console a failed run is one summary, printed at the end: each failed step, the user's
exception and the line that raised it. Dagster's console logger would print each failure event
with every stack frame of Dagster's and flowyml's machinery (pages for one ``ValueError``); those
events stay whole in the event log, and each failed step's ``error.traceback`` is the whole chain.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Mapping
from typing import Any

import dagster as dg
from dagster._core.events import RunFailureReason
from dagster._core.log_manager import LOG_RECORD_EVENT_ATTR
from dagster._utils.error import SerializableErrorInfo

from flowyml.core.context import Context
from flowyml.core.execution import StepStatus
from flowyml.core.graph import PipelineGraph, blocked, check_inputs
from flowyml.core.pipeline import Pipeline
from flowyml.core.results import ErrorInfo, PipelineResult, StepResult
from flowyml_dagster.constants import (
    CACHE_METADATA_KEY,
    DURATION_METADATA_KEY,
    ERROR_MESSAGE_METADATA_KEY,
    ERROR_TYPE_METADATA_KEY,
    PIPELINE_INPUT_METADATA_KEY,
    STEP_METADATA_KEY,
)
from flowyml_dagster.definitions import translate
from flowyml_dagster.planning import Plan
from flowyml_dagster.translator import FlowymlTranslator


def run(
    pipeline: Pipeline,
    *,
    inputs: Mapping[str, Any] | None = None,
    context: Context | Mapping[str, Any] | None = None,
    instance: dg.DagsterInstance | None = None,
    translator: FlowymlTranslator | None = None,
    cache_dir: str | None = None,
    tags: Mapping[str, str] | None = None,
    log_level: str = "WARNING",
) -> PipelineResult:
    """Run ``pipeline`` as a Dagster job in this process and return its ``PipelineResult``.

    ``instance`` defaults to ``$DAGSTER_HOME``'s instance, or an ephemeral one; ``cache_dir`` to
    the pipeline's, then flowyml's default. Steps run in this process (Dagster's in-process
    executor); for a process per step, launch the job of a code location instead. ``context``
    overrides the pipeline's context for this run only. A missing pipeline input or param raises
    before anything is launched. ``log_level`` is the console's: the
    event log keeps everything whatever it is. A failed step does not raise; at ``ERROR`` or
    below, the run's failure is printed to stderr as one summary (see the module's docstring).
    Calls from several threads run one at a time (Dagster's in-process execution redirects the
    process's output); for runs side by side, launch jobs of a code location. A step may call
    ``run`` itself, but not wait for a ``run`` in another thread: that one waits for its turn.
    """
    translator = translator or FlowymlTranslator()
    # The job of a copy whose context is this run's: params given only to this run are checked
    # and reach the steps like any other (in-process, even values that are not JSON).
    this_run = Pipeline(
        pipeline.name,
        context=pipeline.context.inherit(**dict(context or {})),
        enable_cache=pipeline.enable_cache,
        cache_dir=pipeline.cache_dir,
        description=pipeline.description,
        steps=pipeline.steps,
    )
    graph = this_run.build()
    inputs = dict(inputs or {})
    check_inputs(graph, inputs)
    translation = translate([this_run], translator=translator)
    plan = translation.plan
    chosen_cache_dir = cache_dir or pipeline.cache_dir
    defs = translation.to_definitions(
        cache_dir=str(chosen_cache_dir) if chosen_cache_dir else None,
        enable_cache=pipeline.enable_cache,
        executor=dg.in_process_executor,
    )
    job = defs.resolve_job_def(plan.job_names[pipeline.name]).with_logger_defs(
        {"console": _console_logger}
    )
    loggers = {"console": {"config": {"log_level": log_level}}}
    run_config = {**plan.run_config(this_run, this_run.context), "loggers": loggers}
    # The lock covers making the default instance too: two threads setting up a new
    # $DAGSTER_HOME's database at once collide.
    with _ONE_RUN_AT_A_TIME:
        own_instance = instance is None
        instance = instance or _default_instance()
        try:
            if graph.pipeline_inputs:
                keys = {name: plan.keys[name] for name in graph.pipeline_inputs}
                dg.materialize(
                    _input_sources(inputs, keys),
                    instance=instance,
                    run_config={"loggers": loggers},
                )
            started = time.perf_counter()
            result = job.execute_in_process(
                run_config=run_config,
                instance=instance,
                raise_on_error=False,
                tags=dict(tags or {}),
            )
            if _interrupted(result):
                message = "Interrupted (KeyboardInterrupt)"
                instance.report_run_canceled(result.dagster_run, message=message)
                raise KeyboardInterrupt
            duration = time.perf_counter() - started
            pipeline_result = _to_pipeline_result(graph, plan, result, duration)
        finally:
            if own_instance:  # closed in this thread: its SQLite connections belong to it
                instance.dispose()
    level = logging.getLevelNamesMapping().get(log_level.upper(), logging.NOTSET)
    if not pipeline_result.success and level <= logging.ERROR:
        print(_failure_summary(pipeline_result, result), file=sys.stderr)
    return pipeline_result


# Dagster's in-process execution is process-wide: it points the process's stdout and stderr at
# each step's log files and configures logging; runs in two threads at once lose the process's
# output, deadlock or fail on a locked SQLite table. Calls from several threads take turns;
# re-entrant, so a step may call ``run`` itself.
_ONE_RUN_AT_A_TIME = threading.RLock()

# Dagster's console prints these with every frame of its machinery; ``run``'s summary says them.
_SUMMARISED_EVENTS = frozenset({"STEP_FAILURE", "PIPELINE_FAILURE"})


def _without_failure_events(record: logging.LogRecord) -> bool:
    event = getattr(record, LOG_RECORD_EVENT_ATTR, None)
    return getattr(event, "event_type_value", None) not in _SUMMARISED_EVENTS


def _quiet_console(init_context: dg.InitLoggerContext) -> logging.Logger:
    console = dg.colored_console_logger.logger_fn(init_context)
    console.addFilter(_without_failure_events)
    return console


# Dagster's console logger (same config, so ``log_level`` still sets it) without the failures.
_console_logger = dg.LoggerDefinition(
    _quiet_console,
    config_schema=dg.colored_console_logger.config_schema,
    description="Dagster's console logger, leaving step and run failures to run()'s summary",
)


# A failed step's message in the summary: a message of pages would bury the rest.
SUMMARY_MESSAGE_LINES = 5
SUMMARY_MESSAGE_CHARS = 500


def _failure_summary(pipeline_result: PipelineResult, result: dg.ExecuteInProcessResult) -> str:
    """A few lines on a failed run: each failed step, its exception, the line that raised it."""
    lines = [f"pipeline '{pipeline_result.pipeline_name}' failed (Dagster run {result.run_id})"]
    raised_at = _raise_sites(result)
    failed = [r for r in pipeline_result.step_results.values() if r.status is StepStatus.FAILED]
    for step_result in failed:
        message = _shortened(str(step_result.error)).replace("\n", "\n    ")
        lines.append(f"  step '{step_result.step_name}' failed: {message}")
        lines.extend(raised_at.get(step_result.step_name, ()))
    if failed:
        lines.append("  whole traceback: result.step_results[<step>].error.traceback, or the run's")
        lines.append("  events in Dagster's UI")
    else:  # the run failed outside any step: what its failure event says, without the frames
        for event in result.all_events:
            if event.event_type_value == "PIPELINE_FAILURE":
                lines.append(f"  {(event.message or '').strip()}")
                error = getattr(event.event_specific_data, "error", None)
                if error is not None:
                    lines.append(f"  {error.message.strip()}")
    return "\n".join(lines)


def _shortened(text: str) -> str:
    """``text`` up to ``SUMMARY_MESSAGE_LINES`` lines and ``SUMMARY_MESSAGE_CHARS`` characters,
    then ``…`` when some was left out."""
    text = text.strip()
    short = "\n".join(text.splitlines()[:SUMMARY_MESSAGE_LINES])[:SUMMARY_MESSAGE_CHARS]
    return text if short == text else short.rstrip() + "…"


def _raise_sites(result: dg.ExecuteInProcessResult) -> dict[str, tuple[str, ...]]:
    """By failed step: where the user's exception was raised (see ``_raise_site``)."""
    sites: dict[str, tuple[str, ...]] = {}
    for event in result.all_events:
        if event.event_type_value == "STEP_FAILURE":
            failure = event.event_specific_data
            error = getattr(failure, "error", None)
            if error is not None:
                sites[_failed_step(failure, event.step_key or "")] = _raise_site(error)
    return sites


def _raise_site(error: SerializableErrorInfo) -> tuple[str, ...]:
    """The summary's lines on where the user's exception (the cause of the ``Failure``) was
    raised: its frame's ``File ..., line N, in f`` and source line; when it was raised from, or
    while handling, another exception, that one and its frame too, labelled. None when the
    ``Failure`` has no cause (its description is all)."""
    if error.cause is None:
        return ()
    raised = error.cause
    while not raised.stack and raised.cause is not None:
        raised = raised.cause
    lines = [*_frame(raised, "    ")]
    earlier, label = (
        (raised.cause, "raised from")
        if raised.cause is not None
        else (raised.context, "while handling")
    )
    if earlier is not None and lines:
        lines.append(f"    ({label} {_shortened(earlier.message).splitlines()[0]})")
        lines.extend(_frame(earlier, "      "))
    return tuple(lines)


def _frame(error: SerializableErrorInfo, indent: str) -> list[str]:
    """The last frame of ``error``'s stack: ``File ...`` at ``indent``, its source line below."""
    if not error.stack:
        return []
    frame = [line.strip() for line in error.stack[-1].splitlines()]
    # Python's markers under the source line (``^^^^``, ``~~~^^``) say nothing on their own.
    kept = [line for line in frame if line and set(line) - set("^~")][:2]
    return [f"{indent}{line}" if i == 0 else f"{indent}  {line}" for i, line in enumerate(kept)]


def _interrupted(result: dg.ExecuteInProcessResult) -> bool:
    """Dagster turns Ctrl-C during an in-process run into a failed run; the plain runner lets
    ``KeyboardInterrupt`` through, and so does ``run``, with the run stored as CANCELED."""
    return any(
        event.event_type_value == "PIPELINE_FAILURE"
        and getattr(event.event_specific_data, "failure_reason", None)
        is RunFailureReason.UNEXPECTED_TERMINATION
        for event in result.all_events
    )


def _default_instance() -> dg.DagsterInstance:
    """``$DAGSTER_HOME``'s instance, so the run shows in its UI; else an ephemeral one."""
    if os.environ.get("DAGSTER_HOME"):
        return dg.DagsterInstance.get()
    return dg.DagsterInstance.ephemeral()


def _input_sources(
    inputs: Mapping[str, Any], keys: Mapping[str, dg.AssetKey]
) -> list[dg.AssetsDefinition]:
    """One asset per pipeline input returning the given value: materialized, it records the
    value where the pipeline's job loads its external asset from, with lineage in the UI."""
    return [
        dg.asset(
            key=key,
            description=f"Pipeline input '{name}', given to run(inputs=...)",
            metadata={PIPELINE_INPUT_METADATA_KEY: name},
        )(_constant(inputs[name]))
        for name, key in keys.items()
    ]


def _constant(value: Any) -> Any:
    def source() -> Any:
        return value

    return source


def _to_pipeline_result(
    graph: PipelineGraph,
    plan: Plan,
    result: dg.ExecuteInProcessResult,
    duration: float,
) -> PipelineResult:
    """Read the run's events into per-step results; load every materialized value."""
    output_of_key = {
        plan.keys[output]: (step.name, output)
        for step in graph.steps
        for output in step.output_names
    }
    materialized: dict[str, dict[str, dict[str, Any]]] = {}
    failures: dict[str, ErrorInfo] = {}
    retries: dict[str, int] = {}
    for event in result.all_events:
        if event.event_type_value == "ASSET_MATERIALIZATION":
            materialization = event.event_specific_data.materialization  # type: ignore[union-attr]
            owner = output_of_key.get(materialization.asset_key)
            if owner is not None:
                metadata = {k: v.value for k, v in materialization.metadata.items()}
                materialized.setdefault(owner[0], {})[owner[1]] = metadata
        elif event.event_type_value == "STEP_UP_FOR_RETRY":
            retries[event.step_key or ""] = retries.get(event.step_key or "", 0) + 1
        elif event.event_type_value == "STEP_FAILURE":
            failure = event.event_specific_data  # type: ignore[assignment]
            failed_step = _failed_step(failure, event.step_key or "")
            failures[failed_step] = _error_info(failure)
    op_of_step = {s.name: u.op_name for u in plan.units for s in u.unit.steps}
    results: dict[str, StepResult] = {}
    outputs: dict[str, Any] = {}
    for step in (s for unit in graph.units for s in unit.steps):
        attempts_retried = retries.get(op_of_step[step.name], 0)
        stored = materialized.get(step.name, {})
        # The op stores a step's outputs one by one after the step returned: if it failed
        # storing a later one, the step failed, though the earlier ones are materialized.
        op_failure = failures.get(op_of_step[step.name])
        if step.name in failures:
            results[step.name] = StepResult(
                step.name, StepStatus.FAILED, error=failures[step.name], retries=attempts_retried
            )
        elif stored and (set(stored) == set(step.output_names) or op_failure is None):
            metadata = next(iter(stored.values()))
            values = {output: result.asset_value(plan.keys[output]) for output in stored}
            outputs.update(values)
            results[step.name] = StepResult(
                step.name,
                StepStatus.SUCCESS,
                outputs=values,
                cached=metadata.get(CACHE_METADATA_KEY) == "hit",
                retries=attempts_retried,
                duration_seconds=float(metadata.get(DURATION_METADATA_KEY, 0.0)),
            )
        elif why := blocked(graph, step, {n: r.status for n, r in results.items()}):
            results[step.name] = StepResult(step.name, why[0], reason=why[1])
        elif op_failure is not None:  # the op failed outside any step (IO, Dagster)
            results[step.name] = StepResult(
                step.name, StepStatus.FAILED, error=op_failure, retries=attempts_retried
            )
        else:
            results[step.name] = StepResult(
                step.name, StepStatus.SKIPPED, reason="condition is false"
            )
    return PipelineResult(
        pipeline_name=graph.name,
        run_id=result.run_id,
        step_results=results,
        outputs=outputs,
        duration_seconds=duration,
    )


def _failed_step(failure: Any, op_name: str) -> str:
    metadata = getattr(failure, "user_failure_data", None)
    if metadata is not None:
        step = metadata.metadata.get(STEP_METADATA_KEY)
        if step is not None:
            return str(step.value)
    return op_name


def _error_info(failure: Any) -> ErrorInfo:
    """The user's own exception (the ``Failure``'s cause) as the plain runner reports it, with
    Dagster's whole chain as the traceback."""
    error = failure.error
    if error is None:
        return ErrorInfo(type="Failure", message="step failed", traceback="")
    own = getattr(getattr(failure, "user_failure_data", None), "metadata", None) or {}
    if ERROR_TYPE_METADATA_KEY in own and ERROR_MESSAGE_METADATA_KEY in own:
        return ErrorInfo(
            type=str(own[ERROR_TYPE_METADATA_KEY].value),
            message=str(own[ERROR_MESSAGE_METADATA_KEY].value),
            traceback=error.to_string(),
        )
    root = error.cause or error
    message = root.message.strip()
    prefix = f"{root.cls_name}: "
    return ErrorInfo(
        type=root.cls_name or "Error",
        message=message.split(prefix, 1)[1] if prefix in message else message,
        traceback=error.to_string(),
    )
