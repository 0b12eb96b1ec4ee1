"""Pipeline context: named parameters injected into steps by parameter name."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any


class Context(Mapping[str, Any]):
    """Read-only parameters for a pipeline run, with attribute and item access.

    ``inherit(**overrides)`` makes a child context that sees every parent value unless it
    overrides it; chains of any depth resolve to the nearest definition.
    """

    __slots__ = ("_params", "_parent")

    def __init__(self, _parent: Context | None = None, **params: Any) -> None:
        object.__setattr__(self, "_params", dict(params))
        object.__setattr__(self, "_parent", _parent)

    def inherit(self, **overrides: Any) -> Context:
        """A child context: ``overrides`` win, every other name comes from this context."""
        return Context(self, **overrides)

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
        raise AttributeError("Context is read-only; use inherit(**overrides) for other values")

    def __iter__(self) -> Iterator[str]:
        return iter(self.to_dict())

    def __len__(self) -> int:
        return len(self.to_dict())

    def __reduce__(self) -> tuple[Any, ...]:
        return (_restore, (self._parent, self._params))

    def __repr__(self) -> str:
        return f"Context({', '.join(f'{k}={v!r}' for k, v in self.to_dict().items())})"


def _restore(parent: Context | None, params: dict[str, Any]) -> Context:
    return Context(parent, **params)


def context(**params: Any) -> Context:
    """Make a :class:`Context` from keyword parameters: ``context(learning_rate=0.1)``."""
    return Context(**params)
