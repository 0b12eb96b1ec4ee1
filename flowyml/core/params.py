"""Params from the context, typed by the step's annotations: one rule for every runner.

A context value reaches a step as its annotation says, checked and converted with pydantic in
strict mode: ``1`` for a ``float`` param becomes ``1.0``, a dict for a pydantic-model param
becomes the model, a ``str`` for a ``SecretStr`` param becomes a ``SecretStr``; ``"3"`` for an
``int`` param is refused (as Dagster's run config refuses it). Both runners call this, so a step
sees the same value, and its cache key is the same, whichever runs it.
"""

from __future__ import annotations

import inspect
from functools import lru_cache
from typing import TYPE_CHECKING, Any

# pydantic is imported by the first annotated param checked, not with flowyml.
if TYPE_CHECKING:
    from pydantic import ConfigDict, TypeAdapter

_ARBITRARY: ConfigDict = {"arbitrary_types_allowed": True}


class ParamTypeError(TypeError):
    """A context value does not fit the param's annotation; the caller adds step and pipeline."""


def typed_param(name: str, annotation: Any, value: Any) -> Any:
    """``value`` as ``annotation`` says (unchanged without an annotation pydantic understands)."""
    adapter = _adapter(annotation)
    if adapter is None:
        return value
    try:
        return adapter.validate_python(value, strict=True)
    except Exception as exc:
        from pydantic import ValidationError

        if not isinstance(exc, ValidationError):
            raise
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise ParamTypeError(
            f"param '{name}'{f' (at {where})' if where else ''}: {_shown(value)} does not fit "
            f"{_type_name(annotation)}: {first['msg']}"
        ) from None


def _adapter(annotation: Any) -> TypeAdapter[Any] | None:
    if annotation is inspect.Parameter.empty or annotation is Any:
        return None
    try:
        return _cached_adapter(annotation)
    except TypeError:  # unhashable annotation: build it each time
        return _build_adapter(annotation)


@lru_cache(maxsize=512)
def _cached_adapter(annotation: Any) -> TypeAdapter[Any] | None:
    return _build_adapter(annotation)


def _build_adapter(annotation: Any) -> TypeAdapter[Any] | None:
    """A validator for ``annotation``: pydantic's own, an ``isinstance`` check for a class it
    does not know (a DataFrame), or ``None`` when the annotation is not a type at all."""
    from pydantic import PydanticSchemaGenerationError, TypeAdapter

    try:
        return TypeAdapter(annotation)
    except PydanticSchemaGenerationError:
        pass
    except Exception:
        return None
    try:
        return TypeAdapter(annotation, config=_ARBITRARY)
    except Exception:
        return None


def _type_name(annotation: Any) -> str:
    return getattr(annotation, "__qualname__", None) or repr(annotation)


def _shown(value: Any) -> str:
    """The value for a message: its type only, so a secret never lands in an error."""
    return f"a {type(value).__qualname__}"
