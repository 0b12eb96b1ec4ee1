"""The flowyml cache as a Dagster resource, so a deployment can move it or switch it off."""

from __future__ import annotations

import dagster as dg

from flowyml.core.caching import CacheStore

CACHE_RESOURCE_KEY = "flowyml_cache"


class FlowymlCacheResource(dg.ConfigurableResource):
    """Where step bodies keep memoized outputs.

    ``cache_dir`` defaults to ``$FLOWYML_CACHE_DIR`` or the user's cache directory, read in the
    process that runs the step. ``enabled=False`` makes every step compute (Dagster's own
    ``code_version`` staleness still shows in the UI).
    """

    cache_dir: str | None = None
    enabled: bool = True

    def store(self) -> CacheStore | None:
        return CacheStore(self.cache_dir) if self.enabled else None
