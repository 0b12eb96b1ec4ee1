"""Pickling a step's outputs, with errors that name the output that cannot be pickled.

The same pickle serves as the cache entry and as the check that values can leave the process (on
Dagster every value does). It is written into a file as it is made, never built as one ``bytes``
first: with protocol 5 a large numpy array goes out from its own buffer, so storing a step's
outputs costs no second copy of them.
"""

from __future__ import annotations

import pickle
from collections.abc import Mapping
from typing import Any, Protocol

from flowyml.core.errors import StepOutputError

PROTOCOL = 5


class Writable(Protocol):
    def write(self, data: Any, /) -> object: ...


def dump_outputs(step: str, outputs: Mapping[str, Any], file: Writable) -> None:
    """Pickle a step's outputs into ``file``; a value that cannot be pickled is named in the
    error. When this raises, ``file`` may hold part of the pickle."""
    try:
        pickle.Pickler(file, protocol=PROTOCOL).dump(dict(outputs))
    except Exception as whole_error:
        for name, value in outputs.items():
            try:
                pickle.Pickler(_Discard(), protocol=PROTOCOL).dump(value)
            except Exception as exc:
                raise unpicklable_output(step, name, value, exc) from exc
        raise StepOutputError(step, f"outputs cannot be pickled: {whole_error}") from whole_error


def unpicklable_output(step: str, output: str, value: Any, why: object) -> StepOutputError:
    """The error for an output pickling refuses, the same wherever the pickling happens."""
    return StepOutputError(
        step, f"output '{output}' ({type(value).__qualname__}) cannot be pickled: {why}"
    )


def check_picklable(step: str, outputs: Mapping[str, Any]) -> None:
    """Raise ``StepOutputError`` naming the output that cannot be pickled, if one cannot; the
    pickle itself is thrown away as it is made."""
    dump_outputs(step, outputs, _Discard())


class _Discard:
    """A file that keeps nothing."""

    def write(self, data: Any, /) -> int:
        return memoryview(data).nbytes
