"""Where step values are stored between steps, fixed by the code location.

Dagster's default IO manager takes ``base_dir`` from run config, and every step input is
unpickled from there: whoever may launch a run could point a step at a folder of planted pickles
and run code as the step's user. The definitions flowyml builds bind an IO manager whose location
run config cannot change; a deployment that wants another store (object storage ...) binds its own.

The IO manager's pickling is the one serialisation of a value on its way out of a step: a value
it cannot pickle fails the step as the core names it (a ``StepOutputError`` naming the step and
the output), not retried, since the next attempt would return the same value.
"""

from __future__ import annotations

import pickle
from typing import Any

import dagster as dg

from flowyml.core.errors import StepOutputError
from flowyml_dagster.translator import STEP_METADATA_KEY

# What pickling raises for a value it cannot take (a lock, a lambda, a local class, a cycle too
# deep); anything else (a full disk) is the store's problem and retried per the step's policy.
_PICKLING_ERRORS = (pickle.PicklingError, TypeError, AttributeError, RecursionError)


class StepValueIOManager(dg.IOManager):
    """Delegates to another IO manager; turns its pickling errors into named step failures."""

    def __init__(self, inner: dg.IOManager) -> None:
        self._inner = inner

    def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        try:
            self._inner.handle_output(context, obj)
        except Exception as exc:
            if not _is_pickling_error(exc):
                raise
            step = (context.definition_metadata or {}).get(STEP_METADATA_KEY, context.step_key)
            output = "/".join(context.asset_key.path) if context.has_asset_key else context.name
            error = StepOutputError(
                str(step), f"output '{output}' ({type(obj).__qualname__}) cannot be pickled: {exc}"
            )
            raise dg.Failure(
                description=f"{type(error).__name__}: {error}", allow_retries=False
            ) from error

    def load_input(self, context: dg.InputContext) -> Any:
        return self._inner.load_input(context)


def _is_pickling_error(exc: BaseException) -> bool:
    """The error, or the error Dagster wrapped it in (its filesystem IO manager re-raises a
    lambda's as a ``DagsterInvariantViolationError``), is pickling refusing the value."""
    return isinstance(exc, _PICKLING_ERRORS) or isinstance(exc.__cause__, _PICKLING_ERRORS)


def instance_storage_io_manager() -> dg.IOManagerDefinition:
    """Dagster's filesystem IO manager under the instance's storage directory, without config:
    run config that tries to set its ``base_dir`` is refused before the run starts."""
    return dg.IOManagerDefinition(
        resource_fn=lambda context: StepValueIOManager(
            dg.FilesystemIOManager().create_io_manager(context)
        ),
        config_schema={},  # an empty schema: any run config for it is refused
        description="Pickles under the Dagster instance's storage directory (not run config's "
        "to move)",
    )
