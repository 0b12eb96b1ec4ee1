"""Where step values are stored between steps, fixed by the code location.

Dagster's default IO manager takes ``base_dir`` from run config, and every step input is
unpickled from there: whoever may launch a run could point a step at a folder of planted pickles
and run code as the step's user. The definitions flowyml builds bind an IO manager whose location
run config cannot change; a deployment that wants another store (object storage ...) binds its own.

The IO manager's pickling is the one serialisation of a value on its way out of a step (the op
body does not pickle it again to check it).
"""

from __future__ import annotations

import pickle
import uuid
from typing import Any

import dagster as dg
from upath import UPath

from flowyml.core.errors import exception_text
from flowyml.core.serialization import unpicklable_output
from flowyml_dagster.constants import STEP_METADATA_KEY


class StepValueIOManager(dg.UPathIOManager):
    """Pickles each value to its own file under ``base_dir``, the layout of Dagster's filesystem
    IO manager, with two differences that matter to a step's values:

    * the file is written beside its place and renamed over it, so a value that fails to pickle
      half-way (or a killed step) leaves the last good value in place, never a torn file;
    * a value pickling refuses (anything but an ``OSError``, which is the disk's problem and
      retried per the step's policy) fails the step as a ``StepOutputError`` naming the step and
      the output, not retried: the next attempt would return the same value.
    """

    extension: str = ""

    def __init__(self, base_dir: str) -> None:
        super().__init__(base_path=UPath(base_dir))

    def dump_to_path(self, context: dg.OutputContext, obj: Any, path: UPath) -> None:
        temporary = path.parent / f".{path.name}.{uuid.uuid4().hex}.tmp"
        try:
            with temporary.open("wb") as file:
                pickle.dump(obj, file, protocol=pickle.HIGHEST_PROTOCOL)
            temporary.replace(path)
        except OSError:
            temporary.unlink(missing_ok=True)
            raise
        except BaseException as exc:
            temporary.unlink(missing_ok=True)
            if not isinstance(exc, Exception):
                raise
            step = (context.definition_metadata or {}).get(STEP_METADATA_KEY, context.step_key)
            output = "/".join(context.asset_key.path) if context.has_asset_key else context.name
            error = unpicklable_output(str(step), output, obj, exception_text(exc))
            raise dg.Failure(
                description=f"{type(error).__name__}: {error}", allow_retries=False
            ) from error

    def load_from_path(self, context: dg.InputContext, path: UPath) -> Any:
        with path.open("rb") as file:
            return pickle.load(file)


def instance_storage_io_manager() -> dg.IOManagerDefinition:
    """The step-value IO manager under the instance's storage directory, without config: run
    config that tries to set its location is refused before the run starts."""
    return dg.IOManagerDefinition(
        resource_fn=lambda context: StepValueIOManager(context.instance.storage_directory()),
        config_schema={},  # an empty schema: any run config for it is refused
        description="Pickles under the Dagster instance's storage directory (not run config's "
        "to move)",
    )
