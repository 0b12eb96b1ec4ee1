"""The code location of the deployment tests: the example pipelines as ``examples/
celery_definitions.py`` builds them (Celery executor, GPU units on the ``gpu`` queue) and the
tests' own pipelines, every materialization recording the pid that ran it.

Jobs are reached through module-level functions, as ``dagster.reconstructable`` needs.
"""

from __future__ import annotations

import dagster as dg
from celery_definitions import CELERY_FROM_ENVIRONMENT, GpuQueueTranslator
from deploy_pipelines import fragile, long, parity, stubborn
from digits_pipelines import training
from recording import PidRecordingTranslator

from flowyml_dagster import build_definitions


class DeployTranslator(PidRecordingTranslator, GpuQueueTranslator):
    """The example's Celery translator, recording pids."""


defs = build_definitions(
    [training, stubborn, long, fragile, parity],
    translator=DeployTranslator(),
    executor=CELERY_FROM_ENVIRONMENT,
)


def training_job() -> dg.JobDefinition:
    return defs.resolve_job_def("training")


def stubborn_job() -> dg.JobDefinition:
    return defs.resolve_job_def("stubborn")


def fragile_job() -> dg.JobDefinition:
    return defs.resolve_job_def("fragile")


def parity_job() -> dg.JobDefinition:
    return defs.resolve_job_def("parity")
