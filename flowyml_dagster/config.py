"""Typed run config for a step's params, shown (and editable) in Dagster's Launchpad.

Each unit gets a ``dagster.Config`` model with one field per param its steps take from the
context. A param whose type Dagster config cannot express (``bytes``, ``set``, unions ...) falls
back to ``Any``; a param whose value cannot travel as JSON (an array, a ``SecretStr``) is
*hidden*: it never goes into run config and reaches the step from the pipeline context, so a secret
never shows in the Launchpad or the run's stored config.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import dagster as dg
import pydantic
from pydantic import SecretBytes, SecretStr

from flowyml.core.step import Step

_SCALARS = (bool, int, float, str)


@dataclass(frozen=True)
class ConfigField:
    """One param of a unit: its name, config type, and function default (if it has one)."""

    name: str
    annotation: Any
    default: Any = inspect.Parameter.empty

    @property
    def required(self) -> bool:
        return self.default is inspect.Parameter.empty


def is_json_value(value: Any) -> bool:
    """True if ``value`` survives a JSON round trip unchanged (so it can live in run config)."""
    if isinstance(value, SecretStr | SecretBytes):
        return False
    try:
        return json.loads(json.dumps(value)) == value
    except (TypeError, ValueError):
        return False


@lru_cache(maxsize=256)
def _config_type(annotation: Any) -> Any:
    """``annotation`` if Dagster config accepts it, else ``Any``."""
    if annotation is inspect.Parameter.empty:
        return Any
    try:
        probe = pydantic.create_model("probe", __base__=dg.Config, value=(annotation, None))
        probe.to_config_schema()
    except Exception:
        return Any
    return annotation


def config_fields(
    steps: Iterable[Step], contexts: Iterable[Mapping[str, Any]]
) -> tuple[ConfigField, ...]:
    """The run-config fields of a unit: its steps' params and condition context names.

    A name appears once (the first step that takes it decides its type). Names whose value in any
    pipeline context, or whose default, is not JSON are left out: they stay hidden.
    """
    contexts = list(contexts)
    fields: dict[str, ConfigField] = {}
    for step in steps:
        for spec in step.signature.params:
            if spec.name in fields or not _travels(spec.name, spec.default, contexts):
                continue
            annotation = _config_type(_hashable(spec.annotation))
            fields[spec.name] = ConfigField(spec.name, annotation, _json_default(spec.default))
        for name in step.condition_names:
            values = [c[name] for c in contexts if name in c]
            if name in fields or not values or not all(is_json_value(v) for v in values):
                continue
            kind = type(values[0])
            fields[name] = ConfigField(name, kind if kind in _SCALARS else Any)
    return tuple(fields.values())


def _travels(name: str, default: Any, contexts: list[Mapping[str, Any]]) -> bool:
    if any(name in c and not is_json_value(c[name]) for c in contexts):
        return False
    return default is inspect.Parameter.empty or default is None or is_json_value(default)


def _json_default(default: Any) -> Any:
    return default if default is inspect.Parameter.empty or is_json_value(default) else None


def _hashable(annotation: Any) -> Any:
    try:
        hash(annotation)
    except TypeError:
        return inspect.Parameter.empty
    return annotation


def config_model(name: str, fields: tuple[ConfigField, ...]) -> type[dg.Config] | None:
    """A ``dagster.Config`` subclass named after the unit, or ``None`` when it has no fields."""
    if not fields:
        return None
    definitions: dict[str, Any] = {}
    for field in fields:
        if field.required:
            definitions[field.name] = (field.annotation, ...)
        else:
            annotation = field.annotation if field.default is not None else field.annotation | None
            if annotation is Any or field.annotation is Any:
                annotation = Any
            definitions[field.name] = (annotation, field.default)
    return pydantic.create_model(f"{name}_config", __base__=dg.Config, **definitions)


def run_config_values(
    fields: tuple[ConfigField, ...], context: Mapping[str, Any]
) -> dict[str, Any]:
    """The values of a pipeline's context for ``fields``: the job's default run config."""
    return {f.name: context[f.name] for f in fields if f.name in context}
