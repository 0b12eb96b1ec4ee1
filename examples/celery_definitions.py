"""The example pipelines on Celery workers: a code location for a deployment (see README,
"Deploying"), beside ``definitions.py``, which runs them on the local multiprocess executor.

Two differences from ``definitions.py``, both configuration: the executor is flowyml's
``celery_executor``, its broker and result backend read from the code location's environment
(``CELERY_BROKER_URL``, ``CELERY_RESULT_BACKEND``); and ``GpuQueueTranslator`` routes the units
that ask for a GPU to the ``gpu`` queue, so only a worker started with ``-q gpu`` (on a machine
with one) takes them. The rest go to dagster-celery's default queue, ``dagster``.
"""

from __future__ import annotations

from definitions import DigitsTranslator
from digits_pipelines import batch_scoring, training

from flowyml.core.graph import ExecutionUnit
from flowyml_dagster import build_definitions
from flowyml_dagster.celery_executor import celery_executor

GPU_QUEUE = "gpu"

CELERY_FROM_ENVIRONMENT = celery_executor.configured(
    {"broker": {"env": "CELERY_BROKER_URL"}, "backend": {"env": "CELERY_RESULT_BACKEND"}}
)


class GpuQueueTranslator(DigitsTranslator):
    """The example's translator, with units that request a GPU on the ``gpu`` queue."""

    def get_celery_queue(self, unit: ExecutionUnit) -> str | None:
        if unit.resources is not None and unit.resources.gpu is not None:
            return GPU_QUEUE
        return super().get_celery_queue(unit)


defs = build_definitions(
    [training, batch_scoring], translator=GpuQueueTranslator(), executor=CELERY_FROM_ENVIRONMENT
)
