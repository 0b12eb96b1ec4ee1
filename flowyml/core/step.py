"""The ``@step`` decorator, the ``Step`` it makes, and the registry behind auto-discovery.

Every option is validated here, at decoration time, so a typo in a declaration fails when the
module is imported, with the step and the field in the message, not hours into a run. One check
waits for the pipeline build: whether the function can take every declared input (flowyml 2.x
code may make such a ``Step`` and register it before it is used), still before any step runs.
"""

from __future__ import annotations

import copy
import functools
import inspect
import json
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, overload

from flowyml.core.binding import ConditionSignature, StepSignature
from flowyml.core.errors import StepDefinitionError

# Imported where first used, not with flowyml: the resource and retry models need pydantic (the
# first ``@step`` imports it), and values and code are fingerprinted only for a cache key.
if TYPE_CHECKING:
    from pydantic import ValidationError

    from flowyml.core.resources import ResourceRequirements
    from flowyml.core.retry import RetryPolicy

CACHE_STRATEGIES = ("code_hash", "input_hash")
# Starting the child that enforces a timeout takes ~10 ms: a shorter deadline can never be met.
MIN_TIMEOUT_SECONDS = 0.05
# Longest segment of an input/output name, in UTF-8 bytes: names become file names in Dagster's
# storage (and in object stores), where 255 is the common limit.
MAX_NAME_SEGMENT_BYTES = 255
CacheStrategy = Literal["code_hash", "input_hash"]
CacheOption = bool | str | Callable[..., Any] | None


# The fingerprint functions, imported by the first cache key; looked up through a cached call,
# not an import statement in each method, since a cached run takes a key for every step.
@functools.cache
def _fingerprint() -> Callable[..., str]:
    from flowyml.core.fingerprint import fingerprint

    return fingerprint


@functools.cache
def _code_fingerprint() -> Callable[..., str]:
    from flowyml.core.code_fingerprint import code_fingerprint

    return code_fingerprint


def _default_retry_policy() -> RetryPolicy:
    from flowyml.core.retry import RetryPolicy

    return RetryPolicy()


@dataclass(frozen=True)
class StepConfig:
    """A read-only record of a step's declaration, as the original flowyml exposes it."""

    name: str
    func: Callable[..., Any]
    inputs: list[str]
    outputs: list[str]
    cache: CacheOption
    retry: int
    timeout: float | None
    resources: Mapping[str, Any] | ResourceRequirements | None
    tags: dict[str, str]
    condition: Callable[..., Any] | None
    execution_group: str | None
    source_file: str | None
    source_line: int | None
    retry_policy: RetryPolicy = field(default_factory=_default_retry_policy)
    pipelines: tuple[str, ...] = ()


