"""Typed run config for a step's params, shown (and editable) in Dagster's Launchpad.

Each unit gets a ``dagster.Config`` model with one field per param its steps take from the
context. A param whose type Dagster config cannot express (``bytes``, ``set``, unions ...) falls
back to ``Any``; a param whose value cannot travel as JSON (an array, a ``SecretStr``) is
*hidden*: it never goes into run config and reaches the step from the pipeline context, so a secret
never shows in the Launchpad or the run's stored config. A param *annotated* ``SecretStr`` or
``SecretBytes`` is hidden whatever value it is given.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from types import MappingProxyType
from typing import Any, get_args, get_type_hints

import dagster as dg
import pydantic
from pydantic import SecretBytes, SecretStr

from flowyml.core.step import Step

_SCALARS = (bool, int, float, str)


@dataclass(frozen=True)
class ConfigField:
    """One param of a unit: its name and the type its run-config value must have."""

    name: str
    annotation: Any


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
    pipeline context is not JSON, and names a pydantic model cannot have as a field (``_seed``,
    ``model_config``), are left out: they stay hidden.
    """
    contexts = list(contexts)
    fields: dict[str, ConfigField] = {}
    for step in steps:
        for spec in step.signature.params:
            if (
                spec.name in fields
                or not _field_name_allowed(spec.name)
                or _is_secret(_hashable(spec.annotation))
                or any(spec.name in c and not is_json_value(c[spec.name]) for c in contexts)
            ):
                continue
            fields[spec.name] = ConfigField(spec.name, _config_type(_hashable(spec.annotation)))
        for name in step.condition_names:
            values = [c[name] for c in contexts if name in c]
            if (
                name in fields
                or not _field_name_allowed(name)
                or not values
                or not all(is_json_value(v) for v in values)
            ):
                continue
            kind = type(values[0])
            fields[name] = ConfigField(name, kind if kind in _SCALARS else Any)
    return tuple(fields.values())


def _is_secret(annotation: Any, seen: frozenset[Any] = frozenset()) -> bool:
    """A param whose type holds a ``SecretStr``/``SecretBytes`` anywhere (``Optional``, a
    container, a field of a pydantic model or dataclass) is secret whatever value it is given:
    never a run-config field, so never shown in the Launchpad or stored with the run."""
    if annotation in (SecretStr, SecretBytes):
        return True
    if annotation in seen:
        return False
    seen = seen | {annotation}
    if isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel):
        return any(_is_secret(f.annotation, seen) for f in annotation.model_fields.values())
    if dataclasses.is_dataclass(annotation):
        try:
            hints = get_type_hints(annotation)
        except Exception:  # unresolvable names: take the fields as written
            hints = {f.name: f.type for f in dataclasses.fields(annotation)}
        return any(_is_secret(hint, seen) for hint in hints.values())
    return any(_is_secret(arg, seen) for arg in get_args(annotation))


def _field_name_allowed(name: str) -> bool:
    return not name.startswith("_") and not hasattr(dg.Config, name)


def _hashable(annotation: Any) -> Any:
    try:
        hash(annotation)
    except TypeError:
        return inspect.Parameter.empty
    return annotation


def config_model(name: str, fields: tuple[ConfigField, ...]) -> type[dg.Config] | None:
    """A ``dagster.Config`` subclass with every field, or ``None`` when there are none."""
    if not fields:
        return None
    definitions: dict[str, Any] = {field.name: (field.annotation, ...) for field in fields}
    return pydantic.create_model(f"{name}_config", __base__=dg.Config, **definitions)


def config_schema(name: str, fields: tuple[ConfigField, ...]) -> dict[str, dg.Field] | None:
    """The op's Dagster config fields (typed, Launchpad-editable), or ``None`` without params.

    Every field is optional *without a default*: a default in the schema would be filled in for a
    field the run does not set and beat the pipeline's context. Unset, a field is absent from
    ``op_config`` and the step gets the context's value (which the job's default run config
    shows), else the function's own default.

    ``name`` is not part of the schema (the model's name never reaches its fields), so ops with
    the same fields share one, made once: a pydantic model per op was a fifth of a build.
    """
    if not fields:
        return None
    return dict(_fields_schema(fields))


@lru_cache(maxsize=1024)
def _fields_schema(fields: tuple[ConfigField, ...]) -> Mapping[str, dg.Field]:
    """The schema of ``fields`` (a read-only view: each op gets its own copy of the dict)."""
    model = config_model("op", fields)
    assert model is not None  # fields is not empty
    return MappingProxyType(
        {
            field_name: dg.Field(
                field.config_type, is_required=False, description=field.description
            )
            for field_name, field in model.to_fields_dict().items()
        }
    )


def run_config_values(
    fields: tuple[ConfigField, ...], context: Mapping[str, Any]
) -> dict[str, Any]:
    """The values of a pipeline's context for ``fields``: the job's default run config."""
    return {f.name: context[f.name] for f in fields if f.name in context}
