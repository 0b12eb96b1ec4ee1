"""``celery_executor``: each unit's step as a task on a Celery worker (needs the ``deploy`` extra).

It is dagster-celery's executor (same config: ``broker``, ``backend``, ``include``,
``config_source``, ``retries``) with one difference. When a run is terminated, dagster-celery
revokes its tasks without ``terminate``, which only drops tasks no worker has started: a running
step would go on, on its worker, after its run was canceled. Here the revoke also terminates the
task: the worker SIGTERMs the pool process running the step, and a step with a ``timeout`` (in
its own child, ``flowyml.core.isolation``) is ended with it by its parent-death signal.

Route a unit to another queue with ``FlowymlTranslator.get_celery_queue``.
"""

from __future__ import annotations

from typing import Any

import dagster as dg
from celery.result import AsyncResult
from dagster._core.execution.retries import RetryMode
from dagster_celery.core_execution_loop import core_celery_execution_loop
from dagster_celery.executor import CELERY_CONFIG, CeleryExecutor, _submit_task

# What a revoke sends to the process running a task: the signal a step's isolation handles.
REVOKE_SIGNAL = "SIGTERM"


class _TerminatingResult:
    """A submitted task as the execution loop sees it (``ready``, ``get``, ``revoke``), whose
    ``revoke`` ends the task where it runs, not only where it waits."""

    def __init__(self, result: AsyncResult) -> None:
        self._result = result

    def ready(self) -> bool:
        return bool(self._result.ready())

    def get(self) -> Any:
        return self._result.get()

    def revoke(self) -> None:
        self._result.revoke(terminate=True, signal=REVOKE_SIGNAL)


def _submit_terminable(*args: Any) -> _TerminatingResult:
    return _TerminatingResult(_submit_task(*args))


class TerminatingCeleryExecutor(CeleryExecutor):
    """dagster-celery's executor, with run termination reaching the running steps."""

    def execute(self, plan_context: Any, execution_plan: Any) -> Any:
        return core_celery_execution_loop(
            plan_context, execution_plan, step_execution_fn=_submit_terminable
        )


@dg.executor(
    name="celery",
    config_schema=CELERY_CONFIG,
    requirements=dg.multiple_process_executor_requirements(),
)
def celery_executor(init_context: dg.InitExecutorContext) -> TerminatingCeleryExecutor:
    """Steps as Celery tasks; the same config as ``dagster_celery.celery_executor``."""
    config = init_context.executor_config
    return TerminatingCeleryExecutor(
        broker=config.get("broker"),
        backend=config.get("backend"),
        config_source=config.get("config_source"),
        include=config.get("include"),
        retries=RetryMode.from_config(config["retries"]),
    )
