"""Pipeline context: named parameters injected into steps by parameter name."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from flowyml.core.binding import StepSignature
from flowyml.core.step import Step


class Context(Mapping[str, Any]):
    """Parameters for a pipeline run, with attribute and item access.

    ``inherit(**overrides)`` makes a child context that sees every parent value unless it
    overrides it; chains of any depth resolve to the nearest definition. ``update(mapping)`` is
    the one way to change a context in place (attribute assignment is refused, so a typo cannot
    silently add a parameter).
    """

    __slots__ = ("_params", "_parent")

    def __init__(self, _parent: Context | None = None, **params: Any) -> None:
        object.__setattr__(self, "_params", dict(params))
        object.__setattr__(self, "_parent", _parent)

    def inherit(self, **overrides: Any) -> Context:
        """A child context: ``overrides`` win, every other name comes from this context."""
        return Context(self, **overrides)

    def update(self, values: Mapping[str, Any]) -> None:
        """Add or replace parameters of this context (its children see the new values)."""
        values = dict(values)
        if bad := [k for k in values if not isinstance(k, str) or not k.isidentifier()]:
            raise TypeError(f"context parameter names must be identifiers, got {bad!r}")
        self._params.update(values)

    def inject_params(self, func: Callable[..., Any]) -> dict[str, Any]:
        """The values this context gives ``func``: one for each of its parameters the context
        has a value for, as the runners fill a step's params (a step's inputs are left out)."""
        return {name: self[name] for name in _param_names(func) if name in self}

    def validate_for_step(
        self, func: Callable[..., Any], exclude: Iterable[str] | None = None
    ) -> list[str]:
        """Names of ``func``'s required parameters this context has no value for, leaving out
        ``exclude`` (and a step's inputs)."""
        excluded = set(exclude or ())
        return [
            name
            for name in _param_names(func, required_only=True)
            if name not in excluded and name not in self
        ]

    def to_dict(self) -> dict[str, Any]:
        """Every visible parameter, parents first so nearer definitions win."""
        merged = self._parent.to_dict() if self._parent is not None else {}
        merged.update(self._params)
        return merged

    def __getitem__(self, name: str) -> Any:
        if name in self._params:
            return self._params[name]
        if self._parent is not None:
            return self._parent[name]
        raise KeyError(name)

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"context has no parameter {name!r}") from None

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(
            f"cannot set context.{name}; use context.update({{{name!r}: ...}}) or "
            "context.inherit(...)"
        )

    def __iter__(self) -> Iterator[str]:
        return iter(self.to_dict())

    def __len__(self) -> int:
        return len(self.to_dict())

    def __reduce__(self) -> tuple[Any, ...]:
        return (_restore, (self._parent, self._params))

    def __repr__(self) -> str:
        return f"Context({', '.join(f'{k}={v!r}' for k, v in self.to_dict().items())})"


def _param_names(func: Callable[..., Any], *, required_only: bool = False) -> list[str]:
    """Names of ``func``'s parameters a context fills, by the runners' binding rule: for a step,
    those not bound to an input; for a plain function, every named one but ``self``/``cls``."""
    signature = func.signature if isinstance(func, Step) else StepSignature.of(func, ())
    return [
        p.name
        for p in signature.params
        if p.name not in ("self", "cls") and (p.required or not required_only)
    ]


def _restore(parent: Context | None, params: dict[str, Any]) -> Context:
    return Context(parent, **params)


def context(**params: Any) -> Context:
    """Make a :class:`Context` from keyword parameters: ``context(learning_rate=0.1)``."""
    return Context(**params)
