"""Fixtures of the Dagster tests: a real Dagster instance and work directories (``run_support``),
and a real S3 server (``servers.object_store``)."""

from run_support import (  # noqa: F401 - imported fixtures are registered for this directory
    cache_dir,
    instance,
    module_cache_dir,
    module_instance,
    module_tmp,
    workdir,
)
from servers.object_store import (  # noqa: F401 - imported fixtures are registered for this directory
    s3_env,
    s3_prefix,
    s3_server,
)
