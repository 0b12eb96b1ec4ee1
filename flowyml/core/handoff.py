"""How values pass from step to step: each step gets its inputs as they were produced.

On Dagster every value goes through an IO manager (a pickle to storage and back), in a ``timeout``
child through ``fork``, on a cached re-run through the cache: a step that changes its input in
place (``raw["a_sq"] = ...``) changes only its own copy. When values are handed over in memory (the
plain runner, the steps of an execution group), this module gives the same guarantee by handing
out a deep copy, unless the taker is the last one and nobody else holds the value.
"""

from __future__ import annotations

import copy
import logging
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

logger = logging.getLogger(__name__)


class ValueHandoff:
    """Values by name, each handed to its takers as a private copy.

    ``owned`` values (loaded for this unit alone, e.g. from an IO manager) go to their last taker
    as they are; values the caller keeps (a run's results, the user's own inputs) never do.
    """

    def __init__(self, takers: Iterable[str]) -> None:
        self._values: dict[str, Any] = {}
        self._owned: set[str] = set()
        self._remaining = Counter(takers)

    def add(self, name: str, value: Any, *, owned: bool = False) -> None:
        self._values[name] = value
        if owned:
            self._owned.add(name)

    def __contains__(self, name: object) -> bool:
        return name in self._values

    def supplier(
        self, names: Iterable[str], *, isolated: bool = False, retried: bool = False
    ) -> Callable[[], dict[str, Any]]:
        """What gives one taker the values of ``names``, afresh for each of its attempts, so a
        retry never sees what the failed attempt changed. ``isolated`` takers run in a process
        of their own (a ``timeout`` child) and get the values themselves, copied by ``fork``; the
        last taker of an owned value gets it as it is, unless it may be ``retried``."""
        chosen: dict[str, tuple[Any, bool]] = {}
        for name in names:
            self._remaining[name] -= 1
            last_owner = name in self._owned and self._remaining[name] <= 0 and not retried
            chosen[name] = (self._values[name], isolated or last_owner)
        return lambda: {
            name: value if as_is else private_copy(name, value)
            for name, (value, as_is) in chosen.items()
        }


def private_copy(name: str, value: Any) -> Any:
    """A deep copy of ``value``; the value itself when it cannot be copied (a connection, a
    generator), which only the plain runner can pass on at all."""
    try:
        return copy.deepcopy(value)
    except Exception as exc:
        logger.debug("value '%s' (%s) cannot be copied (%s); passed as is", name, type(value), exc)
        return value
