"""Pickling a step's outputs, with errors that name the output that cannot be pickled.

The same pickling serves as the cache entry and as the check that values can leave the process (on
Dagster every value does). It is written into a file as it is made, never built as one ``bytes``
first: with protocol 5 a large numpy array goes out from its own buffer, so storing a step's
outputs costs no second copy of them.

The outputs are written as a sequence of pickles: the tuple of output names, then each value as a
pickle of its own. A value's bytes in an entry are thus exactly ``pickle.dumps(value)``, so where
a value also has to leave the process as a pickle of its own (Dagster's IO manager), those bytes
can be copied instead of pickling the value a second time (``dump_outputs`` says where they are).
"""

from __future__ import annotations

import pickle
from collections.abc import Mapping
from dataclasses import dataclass
from typing import IO, Any, Protocol

from flowyml.core.errors import StepOutputError

PROTOCOL = 5


class Writable(Protocol):
    def write(self, data: Any, /) -> object: ...


@dataclass(frozen=True)
class Span:
    """Where one value's own pickle lies in what ``dump_outputs`` wrote: ``length`` bytes from
    ``start``."""

    start: int
    length: int


def dump_outputs(step: str, outputs: Mapping[str, Any], file: Writable) -> dict[str, Span]:
    """Pickle a step's outputs into ``file``: the tuple of names, then one pickle per value; a
    value that cannot be pickled is named in the error. Returns where each value's pickle lies.
    When this raises, ``file`` may hold part of the pickles."""
    counted = _Counting(file)
    pickle.Pickler(counted, protocol=PROTOCOL).dump(tuple(outputs))
    spans: dict[str, Span] = {}
    for name, value in outputs.items():
        start = counted.written
        try:
            # A Pickler per value: its memo starts empty, so the value's pickle stands alone.
            pickle.Pickler(counted, protocol=PROTOCOL).dump(value)
        except Exception as exc:
            raise unpicklable_output(step, name, value, exc) from exc
        spans[name] = Span(start, counted.written - start)
    return spans


def load_outputs(file: IO[bytes]) -> dict[str, Any]:
    """The outputs ``dump_outputs`` wrote into ``file``, by name; ``ValueError`` for a payload
    of another layout."""
    names = pickle.load(file)
    if not isinstance(names, tuple) or not all(isinstance(name, str) for name in names):
        raise ValueError(f"the payload starts with a {type(names).__name__}, not output names")
    return {name: pickle.load(file) for name in names}


def unpicklable_output(step: str, output: str, value: Any, why: object) -> StepOutputError:
    """The error for an output pickling refuses, the same wherever the pickling happens."""
    return StepOutputError(
        step, f"output '{output}' ({type(value).__qualname__}) cannot be pickled: {why}"
    )


def check_picklable(step: str, outputs: Mapping[str, Any]) -> None:
    """Raise ``StepOutputError`` naming the output that cannot be pickled, if one cannot; the
    pickle itself is thrown away as it is made."""
    dump_outputs(step, outputs, _Discard())


class _Counting:
    """Passes writes on to ``file``, counting the bytes."""

    def __init__(self, file: Writable) -> None:
        self._file = file
        self.written = 0

    def write(self, data: Any, /) -> None:
        self._file.write(data)
        self.written += memoryview(data).nbytes


class _Discard:
    """A file that keeps nothing."""

    def write(self, data: Any, /) -> int:
        return memoryview(data).nbytes
