"""The fan-out pipeline of ``celery_fan_out.py``: ``WIDTH`` independent steps of ``STEP_SECONDS``
each, as two jobs, one on the Celery executor and one on the default multiprocess executor; and
``celery_overhead.py``'s hand-written Dagster asset job of the same shape on the same Celery
executor and IO manager, the baseline of the translation's per-step overhead.

A module of its own, imported by the benchmark and by the Celery workers (``-i``).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import dagster as dg

from flowyml import Pipeline, step
from flowyml_dagster import build_definitions
from flowyml_dagster.celery_executor import celery_executor
from flowyml_dagster.storage import instance_storage_io_manager

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
CELERY = celery_executor.configured(
    {"broker": {"env": "CELERY_BROKER_URL"}, "backend": {"env": "CELERY_RESULT_BACKEND"}}
)
celery_defs = build_definitions([fan_out], executor=CELERY)
multiprocess_defs = build_definitions([fan_out])


def _hand_asset(index: int) -> dg.AssetsDefinition:
    @dg.asset(name=f"hand_{index}")
    def work() -> int:
        time.sleep(STEP_SECONDS)
        return index

    return work


# The same shape written by hand: WIDTH independent assets, one asset job, the same executor and
# the same IO manager as ``build_definitions`` gives ours.
hand_defs = dg.Definitions(
    assets=[_hand_asset(i) for i in range(WIDTH)],
    jobs=[dg.define_asset_job("hand_fan_out", selection=[f"hand_{i}" for i in range(WIDTH)])],
    executor=CELERY,
    resources={"io_manager": instance_storage_io_manager()},
)


def celery_job() -> dg.JobDefinition:
    return celery_defs.resolve_job_def("fan_out")


def multiprocess_job() -> dg.JobDefinition:
    return multiprocess_defs.resolve_job_def("fan_out")


def hand_celery_job() -> dg.JobDefinition:
    return hand_defs.resolve_job_def("hand_fan_out")
