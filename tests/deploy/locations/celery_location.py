"""The code location of the deployment tests: the example pipelines as ``examples/
celery_definitions.py`` builds them (Celery executor, GPU units on the ``gpu`` queue), the
test's own pipelines, and the training pipeline once more on the multiprocess executor.

``RecordingTranslator`` adds the pid of the process that ran each unit's body to every
materialization, so the tests can tell which process (a worker's, or the launcher's) ran it.
Jobs are reached through module-level functions, as ``dagster.reconstructable`` needs.
"""

from __future__ import annotations

import os
from typing import Any

import dagster as dg
from celery_definitions import CELERY_FROM_ENVIRONMENT, GpuQueueTranslator
from deploy_pipelines import fragile, long, stubborn
from digits_pipelines import training

from flowyml import Step
from flowyml_dagster import build_definitions

PID_METADATA_KEY = "test/pid"


class RecordingTranslator(GpuQueueTranslator):
    def get_output_metadata(self, step: Step, output_name: str, value: Any) -> dict[str, Any]:
        metadata = super().get_output_metadata(step, output_name, value)
        metadata[PID_METADATA_KEY] = os.getpid()
        return metadata


defs = build_definitions(
    [training, stubborn, long, fragile],
    translator=RecordingTranslator(),
    executor=CELERY_FROM_ENVIRONMENT,
)
multiprocess_defs = build_definitions([training], translator=RecordingTranslator())


def training_job() -> dg.JobDefinition:
    return defs.resolve_job_def("training")


def training_multiprocess_job() -> dg.JobDefinition:
    return multiprocess_defs.resolve_job_def("training")


def stubborn_job() -> dg.JobDefinition:
    return defs.resolve_job_def("stubborn")


def long_job() -> dg.JobDefinition:
    return defs.resolve_job_def("long")


def fragile_job() -> dg.JobDefinition:
    return defs.resolve_job_def("fragile")
