"""How values pass from step to step: each step gets its inputs as they were produced.

On Dagster every value goes through an IO manager (a pickle to storage and back), in a ``timeout``
child through ``fork``, on a cached re-run through the cache: a step that changes its input in
place (``raw["a_sq"] = ...``) changes only its own copy. When values are handed over in memory (the
plain runner, the steps of an execution group), this module gives the same guarantee by handing
out a deep copy, unless the taker is the last one and nobody else holds the value.

A copy doubles the memory of a large value. When the cache holds a step's outputs in an entry
the run keeps open (``PinnedEntry``: a large entry on a local disk), the plain runner lets go of
the step's values instead, and each taker, and the run's result at the end, loads its own copy
from the entry: one copy in memory at a time. It does so only for values it can trust the entry
to give back as they are (:func:`reloads_exactly`), and for all of a step's outputs at once, so
the result's outputs that shared an object still share it.
"""

from __future__ import annotations

import copy
import logging
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flowyml.core.cache_store import PinnedEntry

logger = logging.getLogger(__name__)

# A run holds at most this many entries open (a file descriptor each, out of the usual 1024 a
# process may have, which the cache itself needs too); past it, values are copied as before.
MAX_HELD_ENTRIES = 64


class ValueHandoff:
    """Values by name, each handed to its takers as a private copy.

    ``owned`` values (loaded for this unit alone, e.g. from an IO manager) go to their last taker
    as they are; values the caller keeps (a run's results, the user's own inputs) never do.
    Values let go of for their entry (:meth:`add_pinned`) are loaded from it instead; ``close``
    lets go of the entries.
    """

    def __init__(self, takers: Iterable[str]) -> None:
        self._values: dict[str, Any] = {}
        self._owned: set[str] = set()
        self._pinned: dict[str, PinnedEntry] = {}
        # A cache hit's value of a one-output step: loaded for this run alone, so its first
        # taker may have it as it is instead of loading another copy.
        self._spare: dict[str, Any] = {}
        self._entries: list[PinnedEntry] = []
        self._remaining = Counter(takers)

    def add(self, name: str, value: Any, *, owned: bool = False) -> None:
        self._values[name] = value
        if owned:
            self._owned.add(name)

    @property
    def can_hold(self) -> bool:
        """Whether another entry may be held open (see ``MAX_HELD_ENTRIES``)."""
        return len(self._entries) < MAX_HELD_ENTRIES

    def add_pinned(self, outputs: Mapping[str, Any], entry: PinnedEntry, *, hit: bool) -> bool:
        """Let go of a step's ``outputs`` (written, or loaded for a ``hit``), which ``entry``
        holds too: ``True`` when taken (the caller lets go of them as well and gets them back
        with :meth:`reclaim`). ``False``, and ``entry`` closed, when nobody takes them or the
        entry might not give one back as it is (see :func:`reloads_exactly`): the caller adds
        them as usual."""
        taken = any(self._remaining[name] > 0 for name in outputs)
        if not (taken and all(reloads_exactly(value) for value in outputs.values())):
            entry.close()
            return False
        self._entries.append(entry)
        self._pinned.update(dict.fromkeys(outputs, entry))
        if hit and len(outputs) == 1:
            self._spare.update(outputs)
        return True

    def reclaim(self, names: Sequence[str]) -> dict[str, Any]:
        """The values of one step's outputs ``names`` for the run's result: the spare as it is
        if no taker had it, else loaded from their entry (once, so shared objects stay shared).
        ``CacheEntryError`` if the entry no longer loads."""
        if len(names) == 1 and names[0] in self._spare:
            return {names[0]: self._spare.pop(names[0])}
        outputs = self._pinned[names[0]].load()
        return {name: outputs[name] for name in names}

    def close(self) -> None:
        """Let go of every entry (their files close; the cache keeps its own copies)."""
        for entry in self._entries:
            entry.close()
        self._entries.clear()

    def __contains__(self, name: object) -> bool:
        return name in self._values or name in self._pinned

    def supplier(
        self, names: Iterable[str], *, isolated: bool = False, retried: bool = False
    ) -> Callable[[], dict[str, Any]]:
        """What gives one taker the values of ``names``, afresh for each of its attempts, so a
        retry never sees what the failed attempt changed. ``isolated`` takers run in a process
        of their own (a ``timeout`` child) and get the values themselves, copied by ``fork``; the
        last taker of an owned value gets it as it is, and the first of a spare, unless it may
        be ``retried``."""
        chosen: dict[str, tuple[Any, bool]] = {}
        from_entry: dict[str, PinnedEntry] = {}
        for name in names:
            self._remaining[name] -= 1
            if name in self._pinned:
                if name in self._spare and not retried:  # the taker's now
                    chosen[name] = (self._spare.pop(name), True)
                else:
                    from_entry[name] = self._pinned[name]
                continue
            last_owner = name in self._owned and self._remaining[name] <= 0 and not retried
            chosen[name] = (self._values[name], isolated or last_owner)

        def supply() -> dict[str, Any]:
            values = {
                name: value if as_is else private_copy(name, value)
                for name, (value, as_is) in chosen.items()
            }
            # One load per input: two inputs that were one object are two copies, as on Dagster.
            values.update((name, entry.load()[name]) for name, entry in from_entry.items())
            return values

        return supply


def reloads_exactly(value: Any) -> bool:
    """Whether ``value`` is of a kind whose pickle surely loads back as an equal, writable,
    independent value: exactly a ``str`` or ``bytes``, a writable numpy array of a plain dtype (a
    read-only one would come back read-only; a subclass may lose its state), or a pandas frame
    or series whose every part (index, column labels, columns) holds numbers, dates, pandas' own
    types or strings. The plain runner lets go of a value only if it is one of these (the big
    values of ML pipelines); another object's pickle may not load (an exception whose
    ``__init__`` takes other arguments), and the run would have lost it."""
    if type(value) in (str, bytes, bytearray):
        return True
    numpy = sys.modules.get("numpy")
    if numpy is not None and type(value) is numpy.ndarray:
        return not value.dtype.hasobject and bool(value.flags.writeable)
    pandas = sys.modules.get("pandas")
    if pandas is None or type(value) not in (pandas.DataFrame, pandas.Series):
        return False
    frame = value.to_frame() if type(value) is pandas.Series else value
    parts = [frame.index, frame.columns, *(column for _, column in frame.items())]
    return all(_plain_pandas_part(part, pandas) for part in parts)


def _plain_pandas_part(part: Any, pandas: Any) -> bool:
    """Whether a pandas index or column holds only what ``reloads_exactly`` trusts."""
    dtype = part.dtype
    if isinstance(dtype, pandas.CategoricalDtype):
        return _plain_pandas_part(dtype.categories, pandas)
    if isinstance(dtype, pandas.api.extensions.ExtensionDtype):
        return type(dtype).__module__.partition(".")[0] == "pandas"
    if not dtype.hasobject:
        return True
    return pandas.api.types.infer_dtype(part, skipna=True) in ("string", "empty")


def private_copy(name: str, value: Any) -> Any:
    """A deep copy of ``value``; the value itself when it cannot be copied (a connection, a
    generator), which only the plain runner can pass on at all."""
    try:
        return copy.deepcopy(value)
    except Exception as exc:
        logger.debug("value '%s' (%s) cannot be copied (%s); passed as is", name, type(value), exc)
        return value
