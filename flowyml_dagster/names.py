"""Names Dagster accepts, made deterministically from flowyml names.

Op, job and output names must match ``^[A-Za-z0-9_]+$`` and avoid a few reserved words
(``context``, ``config``, ``input`` ...). Asset keys take any text, so an output name is only split
on ``/`` into key segments.
"""

from __future__ import annotations

import keyword
import re

_INVALID = re.compile(r"[^A-Za-z0-9_]")
# Dagster's reserved names (dagster._core.definitions.utils.DISALLOWED_NAMES), kept here so that
# naming never needs to import Dagster internals.
_RESERVED = frozenset(
    {"context", "conf", "config", "meta", "arg_dict", "dict", "input_arg_dict",
     "output_arg_dict", "int", "str", "float", "bool", "input", "output", "type"}
    | set(keyword.kwlist)
)  # fmt: skip


def dagster_name(raw: str) -> str:
    """``raw`` as a valid Dagster name: invalid characters become ``_``, reserved words get ``_``.

    >>> dagster_name("train-model v2"), dagster_name("context")
    ('train_model_v2', 'context_')
    """
    name = _INVALID.sub("_", raw.strip()) or "_"
    return f"{name}_" if name in _RESERVED else name


def key_path(output_name: str) -> list[str]:
    """Asset key segments of an output name: ``"data/train"`` → ``["data", "train"]``."""
    return [segment for segment in output_name.split("/") if segment]
