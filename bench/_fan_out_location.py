"""The fan-out pipeline of ``celery_fan_out.py``: ``WIDTH`` independent steps of ``STEP_SECONDS``
each, as two jobs, one on the Celery executor and one on the default multiprocess executor.

A module of its own, imported by the benchmark and by the Celery workers (``-i``).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import dagster as dg

from flowyml import Pipeline, step
from flowyml_dagster import build_definitions
from flowyml_dagster.celery_executor import celery_executor

WIDTH = 40
STEP_SECONDS = 0.2


def _work(index: int) -> Callable[[], int]:
    def work() -> int:
        time.sleep(STEP_SECONDS)
        return index

    return work


fan_out = Pipeline(
    "fan_out",
    steps=[
        step(name=f"work_{i}", outputs=[f"fan/{i}"], cache=False, pipeline="fan_out")(_work(i))
        for i in range(WIDTH)
    ],
)
celery_defs = build_definitions(
    [fan_out],
    executor=celery_executor.configured(
        {"broker": {"env": "CELERY_BROKER_URL"}, "backend": {"env": "CELERY_RESULT_BACKEND"}}
    ),
)
multiprocess_defs = build_definitions([fan_out])


def celery_job() -> dg.JobDefinition:
    return celery_defs.resolve_job_def("fan_out")


def multiprocess_job() -> dg.JobDefinition:
    return multiprocess_defs.resolve_job_def("fan_out")
