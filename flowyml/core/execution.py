"""The one step-execution core, shared by the plain runner and the Dagster op body.

``execute_step`` runs one attempt of one step: it evaluates the condition, looks up the cache,
calls the function (in a child process killed at the deadline when the step has a timeout), names
the outputs and stores them. Retrying is the caller's job, because Dagster retries ops itself and
a step body that also retried would multiply the attempts.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from functools import partial
from typing import Any

from flowyml.core.caching import CacheStore, pickle_outputs
from flowyml.core.errors import StepExecutionError, StepOutputError
from flowyml.core.isolation import run_with_deadline
from flowyml.core.step import Step

logger = logging.getLogger(__name__)


class StepStatus(StrEnum):
    """What happened to a step in a run."""

    SUCCESS = "success"
    SKIPPED = "skipped"
    FAILED = "failed"
    UPSTREAM_FAILED = "upstream_failed"


@dataclass(frozen=True)
class StepOutcome:
    """The result of one successful attempt: outputs by name, or a condition skip."""

    status: StepStatus
    outputs: Mapping[str, Any] = field(default_factory=dict)
    cached: bool = False
    cache_key: str | None = None
    duration_seconds: float = 0.0


def resolve_params(step: Step, context: Mapping[str, Any]) -> dict[str, Any]:
    """The step's params: the context value by name, else the function's default.

    Context names that only the condition asks for are included too, when the context has them
    (every context name, for a condition that takes ``**kwargs``).
    """
    takes_all = step.condition_signature is not None and step.condition_signature.takes_all
    wanted = context if takes_all else step.condition_names  # a **kwargs condition sees it all
    params: dict[str, Any] = {n: context[n] for n in wanted if n in context}
    for spec in step.signature.params:
        if spec.name in context:
            params[spec.name] = context[spec.name]
        elif not spec.required:
            params[spec.name] = spec.default
        else:
            raise StepExecutionError(step.name, f"parameter '{spec.name}' has no value")
    return params


def name_outputs(step: Step, value: Any) -> dict[str, Any]:
    """Map a return value onto the declared outputs.

    One output takes the value as is; N outputs take a tuple/list of N or a dict with exactly
    those names; a step without outputs is stored under its own name.
    """
    if not step.outputs:
        return {step.name: value}
    if len(step.outputs) == 1:
        return {step.outputs[0]: value}
    if isinstance(value, Mapping) and set(value) == set(step.outputs):
        return {name: value[name] for name in step.outputs}
    if isinstance(value, tuple | list) and len(value) == len(step.outputs):
        return dict(zip(step.outputs, value, strict=True))
    got = (
        f"{type(value).__name__} of {len(value)}"
        if isinstance(value, tuple | list)
        else repr(type(value).__name__)
    )
    raise StepOutputError(
        step.name,
        f"declares {len(step.outputs)} outputs {step.outputs} but returned {got}; return a tuple "
        "of that length or a dict with those names",
    )


def condition_holds(step: Step, inputs: Mapping[str, Any], params: Mapping[str, Any]) -> bool:
    """Call the step's condition with the values it names: params, inputs by input or param name."""
    if step.condition is None or step.condition_signature is None:
        return True
    available = dict(params)
    available.update(inputs)
    available.update((param, inputs[name]) for name, param in step.signature.input_parameters)
    return bool(step.condition(**step.condition_signature.arguments(available)))


def cache_key_for(step: Step, inputs: Mapping[str, Any], params: Mapping[str, Any]) -> str | None:
    """The step's cache key, or ``None`` when caching is off or no key can be made (an input
    without a fingerprint, a failing key function): a cache problem costs time, never a run."""
    if not step.cache_enabled:
        return None
    own = {name: params[name] for name in step.param_names if name in params}
    try:
        return step.get_cache_key(inputs, own)
    except Exception as exc:
        logger.warning("step '%s' not cached this run: %s: %s", step.name, type(exc).__name__, exc)
        return None


def execute_step(
    step: Step,
    inputs: Mapping[str, Any],
    params: Mapping[str, Any],
    *,
    cache: CacheStore | None = None,
    require_picklable: bool = False,
) -> StepOutcome:
    """Run one attempt of ``step``; raise whatever the attempt raised.

    ``inputs`` are the values of the step's declared inputs by name; ``params`` come from
    :func:`resolve_params`. A cache hit returns the stored outputs without calling the function.
    With ``require_picklable`` (values leave the process, as on Dagster), an output that cannot be
    pickled raises ``StepOutputError`` naming it; otherwise it is only left out of the cache.
    """
    started = time.perf_counter()
    if not condition_holds(step, inputs, params):
        return StepOutcome(StepStatus.SKIPPED, duration_seconds=time.perf_counter() - started)
    key = cache_key_for(step, inputs, params) if cache is not None else None
    if key is not None and cache is not None:
        hit, stored = cache.get(key)
        # Decorator arguments are not in the code hash: an entry stored under other output names
        # (``outputs=`` edited since) would hand downstream steps the wrong names, so it is a miss.
        if hit and isinstance(stored, Mapping) and set(stored) == set(step.output_names):
            return StepOutcome(
                StepStatus.SUCCESS,
                stored,
                cached=True,
                cache_key=key,
                duration_seconds=time.perf_counter() - started,
            )
    args, kwargs = step.signature.arguments(inputs, params)

    def call() -> dict[str, Any]:
        return name_outputs(step, step.func(*args, **kwargs))

    if step.timeout is not None:
        outputs = run_with_deadline(
            call, timeout=step.timeout, step=step.name, dumps=partial(pickle_outputs, step.name)
        )
    else:
        outputs = call()
    caching = key is not None and cache is not None
    # A timeout step's outputs already crossed a pipe as a pickle; otherwise one pickle serves
    # both the cache entry and the check.
    if caching or (require_picklable and step.timeout is None):
        try:
            payload = pickle_outputs(step.name, outputs)
        except StepOutputError as exc:
            if require_picklable:
                raise
            logger.warning("%s; the result is not cached", exc)
        else:
            if key is not None and cache is not None:
                cache.put(key, payload)
    return StepOutcome(
        StepStatus.SUCCESS, outputs, cache_key=key, duration_seconds=time.perf_counter() - started
    )
