"""How a step's function receives its values: which parameter each input binds to.

Decided once, at decoration time, from the function's signature. A declared input binds to the
parameter of the same name; otherwise to the next unclaimed positional parameter, in order (then
to ``*args``). Every other parameter is a *param*, filled by name from the pipeline context or
its default.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
_NAMED = (*_POSITIONAL, inspect.Parameter.KEYWORD_ONLY)


@dataclass(frozen=True)
class ParamSpec:
    """A parameter filled from the context: its name, default and annotation."""

    name: str
    default: Any = inspect.Parameter.empty
    annotation: Any = inspect.Parameter.empty

    @property
    def required(self) -> bool:
        return self.default is inspect.Parameter.empty


@dataclass(frozen=True)
class StepSignature:
    """The binding of one function: inputs → parameters, and the params left for the context.

    ``unbound`` holds the inputs no parameter can take. A step with one can still be made and
    registered, as in the original flowyml; planning a pipeline with it refuses it, before any
    step runs.
    """

    parameters: tuple[inspect.Parameter, ...]
    input_parameters: tuple[tuple[str, str], ...]
    varargs_inputs: tuple[str, ...]
    params: tuple[ParamSpec, ...]
    unbound: tuple[str, ...] = ()

    @classmethod
    def of(cls, func: Callable[..., Any], inputs: Sequence[str]) -> StepSignature:
        parameters = tuple(inspect.signature(func).parameters.values())
        named = {p.name: p for p in parameters if p.kind in _NAMED}
        has_varargs = any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in parameters)
        claimed: dict[str, str] = {name: name for name in inputs if name in named}
        free_positional = [
            p.name for p in parameters if p.kind in _POSITIONAL and p.name not in claimed
        ]
        bound: list[tuple[str, str]] = []
        varargs: list[str] = []
        unbound: list[str] = []
        for name in inputs:
            if name in claimed:
                bound.append((name, name))
            elif free_positional:
                bound.append((name, free_positional.pop(0)))
            elif has_varargs:
                varargs.append(name)
            else:
                unbound.append(name)
        taken = {param for _, param in bound}
        hints = _type_hints(func)
        params = tuple(
            ParamSpec(p.name, p.default, hints.get(p.name, inspect.Parameter.empty))
            for p in parameters
            if p.kind in _NAMED and p.name not in taken
        )
        return cls(parameters, tuple(bound), tuple(varargs), params, tuple(unbound))

    @property
    def parameter_of_input(self) -> dict[str, str]:
        return dict(self.input_parameters)

    def arguments(
        self, inputs: Mapping[str, Any], params: Mapping[str, Any]
    ) -> tuple[list[Any], dict[str, Any]]:
        """``(args, kwargs)`` for the function, from input values and param values by name."""
        values = dict(params)
        values.update((param, inputs[name]) for name, param in self.input_parameters)
        positional_all = bool(self.varargs_inputs)
        args: list[Any] = []
        kwargs: dict[str, Any] = {}
        for parameter in self.parameters:
            kind = parameter.kind
            if kind is inspect.Parameter.VAR_POSITIONAL:
                args.extend(inputs[name] for name in self.varargs_inputs)
            elif kind is inspect.Parameter.VAR_KEYWORD:
                continue
            elif kind is inspect.Parameter.POSITIONAL_ONLY or (
                positional_all and kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
            ):
                args.append(values.get(parameter.name, parameter.default))
            elif parameter.name in values:
                kwargs[parameter.name] = values[parameter.name]
        return args, kwargs


def _type_hints(func: Callable[..., Any]) -> dict[str, Any]:
    """The function's parameter annotations as types (``from __future__ import annotations``
    makes them strings); one that cannot be resolved is left out, i.e. unchecked."""
    target = inspect.unwrap(func)
    try:
        return typing.get_type_hints(target, include_extras=True)
    except Exception:
        hints: dict[str, Any] = {}
        for name, annotation in getattr(target, "__annotations__", {}).items():
            if not isinstance(annotation, str):
                hints[name] = annotation
                continue
            try:
                hints[name] = eval(annotation, getattr(target, "__globals__", {}))
            except Exception:
                continue
        return hints


@dataclass(frozen=True)
class ConditionSignature:
    """Which names a step's ``condition`` asks for; it gets those of the step's values by name."""

    wanted: tuple[str, ...]
    required: tuple[str, ...]
    takes_all: bool

    @classmethod
    def of(cls, condition: Callable[..., Any]) -> ConditionSignature:
        parameters = inspect.signature(condition).parameters.values()
        named = [p for p in parameters if p.kind in _NAMED]
        return cls(
            wanted=tuple(p.name for p in named),
            required=tuple(p.name for p in named if p.default is inspect.Parameter.empty),
            takes_all=any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters),
        )

    def arguments(self, available: Mapping[str, Any]) -> dict[str, Any]:
        if self.takes_all:
            return dict(available)
        return {name: available[name] for name in self.wanted if name in available}