class Step:
    """A pipeline step: a function plus how it is wired, cached, retried and resourced.

    ``resources`` is what the user wrote (a dict reads back as that dict); ``requirements`` is
    the same, validated into :class:`ResourceRequirements`, and is what the runners use.
    ``tags`` values are strings; a number is kept as its text and a dict as its JSON, as
    Dagster keeps op tags (so ``{"dagster-k8s/config": {...}}`` can be written as a dict).
    ``inspect.signature(step)`` is the function's signature.
    """

    def __init__(
        self,
        func: Callable[..., Any],
        name: str | None = None,
        inputs: list[str] | None = None,
        outputs: list[str] | None = None,
        cache: CacheOption = "code_hash",
        retry: int | RetryPolicy | Mapping[str, Any] = 0,
        timeout: float | None = None,
        resources: Mapping[str, Any] | ResourceRequirements | None = None,
        tags: Mapping[str, Any] | None = None,
        condition: Callable[..., Any] | None = None,
        execution_group: str | None = None,
        pipeline: str | Iterable[str] | None = None,
    ) -> None:
        if not callable(func):
            raise StepDefinitionError(repr(func), "func", "a step must decorate a callable")
        self.func = func
        self.__wrapped__ = func
        self.name = _check_name(name, func)
        _check_plain_function(self.name, func)
        self.inputs = _names(self.name, "inputs", inputs)
        self.outputs = _names(self.name, "outputs", outputs)
        if both := sorted(set(self.inputs) & set(self.outputs)):
            raise StepDefinitionError(self.name, "outputs", f"{both} is also an input of the step")
        self.cache = _check_cache(self.name, cache)
        self.retry_policy = _check_retry(self.name, retry)
        self.retry = self.retry_policy.max_retries
        self.timeout = _check_timeout(self.name, timeout)
        self.requirements = _check_resources(self.name, resources)
        # Read back as given: a dict stays a dict (``step.resources["gpu"] == 1``).
        self.resources = (
            copy.deepcopy(dict(resources)) if isinstance(resources, Mapping) else resources
        )
        self.tags = _check_tags(self.name, tags)
        if pipeline is None and "pipeline" in self.tags:  # the original scopes by this tag
            pipeline = [name.strip() for name in self.tags["pipeline"].split(",")]
        self.pipelines = _check_pipelines(self.name, pipeline)
        if self.pipelines:
            self.tags["pipeline"] = ",".join(self.pipelines)
        if condition is not None and not callable(condition):
            raise StepDefinitionError(
                self.name, "condition", f"must be callable, got {type(condition).__name__}"
            )
        self.condition = condition
        self.condition_signature = ConditionSignature.of(condition) if condition else None
        if execution_group is not None and (
            not isinstance(execution_group, str) or not execution_group.strip()
        ):
            raise StepDefinitionError(
                self.name, "execution_group", f"must be a non-empty string, got {execution_group!r}"
            )
        self.execution_group = execution_group
        try:
            self.signature = StepSignature.of(func, self.inputs)
        except (TypeError, ValueError) as exc:
            raise StepDefinitionError(
                self.name, "func", f"has no usable signature: {exc}"
            ) from None
        self.description = inspect.getdoc(func)
        self.source_code, self.source_file, self.source_line = _source_of(func)
        self.config = StepConfig(
            name=self.name,
            func=func,
            inputs=self.inputs,
            outputs=self.outputs,
            cache=self.cache,
            retry=self.retry,
            timeout=self.timeout,
            resources=self.resources,
            tags=self.tags,
            condition=self.condition,
            execution_group=self.execution_group,
            source_file=self.source_file,
            source_line=self.source_line,
            retry_policy=self.retry_policy,
            pipelines=self.pipelines,
        )

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Call the function directly, as if it were not decorated."""
        return self.func(*args, **kwargs)

    def __repr__(self) -> str:
        return f"Step({self.name!r}, inputs={self.inputs}, outputs={self.outputs})"

    def with_options(self, **options: Any) -> Step:
        """A copy of this step with some ``@step`` options replaced (``retry=3``, ``timeout=60``).

        For deployments that tune a step without editing its code (the Dagster component's
        YAML): the copy goes through the same constructor, so a bad value is refused with the
        same error as in the decorator, naming the step and the field. The copy is not
        registered; the original is unchanged.
        """
        declared: dict[str, Any] = {
            "name": self.name,
            "inputs": self.inputs,
            "outputs": self.outputs,
            "cache": self.cache,
            "retry": self.retry_policy,
            "timeout": self.timeout,
            "resources": self.resources,
            "tags": self.tags,
            "condition": self.condition,
            "execution_group": self.execution_group,
            "pipeline": self.pipelines or None,
        }
        for option in options:
            if option not in declared:
                raise StepDefinitionError(
                    self.name, option, f"is not an option of @step ({', '.join(declared)})"
                )
        return Step(self.func, **{**declared, **options})

    @property
    def identity(self) -> str:
        """``module.qualname`` of the function."""
        return f"{getattr(self.func, '__module__', '?')}.{getattr(self.func, '__qualname__', '?')}"

    @property
    def location(self) -> str:
        """``file:line`` of the function's definition, for messages."""
        return f"{self.source_file or '?'}:{self.source_line or '?'}"

    def redefines(self, other: Step) -> bool:
        """True when this step is ``other`` defined again (a re-run notebook cell, a reloaded
        module, a function that declares steps called once more), which replaces it; False for
        two live steps that merely share a name, which must never collapse into one.

        Both need the same ``module.qualname``. Freshly compiled code is a redefinition, except
        that two lambdas must also start on the same line. The *same* code object made into a
        function twice is a factory: a redefinition only if it declares the same inputs and
        outputs over the same closure values (``make_extract("age")`` and
        ``make_extract("income")`` are two steps).
        """
        if self.identity != other.identity:
            return False
        mine = getattr(self.func, "__code__", None)
        theirs = getattr(other.func, "__code__", None)
        if mine is None or theirs is None:
            return True
        if mine is not theirs:
            return "<lambda>" not in self.identity or mine.co_firstlineno == theirs.co_firstlineno
        return (self.inputs, self.outputs, self.pipelines) == (
            other.inputs,
            other.outputs,
            other.pipelines,
        ) and _same_closure(self.func, other.func)

    @property
    def binding_problem(self) -> str | None:
        """Why the function cannot receive every declared input, or ``None`` when it can."""
        if not self.signature.unbound:
            return None
        names = ", ".join(f"'{n}'" for n in self.signature.unbound)
        return (
            f"{names} has no parameter to bind to: name a parameter after the input or add a "
            "positional parameter for it"
        )

    @property
    def output_names(self) -> list[str]:
        """Names the step's values are stored under: its outputs, or its own name if none."""
        return self.outputs or [self.name]

    @property
    def cache_enabled(self) -> bool:
        return self.cache is not False and self.cache is not None

    @property
    def cache_strategy(self) -> CacheStrategy | Callable[..., Any] | None:
        """``"code_hash"``, ``"input_hash"``, the user's key function, or ``None`` (no caching)."""
        if self.cache is True:
            return "code_hash"
        if self.cache is False:
            return None
        return self.cache  # type: ignore[return-value]

    @property
    def param_names(self) -> tuple[str, ...]:
        """Names of the function's parameters filled from the context."""
        return tuple(p.name for p in self.signature.params)

    @property
    def condition_names(self) -> tuple[str, ...]:
        """Context names the condition asks for beyond the step's own inputs and params."""
        if self.condition_signature is None:
            return ()
        own = {*self.inputs, *self.signature.parameter_of_input.values(), *self.param_names}
        return tuple(n for n in self.condition_signature.wanted if n not in own)

    def get_code_hash(
        self, *, secret_key: bytes | None = None, redact_secrets: bool = False
    ) -> str:
        """Fingerprint of the code the step runs: its own syntax tree (decorators excluded), the
        user functions, methods and classes it reaches, the module constants and closure values
        it reads, and the versions of the third-party distributions it uses (see
        :mod:`flowyml.core.code_fingerprint`). Read afresh each time: a notebook may have
        changed a constant since. A secret the code reads (a ``SecretStr`` default) enters as
        an HMAC under ``secret_key``, as secret params do (see :meth:`get_cache_key`), or, with
        ``redact_secrets``, as its type alone: the same in every process, for what is shown."""
        return _code_fingerprint()(self.func, secret_key=secret_key, redact_secrets=redact_secrets)

    def get_input_hash(self, inputs: Mapping[str, Any]) -> str:
        """Fingerprint of the real content of the input values."""
        return _fingerprint()(dict(inputs))

    @property
    def scope(self) -> tuple[str, str]:
        """Where the step is defined (source file, qualified name): keys that leave the code out
        still never match another project's or another step's entries."""
        source = self.source_file or getattr(self.func, "__module__", "?")
        return source, getattr(self.func, "__qualname__", self.name)

    @property
    def wiring(self) -> tuple[Any, ...]:
        """Which input reaches which parameter, and which output gets which value: swapping
        ``inputs=`` or ``outputs=`` changes the result even when nothing else changes."""
        return (
            self.signature.input_parameters,
            self.signature.varargs_inputs,
            tuple(self.output_names),
        )

    def get_cache_key(
        self,
        inputs: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        *,
        secret_key: bytes | None = None,
    ) -> str:
        """``"<name>:<hash>"``: equal keys mean the cached outputs may be reused.

        Every key covers the wiring (:attr:`wiring`). ``code_hash`` adds the code
        (:meth:`get_code_hash`), inputs and params, so equal keys mean equal computations;
        ``input_hash`` adds the step's :attr:`scope`, inputs and params (code edits keep the
        cache); a callable gets ``(inputs, params)`` and its return value joins the scope.
        Secret values (``SecretStr``) enter only as an HMAC under ``secret_key``, so a published
        key does not let anyone test guesses. A step without caching gets ``"<name>:no-cache"``.
        """
        inputs = dict(inputs or {})
        params = dict(params or {})
        strategy = self.cache_strategy
        if strategy is None:
            return f"{self.name}:no-cache"
        if callable(strategy):
            content: Any = ("callable", self.scope, self.wiring, strategy(inputs, params))
        elif strategy == "input_hash":
            content = ("input_hash", self.scope, self.wiring, inputs, params)
        else:
            code = self.get_code_hash(secret_key=secret_key)
            content = ("code_hash", code, self.wiring, inputs, params)
        return f"{self.name}:{_fingerprint()(content, secret_key=secret_key)}"


