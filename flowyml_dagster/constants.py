"""Every tag, metadata and resource key that crosses from definition time to run time.

A key is written where the definitions are built (the translator, the builder) or by the op body,
and read somewhere else: by the op body or the IO manager in a step's process, by ``run`` reading
the event log, by dagster-k8s launching a pod, by the UI. One module, so the writer and every
reader name the same constant and a renamed key cannot leave a reader behind.
"""

from __future__ import annotations

# Resource keys: bound by the builder, looked up by the op body.
CACHE_RESOURCE_KEY = "flowyml_cache"

# Op tags and pools, read by Dagster's executors and run launchers.
# dagster-k8s's own key (``dagster_k8s.job.USER_DEFINED_K8S_CONFIG_KEY``), kept as a string so
# that building definitions never imports dagster-k8s.
K8S_CONFIG_TAG = "dagster-k8s/config"
# The op tag dagster-celery routes a step's task by (``dagster_celery.tags``, an optional package).
CELERY_QUEUE_TAG = "dagster-celery/queue"
# GPU units share this pool; ``dagster instance concurrency set gpu N`` caps them.
GPU_POOL = "gpu"

# Job tags: on every run of a pipeline's job.
PIPELINE_TAG = "flowyml/pipeline"

# Definition metadata of a step's assets (the UI; the IO manager and ``run`` read the step).
STEP_METADATA_KEY = "flowyml/step"
CACHE_STRATEGY_METADATA_KEY = "flowyml/cache_strategy"
PIPELINES_METADATA_KEY = "flowyml/pipelines"
RETRY_METADATA_KEY = "flowyml/retry"
RESOURCES_METADATA_KEY = "flowyml/resources"
EXECUTION_GROUP_METADATA_KEY = "flowyml/execution_group"
# User tags that Dagster's strict asset tags refuse, kept as metadata instead.
LOOSE_TAGS_METADATA_KEY = "flowyml/tags"
# Definition metadata of a pipeline input's external asset (and of ``run``'s source for it).
PIPELINE_INPUT_METADATA_KEY = "flowyml/pipeline_input"
# ``{pipeline: job}`` of the jobs that materialize an asset, so a run that needs it first says so.
PRODUCED_BY_METADATA_KEY = "flowyml/produced_by"

# Metadata written at run time: on materializations, observations and failures.
CACHE_METADATA_KEY = "flowyml/cache"
CACHE_REASON_METADATA_KEY = "flowyml/cache_reason"
DURATION_METADATA_KEY = "flowyml/duration_seconds"
SKIPPED_METADATA_KEY = "flowyml/skipped"
TRACEBACK_METADATA_KEY = "flowyml/traceback"
# A failure's user exception as the plain runner reports it (``ErrorInfo.type``/``message``).
ERROR_TYPE_METADATA_KEY = "flowyml/error_type"
ERROR_MESSAGE_METADATA_KEY = "flowyml/error_message"
# Both: a step's timeout in its definition metadata, the timeout hit in a failure's.
TIMEOUT_METADATA_KEY = "flowyml/timeout_seconds"
