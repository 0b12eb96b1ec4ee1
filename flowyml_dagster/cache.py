"""The flowyml cache as a Dagster resource, so a deployment can move it or switch it off.

Its location is fixed where the code location is built (in code, or ``$FLOWYML_CACHE_DIR`` in the
code location's environment), never by run config: the cache holds pickles, and whoever could
point it at a folder of their choosing could make a step unpickle their code. The location may be
an object-store URL (``s3://bucket/prefix``), with signed entries; see
``flowyml.core.cache_location``.
"""

from __future__ import annotations

from dataclasses import dataclass

from flowyml.core.cache_location import StepCache, open_cache_store, resolve_cache_location

CACHE_RESOURCE_KEY = "flowyml_cache"


@dataclass(frozen=True)
class FlowymlCacheResource:
    """Where step bodies keep memoized outputs.

    ``cache_dir`` (a local path or a storage URL) defaults to ``$FLOWYML_CACHE_DIR`` or the user's
    cache directory, read in the process that runs the step. ``enabled=False`` makes every step
    compute (Dagster's own ``code_version`` staleness still shows in the UI). It has no run
    config: Dagster wraps it as a resource without a config schema, and a run that tries to
    configure it is refused.

    An enabled resource checks its location when it is made (``CacheLocationError``): an unknown
    protocol, a URL with credentials, or a remote cache without ``$FLOWYML_CACHE_SECRET`` fails the
    code location's load, not every step of every run.
    """

    cache_dir: str | None = None
    enabled: bool = True

    def __post_init__(self) -> None:
        if self.enabled:
            resolve_cache_location(self.cache_dir)

    def store(self) -> StepCache | None:
        return open_cache_store(self.cache_dir) if self.enabled else None
