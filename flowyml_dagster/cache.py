"""The flowyml cache as a Dagster resource, so a deployment can move it or switch it off.

Its location is fixed where the code location is built (in code, or ``$FLOWYML_CACHE_DIR`` in the
code location's environment), never by run config: the cache holds pickles, and whoever could
point it at a folder of their choosing could make a step unpickle their code.
"""

from __future__ import annotations

from dataclasses import dataclass

from flowyml.core.cache_store import CacheStore


@dataclass(frozen=True)
class FlowymlCacheResource:
    """Where step bodies keep memoized outputs.

    ``cache_dir`` defaults to ``$FLOWYML_CACHE_DIR`` or the user's cache directory, read in the
    process that runs the step. ``enabled=False`` makes every step compute (Dagster's own
    ``code_version`` staleness still shows in the UI). It has no run config: Dagster wraps it as a
    resource without a config schema, and a run that tries to configure it is refused.
    """

    cache_dir: str | None = None
    enabled: bool = True

    def store(self) -> CacheStore | None:
        return CacheStore(self.cache_dir) if self.enabled else None
