"""Fixtures of the trust tests: a real Dagster instance and temp dirs (``run_support``)."""

from run_support import (  # noqa: F401 - imported fixtures are registered for this directory
    cache_dir,
    instance,
    module_cache_dir,
    module_instance,
    module_tmp,
    workdir,
)
