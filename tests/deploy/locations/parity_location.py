"""The ``parity`` pipeline on the default (multiprocess) executor, to compare with Celery.

Its own module, importing neither the examples nor scikit-learn: each step process forks from a
server that preloads only what the pipeline needs.
"""

from __future__ import annotations

import dagster as dg
from deploy_pipelines import parity
from recording import PidRecordingTranslator

from flowyml_dagster import build_definitions

defs = build_definitions([parity], translator=PidRecordingTranslator())


def parity_multiprocess_job() -> dg.JobDefinition:
    return defs.resolve_job_def("parity")
