"""The support pipelines as op jobs (``build_op_job``), rebuilt by name in every worker."""

from __future__ import annotations

import dagster as dg
import dagster_pipelines as pipelines

from flowyml_dagster import build_op_job


def conditional_op_job() -> dg.JobDefinition:
    return build_op_job(pipelines.CONDITIONAL)


def grouped_op_job() -> dg.JobDefinition:
    return build_op_job(pipelines.GROUPED)


def external_input_op_job() -> dg.JobDefinition:
    return build_op_job(pipelines.EXTERNAL_INPUT)