class StepRegistry:
    """Steps by name, in registration order, for ``Pipeline(auto_discover=True)``.

    Defining the same function again (a re-run notebook cell, a reloaded module) replaces the
    old step; any other step under a taken name is an error (see :meth:`Step.redefines`).
    """

    def __init__(self) -> None:
        self._steps: dict[str, Step] = {}

    def register(self, step: Step) -> None:
        """Add ``step``; the same step (or its redefinition) again replaces it.

        Raises :class:`StepDefinitionError` (a ``ValueError``) for a different step under a
        name already taken.
        """
        if not isinstance(step, Step):
            raise TypeError(f"register() takes a Step, got {type(step).__name__}")
        existing = self._steps.get(step.name)
        if existing is not None and existing is not step and not step.redefines(existing):
            raise StepDefinitionError(
                step.name,
                "name",
                f"already registered by another step ({existing.identity}, defined at "
                f"{existing.location}); give {step.identity} at {step.location} another name=, "
                "or register=False",
            )
        self._steps[step.name] = step

    def unregister(self, name: str) -> None:
        self._steps.pop(name, None)

    def get_by_name(self, name: str) -> Step | None:
        """The step registered under ``name``, or ``None``."""
        return self._steps.get(name)

    def get_all(self, pipeline: str | None = None) -> list[Step]:
        """All steps, or those of ``pipeline``: its scoped steps plus every unscoped step."""
        return [
            s
            for s in self._steps.values()
            if pipeline is None or not s.pipelines or pipeline in s.pipelines
        ]

    def pipeline_names(self) -> list[str]:
        """Every pipeline name that some registered step is scoped to, in first-seen order."""
        return list(dict.fromkeys(p for s in self._steps.values() for p in s.pipelines))

    def clear(self) -> None:
        self._steps.clear()

    def __len__(self) -> int:
        return len(self._steps)

    def __contains__(self, name: object) -> bool:
        return name in self._steps

    def __repr__(self) -> str:
        return f"StepRegistry({list(self._steps)})"


