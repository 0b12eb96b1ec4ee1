"""Where step values are stored between steps, fixed by the code location.

Dagster's default IO manager takes ``base_dir`` from run config, and every step input is
unpickled from there: whoever may launch a run could point a step at a folder of planted pickles
and run code as the step's user. The definitions flowyml builds bind an IO manager whose location
run config cannot change; a deployment that wants another store (object storage ...) binds its own.
"""

from __future__ import annotations

import dagster as dg


def instance_storage_io_manager() -> dg.IOManagerDefinition:
    """Dagster's filesystem IO manager under the instance's storage directory, without config:
    run config that tries to set its ``base_dir`` is refused before the run starts."""
    return dg.IOManagerDefinition(
        resource_fn=lambda context: dg.FilesystemIOManager().create_io_manager(context),
        config_schema={},  # an empty schema: any run config for it is refused
        description="Pickles under the Dagster instance's storage directory (not run config's "
        "to move)",
    )
