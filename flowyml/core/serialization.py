"""Pickling a step's outputs, with errors that name the output that cannot be pickled.

The same bytes serve as the cache entry and as the check that values can leave the process (on
Dagster every value does).
"""

from __future__ import annotations

import pickle
from collections.abc import Mapping
from typing import Any

from flowyml.core.errors import StepOutputError


def pickle_outputs(step: str, outputs: Mapping[str, Any]) -> bytes:
    """Pickle a step's outputs; a value that cannot be pickled is named in the error."""
    try:
        return pickle.dumps(dict(outputs), protocol=5)
    except Exception as whole_error:
        for name, value in outputs.items():
            try:
                pickle.dumps(value, protocol=5)
            except Exception as exc:
                raise StepOutputError(
                    step, f"output '{name}' ({type(value).__qualname__}) cannot be pickled: {exc}"
                ) from exc
        raise StepOutputError(step, f"outputs cannot be pickled: {whole_error}") from whole_error