_global_registry = StepRegistry()


def get_registered_steps(pipeline: str | None = None) -> list[Step]:
    """Registered steps, optionally only those a pipeline of that name discovers."""
    return _global_registry.get_all(pipeline)


def clear_step_registry() -> None:
    """Forget every registered step (tests, notebooks)."""
    _global_registry.clear()


def get_step_registry() -> StepRegistry:
    return _global_registry


@overload
def step(_func: Callable[..., Any], /) -> Step: ...


@overload
def step(
    _func: None = None,
    *,
    inputs: list[str] | None = None,
    outputs: list[str] | None = None,
    cache: CacheOption = "code_hash",
    retry: int | RetryPolicy | Mapping[str, Any] = 0,
    timeout: float | None = None,
    resources: Mapping[str, Any] | ResourceRequirements | None = None,
    tags: Mapping[str, Any] | None = None,
    name: str | None = None,
    condition: Callable[..., Any] | None = None,
    execution_group: str | None = None,
    pipeline: str | Iterable[str] | None = None,
    register: bool = True,
) -> Callable[[Callable[..., Any]], Step]: ...


def step(
    _func: Callable[..., Any] | None = None,
    *,
    inputs: list[str] | None = None,
    outputs: list[str] | None = None,
    cache: CacheOption = "code_hash",
    retry: int | RetryPolicy | Mapping[str, Any] = 0,
    timeout: float | None = None,
    resources: Mapping[str, Any] | ResourceRequirements | None = None,
    tags: Mapping[str, Any] | None = None,
    name: str | None = None,
    condition: Callable[..., Any] | None = None,
    execution_group: str | None = None,
    pipeline: str | Iterable[str] | None = None,
    register: bool = True,
) -> Step | Callable[[Callable[..., Any]], Step]:
    """Make a function a pipeline step; usable as ``@step`` or ``@step(...)``.

    ``retry`` is a number of retries or a :class:`RetryPolicy` (delay, backoff, jitter);
    ``timeout`` is enforced by running the step in a child process killed at the deadline;
    ``pipeline`` scopes auto-discovery to that pipeline (or those pipelines). With
    ``register=False`` the step is only used through ``Pipeline.add_step``.
    """

    if not isinstance(register, bool):
        raise StepDefinitionError(
            name or getattr(_func, "__name__", "?"),
            "register",
            f"must be True or False, got {register!r}",
        )

    def decorator(func: Callable[..., Any]) -> Step:
        made = Step(
            func,
            name=name,
            inputs=inputs,
            outputs=outputs,
            cache=cache,
            retry=retry,
            timeout=timeout,
            resources=resources,
            tags=tags,
            condition=condition,
            execution_group=execution_group,
            pipeline=pipeline,
        )
        if register:
            _global_registry.register(made)
        return made

    return decorator if _func is None else decorator(_func)


