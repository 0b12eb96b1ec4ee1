"""The one step-execution core, shared by the plain runner and the Dagster op body.

``execute_step`` runs one attempt of one step: it evaluates the condition, looks up the cache,
calls the function, names the outputs and stores them. With a ``timeout`` the whole attempt
(condition, cache key, cache read, the call and the cache write) runs in a child process killed
at the deadline. ``run_attempts`` is the one retry loop: the plain runner and an execution group's
op use it; Dagster retries a single step's op itself with the same policy and the same rule of
what is not retried (:func:`retryable`).
"""

from __future__ import annotations

import logging
import time
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from flowyml.core.cache_location import StepCache
from flowyml.core.errors import (
    CacheEntryError,
    StepExecutionError,
    StepOutputError,
    StepParamError,
    exception_text,
)
from flowyml.core.handoff import private_copy
from flowyml.core.params import ParamTypeError, typed_param
from flowyml.core.serialization import check_picklable, dump_outputs
from flowyml.core.step import Step

if TYPE_CHECKING:
    from flowyml.core.cache_store import PayloadWriter, PinnedEntry
    from flowyml.core.isolation import Pickled

logger = logging.getLogger(__name__)
# Reasons each step was not cached, already warned about: a step warns once per process.
_warned_uncached: weakref.WeakKeyDictionary[Step, set[str]] = weakref.WeakKeyDictionary()


class StepStatus(StrEnum):
    """What happened to a step in a run."""

    SUCCESS = "success"
    SKIPPED = "skipped"
    FAILED = "failed"
    UPSTREAM_FAILED = "upstream_failed"


@dataclass(frozen=True)
class StepOutcome:
    """The result of one successful attempt: outputs by name, or a condition skip.

    ``cache_note`` says why a step that asked for caching was not cached this time (an input or a
    global without a fingerprint), so Dagster can show it next to ``flowyml/cache: off``.
    ``pinned`` is the cache entry holding ``outputs``, held open when the caller asked for it and
    the store could (see ``execute_step``); the caller closes it.
    """

    status: StepStatus
    outputs: Mapping[str, Any] = field(default_factory=dict)
    cached: bool = False
    cache_key: str | None = None
    duration_seconds: float = 0.0
    cache_note: str | None = None
    pinned: PinnedEntry | None = None


@dataclass(frozen=True)
class Attempts:
    """How the attempts at one step ended: its outcome, or the last error, and the retries."""

    outcome: StepOutcome | None
    error: Exception | None
    retries: int


def resolve_params(step: Step, context: Mapping[str, Any]) -> dict[str, Any]:
    """The step's params: its own copy of the context value by name (typed by the param's
    annotation, see :mod:`flowyml.core.params`), else the function's default. A step that
    changes a param in place changes neither the pipeline's context nor another step's value.

    Context names that only the condition asks for are included too, when the context has them
    (every context name, for a condition that takes ``**kwargs``).
    """
    takes_all = step.condition_signature is not None and step.condition_signature.takes_all
    wanted = context if takes_all else step.condition_names  # a **kwargs condition sees it all
    params: dict[str, Any] = {n: private_copy(n, context[n]) for n in wanted if n in context}
    for spec in step.signature.params:
        if spec.name in context:
            value = private_copy(spec.name, context[spec.name])
            try:
                params[spec.name] = typed_param(spec.name, spec.annotation, value)
            except ParamTypeError as exc:
                raise StepParamError(step.name, str(exc)) from None
        elif not spec.required:
            params[spec.name] = spec.default
        else:
            raise StepExecutionError(step.name, f"parameter '{spec.name}' has no value")
    return params


def retryable(exc: BaseException) -> bool:
    """Whether another attempt could end differently. A return value that does not fit the
    outputs or cannot be pickled, a param of the wrong type, and an input whose held cache entry
    no longer loads fail the same way every time."""
    return isinstance(exc, Exception) and not isinstance(
        exc, StepOutputError | StepParamError | CacheEntryError
    )


