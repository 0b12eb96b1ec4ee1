"""The code location of the deployment tests: the example pipelines as ``examples/
celery_definitions.py`` builds them (Celery executor, GPU units on the ``gpu`` queue) and the
tests' own pipelines, every materialization recording the pid that ran it.

Values between units go to the deployment's object store through dagster-aws's IO manager, read
from the environment of the process that runs the unit (``deploy_support.deployment_env`` sets
it): the endpoint and credentials from the standard ``AWS_*`` variables, the bucket and prefix
from ``DEPLOY_VALUES_BUCKET`` and ``DEPLOY_VALUES_PREFIX``.

Jobs are reached through module-level functions, as ``dagster.reconstructable`` needs.
"""

from __future__ import annotations

import dagster as dg
from celery_definitions import CELERY_FROM_ENVIRONMENT, GpuQueueTranslator
from dagster_aws.s3 import S3PickleIOManager, S3Resource
from deploy_pipelines import flaky, fragile, long, parity, stubborn
from digits_pipelines import training
from recording import PidRecordingTranslator

from flowyml_dagster import build_definitions


class DeployTranslator(PidRecordingTranslator, GpuQueueTranslator):
    """The example's Celery translator, recording pids."""


defs = build_definitions(
    [training, stubborn, long, fragile, flaky, parity],
    translator=DeployTranslator(),
    executor=CELERY_FROM_ENVIRONMENT,
    io_manager=S3PickleIOManager(
        s3_resource=S3Resource(endpoint_url=dg.EnvVar("AWS_ENDPOINT_URL")),
        s3_bucket=dg.EnvVar("DEPLOY_VALUES_BUCKET"),
        s3_prefix=dg.EnvVar("DEPLOY_VALUES_PREFIX"),
    ),
)


def training_job() -> dg.JobDefinition:
    return defs.resolve_job_def("training")


def stubborn_job() -> dg.JobDefinition:
    return defs.resolve_job_def("stubborn")


def fragile_job() -> dg.JobDefinition:
    return defs.resolve_job_def("fragile")


def flaky_job() -> dg.JobDefinition:
    return defs.resolve_job_def("flaky")


def parity_job() -> dg.JobDefinition:
    return defs.resolve_job_def("parity")