def _check_name(name: str | None, func: Callable[..., Any]) -> str:
    """The step's name: also the name its value is stored under when it has no outputs, so it
    must be a storage path too."""
    if name is None:
        name = getattr(func, "__name__", None)
        if name is None:
            raise StepDefinitionError(
                repr(func), "name", f"a {type(func).__name__} has no __name__: give the step name="
            )
    if not isinstance(name, str) or not name.strip():
        raise StepDefinitionError(repr(name), "name", "must be a non-empty string")
    if problem := storage_path_problem(name):
        raise StepDefinitionError(name, "name", f"{name!r} {problem}")
    return name


def _names(step: str, field_name: str, names: Any) -> list[str]:
    if names is None:
        return []
    if isinstance(names, str | bytes) or not isinstance(names, list | tuple):
        raise StepDefinitionError(
            step, field_name, f"must be a list of strings, got {type(names).__name__} {names!r}"
        )
    for item in names:
        if not isinstance(item, str) or not item.strip():
            raise StepDefinitionError(
                step, field_name, f"every name must be a non-empty string, got {item!r}"
            )
        if problem := storage_path_problem(item):
            raise StepDefinitionError(step, field_name, f"{item!r} {problem}")
    if duplicates := sorted({n for n in names if names.count(n) > 1}):
        raise StepDefinitionError(step, field_name, f"{duplicates} declared more than once")
    return list(names)


def _same_closure(one: Callable[..., Any], two: Callable[..., Any]) -> bool:
    cells = zip(
        getattr(one, "__closure__", None) or (),
        getattr(two, "__closure__", None) or (),
        strict=True,
    )
    for a, b in cells:
        try:
            if a.cell_contents is not b.cell_contents and not bool(
                a.cell_contents == b.cell_contents
            ):
                return False
        except Exception:  # an empty cell, or values without a plain equality (arrays)
            return False
    return True


def storage_path_problem(name: str) -> str | None:
    """Why ``name`` cannot be a storage path (``None`` if it can).

    Input and output names become asset keys, and IO managers turn keys into paths: a name with
    ``..`` could be written (or read) outside the storage folder.
    """
    if "\0" in name or any(ord(c) < 32 for c in name):
        return "contains a control character (NUL, newline ...)"
    if name.startswith("/") or name.endswith("/"):
        return "starts or ends with '/'; write segments separated by '/', like 'data/train'"
    for segment in name.split("/"):
        if segment.strip() in ("", ".", ".."):
            return f"has the segment {segment!r}; every '/'-separated segment must be a name"
        if len(segment.encode("utf-8")) > MAX_NAME_SEGMENT_BYTES:
            return f"has a segment longer than {MAX_NAME_SEGMENT_BYTES} bytes"
    return None


def _check_plain_function(step: str, func: Callable[..., Any]) -> None:
    """Refuse functions whose call does not compute the step's value: a coroutine or generator
    would be stored as the output, and a method would bind an input to ``self``."""
    target = inspect.unwrap(func)
    if inspect.iscoroutinefunction(target) or inspect.isasyncgenfunction(target):
        raise StepDefinitionError(
            step, "func", "is 'async def'; write a plain def that calls asyncio.run(...)"
        )
    if inspect.isgeneratorfunction(target):
        raise StepDefinitionError(
            step, "func", "is a generator (it yields); return the value (e.g. a list) instead"
        )
    qualname = getattr(target, "__qualname__", "")
    owner = qualname.rpartition(".")[0]
    if owner and not owner.endswith("<locals>"):
        parameters = list(inspect.signature(target).parameters)
        if parameters and parameters[0] in ("self", "cls"):
            raise StepDefinitionError(
                step,
                "func",
                f"is the method {qualname}; a step must be a function: decorate a module-level "
                "function (it may call the method)",
            )