def run_attempts(
    step: Step,
    attempt: Callable[[], StepOutcome],
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> Attempts:
    """Call ``attempt`` until it succeeds or the step's retry policy gives up."""
    policy = step.retry_policy
    for number in range(policy.max_attempts):
        try:
            return Attempts(attempt(), None, number)
        except Exception as exc:
            if number < policy.max_retries and retryable(exc):
                delay = policy.delay_before_retry(number + 1)
                logger.warning(
                    "step '%s' attempt %d/%d failed (%s); retrying in %.2fs",
                    step.name, number + 1, policy.max_attempts, exception_text(exc), delay,
                )  # fmt: skip
                sleep(delay)
                continue
            logger.error(
                "step '%s' failed after %d attempt(s): %s",
                step.name, number + 1, exception_text(exc),
            )  # fmt: skip
            return Attempts(None, exc, number)
    raise AssertionError("unreachable: the last attempt returns")


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


def cache_key_for(
    step: Step, inputs: Mapping[str, Any], params: Mapping[str, Any], cache: StepCache | None
) -> tuple[str | None, str | None]:
    """``(key, None)``, or ``(None, why)`` when the step cannot be cached this time (an input or
    a global without a fingerprint, a failing key function): a cache problem costs time, never a
    run, and is reported once per process."""
    if cache is None or not step.cache_enabled:
        return None, None
    own = {name: params[name] for name in step.param_names if name in params}
    try:
        return step.get_cache_key(inputs, own, secret_key=cache.secret_key), None
    except Exception as exc:
        why = _culprit(inputs, own, cache.secret_key) or f"{type(exc).__name__}: {exc}"
        _warn_uncached(step, why)
        return None, why


def _warn_uncached(step: Step, why: str) -> None:
    """One warning per step and reason in a process, not one per run."""
    reasons = _warned_uncached.setdefault(step, set())
    if why not in reasons:
        reasons.add(why)
        logger.warning("step '%s' is not cached: %s", step.name, why)


def _culprit(inputs: Mapping[str, Any], params: Mapping[str, Any], secret_key: bytes) -> str | None:
    """Which input or param has no fingerprint, for the warning (``None``: neither has)."""
    from flowyml.core.fingerprint import fingerprint

    for kind, values in (("input", inputs), ("param", params)):
        for name, value in values.items():
            try:
                fingerprint(value, secret_key=secret_key)
            except Exception as exc:
                return f"{kind} '{name}' ({type(value).__qualname__}) has no fingerprint: {exc}"
    return None


def execute_step(
    step: Step,
    inputs: Mapping[str, Any],
    params: Mapping[str, Any],
    *,
    cache: StepCache | None = None,
    pin_from: int | None = None,
) -> StepOutcome:
    """Run one attempt of ``step``; raise whatever the attempt raised.

    ``inputs`` are the values of the step's declared inputs by name; ``params`` come from
    :func:`resolve_params`. A cache hit returns the stored outputs without calling the function.
    An output that cannot be pickled is only left out of the cache (with a warning): where values
    leave the process (Dagster's IO manager), that serialisation names it. With ``pin_from``, the
    outcome also holds the outputs' cache entry open where the store can (an entry of that many
    bytes or more on a local disk, read or written in this process: not for a ``timeout`` step).
    """
    if step.timeout is None:
        return _attempt(step, inputs, params, cache, pin_from=pin_from)
    from flowyml.core.isolation import run_with_deadline  # only steps with a timeout need it

    if cache is not None and step.cache_enabled:
        # The key is taken in the forked child: import its code here, once, not in every child.
        import flowyml.core.code_fingerprint  # noqa: F401

    return run_with_deadline(
        lambda: _attempt(step, inputs, params, cache),
        timeout=step.timeout,
        step=step.name,
        dumps=lambda outcome: _dump_outcome(step, outcome),
    )


def _attempt(
    step: Step,
    inputs: Mapping[str, Any],
    params: Mapping[str, Any],
    cache: StepCache | None,
    *,
    pin_from: int | None = None,
) -> StepOutcome:
    started = time.perf_counter()
    if not condition_holds(step, inputs, params):
        return StepOutcome(StepStatus.SKIPPED, duration_seconds=time.perf_counter() - started)
    key, note = cache_key_for(step, inputs, params, cache)
    pinned: PinnedEntry | None = None
    if key is not None and cache is not None:
        hit, stored, pinned = cache.get_pinned(key, pin_from)
        if hit and isinstance(stored, Mapping) and set(stored) == set(step.output_names):
            return StepOutcome(
                StepStatus.SUCCESS,
                stored,
                cached=True,
                cache_key=key,
                duration_seconds=time.perf_counter() - started,
                pinned=pinned,
            )
        if pinned is not None:
            pinned.close()
            pinned = None
    args, kwargs = step.signature.arguments(inputs, params)
    outputs = name_outputs(step, step.func(*args, **kwargs))
    if key is not None and cache is not None:

        def dump(file: PayloadWriter) -> None:
            dump_outputs(step.name, outputs, file)

        try:
            _, pinned = cache.put_pinned(key, dump, pin_from)
        except StepOutputError as exc:
            note = exc.message
            _warn_uncached(step, note)
            key = None
    return StepOutcome(
        StepStatus.SUCCESS,
        outputs,
        cache_key=key,
        duration_seconds=time.perf_counter() - started,
        cache_note=note,
        pinned=pinned,
    )


def _dump_outcome(step: Step, outcome: StepOutcome) -> Pickled:
    """The outcome for the trip out of a ``timeout`` child, large buffers out of band (no copy of
    an array in the child, nor in the parent); an output that cannot make the trip is named (the
    error travels back instead)."""
    from flowyml.core.isolation import dumps_out_of_band  # imported by execute_step already

    try:
        return dumps_out_of_band(outcome)
    except Exception:
        check_picklable(step.name, outcome.outputs)  # raises, naming the output
        raise
