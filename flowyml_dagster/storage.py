"""Where step values are stored between steps, fixed by the code location.

Dagster's default IO manager takes ``base_dir`` from run config, and every step input is
unpickled from there: whoever may launch a run could point a step at a folder of planted pickles
and run code as the step's user. The definitions flowyml builds bind an IO manager whose location
run config cannot change; a deployment that wants another store (object storage ...) binds its own.

The IO manager's pickling is the one serialisation of a value on its way out of a step (the op
body does not pickle it again to check it). With the flowyml cache on, the value of a step with
one output is already serialised in its cache entry: the op offers that entry while the value
goes out (:func:`offered_entry`), and the IO manager gives the entry's file a second name instead
of pickling the value again (a hard link: no byte copied).

An input whose value was never stored (a job launched before the job that produces it) fails its
step naming the asset and the pipelines that produce it, which the builder records in each
asset's definition metadata: Dagster's own error is a ``FileNotFoundError`` of a path under the
instance's storage.
"""

from __future__ import annotations

import pickle
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import dagster as dg
from upath import UPath

from flowyml.core.cache_store import PinnedEntry, read_linked_outputs
from flowyml.core.errors import exception_text
from flowyml.core.serialization import unpicklable_output
from flowyml_dagster.constants import (
    PIPELINE_INPUT_METADATA_KEY,
    PRODUCED_BY_METADATA_KEY,
    STEP_METADATA_KEY,
)

# Values whose cache entry holds them alone, by thread and ``id``, while the op hands them to the
# IO manager (which stores an op's output in the op's thread): two runs in two threads of one
# process never take each other's entry.
_OFFERED: dict[tuple[int, int], tuple[Any, PinnedEntry]] = {}


@contextmanager
def offered_entry(value: Any, entry: PinnedEntry | None) -> Iterator[None]:
    """While ``value`` goes to the IO manager, ``entry`` (the cache entry of a step whose one
    output it is) is on offer to :class:`StepValueIOManager`; the entry is closed afterwards,
    whichever IO manager stored the value."""
    if entry is None:
        yield
        return
    key = (threading.get_ident(), id(value))
    _OFFERED[key] = (value, entry)
    try:
        yield
    finally:
        _OFFERED.pop(key, None)
        entry.close()


def _link_offered(obj: Any, path: UPath) -> bool:
    """Store ``obj`` at ``path`` by linking its offered cache entry; ``False`` if none is
    offered or linking fails (another filesystem: the caller pickles it instead)."""
    offer = _OFFERED.get((threading.get_ident(), id(obj)))
    if offer is None or offer[0] is not obj or path.protocol not in ("", "file"):
        return False
    temporary = _beside(path)
    try:
        offer[1].link(temporary.path)
        temporary.replace(path)
    except OSError:
        temporary.unlink(missing_ok=True)
        return False
    # When ``path`` already was this entry (a cache hit stored again), the rename of one of its
    # names over another does nothing (POSIX), and the temporary name would stay.
    temporary.unlink(missing_ok=True)
    return True


def _beside(path: UPath) -> UPath:
    """A new temporary name next to ``path``, to be renamed over it.

    ``with_name`` and ``token_hex``: the same unique sibling as ``parent / name`` with a
    ``uuid4``, at a third of the cost per step (each ``UPath`` made costs tens of µs)."""
    return path.with_name(f".{path.name}.{secrets.token_hex(16)}.tmp")


class StepValueIOManager(dg.UPathIOManager):
    """Pickles each value to its own file under ``base_dir``, the layout of Dagster's filesystem
    IO manager, with three differences that matter to a step's values:

    * the file is written beside its place and renamed over it, so a value that fails to pickle
      half-way (or a killed step) leaves the last good value in place, never a torn file;
    * a value pickling refuses (anything but an ``OSError``, which is the disk's problem and
      retried per the step's policy) fails the step as a ``StepOutputError`` naming the step and
      the output, not retried: the next attempt would return the same value;
    * a value whose cache entry is offered (:func:`offered_entry`) is stored as a hard link to
      that entry, serialised once for both; it is pickled as usual when the link cannot be made.
    """

    extension: str = ""

    def __init__(self, base_dir: str) -> None:
        self.base_dir = UPath(base_dir)
        super().__init__(base_path=self.base_dir)

    def dump_to_path(self, context: dg.OutputContext, obj: Any, path: UPath) -> None:
        if _link_offered(obj, path):
            return
        temporary = _beside(path)
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
            linked = read_linked_outputs(file)
            if linked is None:
                return pickle.load(file)
        (value,) = linked.values()  # only a step's one output is linked
        return value

    def load_input(self, context: dg.InputContext) -> Any:
        """The stored value; a missing one fails the step (not retried: retrying will not make
        it appear) saying which asset is missing and what materializes it."""
        try:
            return super().load_input(context)
        except FileNotFoundError as exc:
            # A file the unpickled value itself opens is the value's business, not a missing one.
            if exc.filename is None or not UPath(exc.filename).is_relative_to(self.base_dir):
                raise
            description = _missing_input(context, exc.filename)
        raise dg.Failure(description=description, allow_retries=False)


def _missing_input(context: dg.InputContext, path: str) -> str:
    """Why ``context``'s asset has no stored value, and what to run to give it one."""
    asset = "/".join(context.asset_key.path) if context.has_asset_key else context.name
    upstream = context.upstream_output
    metadata = (upstream.definition_metadata if upstream is not None else None) or {}
    latest = (
        context.instance.get_latest_materialization_event(context.asset_key)
        if context.has_asset_key
        else None
    )
    if latest is None:
        what = f"asset '{asset}' has never been materialized"
    else:
        what = (
            f"asset '{asset}' was materialized (run {latest.run_id}) but its value is gone "
            f"from {path}"
        )
    producers = _value(metadata.get(PRODUCED_BY_METADATA_KEY)) or {}
    pipeline_input = _value(metadata.get(PIPELINE_INPUT_METADATA_KEY))
    if producers:
        runs = " or ".join(f"pipeline '{p}' (job '{j}')" for p, j in sorted(producers.items()))
        return f"{what}; materialize it by running {runs} first"
    if pipeline_input is not None:
        return (
            f"{what}; it is pipeline input '{pipeline_input}', supplied from outside the "
            "pipelines: materialize it first (flowyml_dagster.run(inputs=...) does)"
        )
    return f"{what}; materialize it first"


def _value(entry: Any) -> Any:
    """A definition-metadata entry's plain value (Dagster may hand back a ``MetadataValue``)."""
    return entry.value if isinstance(entry, dg.MetadataValue) else entry


def instance_storage_io_manager() -> dg.IOManagerDefinition:
    """The step-value IO manager under the instance's storage directory, without config: run
    config that tries to set its location is refused before the run starts."""
    return dg.IOManagerDefinition(
        resource_fn=lambda context: StepValueIOManager(context.instance.storage_directory()),
        config_schema={},  # an empty schema: any run config for it is refused
        description="Pickles under the Dagster instance's storage directory (not run config's "
        "to move)",
    )