def _check_cache(step: str, cache: Any) -> CacheOption:
    if cache is None or isinstance(cache, bool) or callable(cache) or cache in CACHE_STRATEGIES:
        return cache  # type: ignore[no-any-return]
    raise StepDefinitionError(
        step,
        "cache",
        f"unknown strategy {cache!r}: use 'code_hash', 'input_hash', True, False or a callable "
        "(inputs, params) -> key",
    )


def _check_retry(step: str, retry: Any) -> RetryPolicy:
    from pydantic import ValidationError

    from flowyml.core.retry import RetryPolicy

    if isinstance(retry, RetryPolicy):
        return retry
    if isinstance(retry, bool) or not isinstance(retry, int | Mapping):
        raise StepDefinitionError(
            step, "retry", f"must be a number of retries or a RetryPolicy, got {retry!r}"
        )
    try:
        return (
            RetryPolicy(**retry) if isinstance(retry, Mapping) else RetryPolicy(max_retries=retry)
        )
    except ValidationError as exc:
        raise _field_error(step, "retry", exc) from None


def _check_timeout(step: str, timeout: Any) -> float | None:
    if timeout is None:
        return None
    if (
        isinstance(timeout, bool)
        or not isinstance(timeout, int | float)
        or not math.isfinite(timeout)
        or timeout < MIN_TIMEOUT_SECONDS
    ):
        raise StepDefinitionError(
            step,
            "timeout",
            f"must be a number of seconds of at least {MIN_TIMEOUT_SECONDS}, got {timeout!r}",
        )
    return timeout


def _check_resources(step: str, resources: Any) -> ResourceRequirements | None:
    if resources is None:
        return None
    from pydantic import ValidationError

    from flowyml.core.resources import ResourceRequirements

    if isinstance(resources, ResourceRequirements):
        return resources
    if not isinstance(resources, Mapping):
        raise StepDefinitionError(
            step,
            "resources",
            f"must be a ResourceRequirements or a dict, got {type(resources).__name__}",
        )
    try:
        return ResourceRequirements(**resources)
    except ValidationError as exc:
        raise _field_error(step, "resources", exc) from None


def _check_tags(step: str, tags: Any) -> dict[str, str]:
    if tags is None:
        return {}
    if not isinstance(tags, Mapping):
        raise StepDefinitionError(step, "tags", f"must be a dict, got {type(tags).__name__}")
    checked: dict[str, str] = {}
    for key, value in tags.items():
        if not isinstance(key, str) or not key:
            raise StepDefinitionError(step, "tags", f"keys must be non-empty strings, got {key!r}")
        if isinstance(value, bool | int | float):
            value = str(value)
        elif isinstance(value, Mapping):  # structured config (dagster-k8s/config): JSON text
            value = _json_tag(step, key, value)
        if not isinstance(value, str):
            raise StepDefinitionError(
                step, f"tags[{key!r}]", f"values must be strings, got {type(value).__name__}"
            )
        checked[key] = value
    return checked


def _json_tag(step: str, key: str, value: Mapping[str, Any]) -> str:
    try:
        return json.dumps(value)
    except (TypeError, ValueError) as exc:
        raise StepDefinitionError(step, f"tags[{key!r}]", f"a dict must be JSON: {exc}") from None


def _check_pipelines(step: str, pipeline: Any) -> tuple[str, ...]:
    if pipeline is None:
        return ()
    names = (pipeline,) if isinstance(pipeline, str) else pipeline
    if not isinstance(names, Iterable):
        raise StepDefinitionError(step, "pipeline", f"must be a name, got {pipeline!r}")
    names = tuple(names)
    if not names or not all(isinstance(n, str) and n.strip() for n in names):
        raise StepDefinitionError(
            step, "pipeline", f"must be a non-empty pipeline name, got {pipeline!r}"
        )
    return names


def _field_error(step: str, field_name: str, exc: ValidationError) -> StepDefinitionError:
    """The first pydantic error as a StepDefinitionError on ``field.sub.field``."""
    first = exc.errors()[0]
    location = ".".join(str(part) for part in first["loc"])
    message = first["msg"].removeprefix("Value error, ")
    if field_name == "retry" and location == "max_retries":
        location = ""
    return StepDefinitionError(
        step, f"{field_name}.{location}" if location else field_name, message
    )


def _source_of(func: Callable[..., Any]) -> tuple[str, str | None, int | None]:
    try:
        source = inspect.getsource(func)
        _, line = inspect.getsourcelines(func)
        return source, inspect.getsourcefile(func), line
    except (OSError, TypeError):
        return "# Source code not available", None, None
