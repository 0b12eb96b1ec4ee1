"""``celery_executor``: each unit's step as a task on a Celery worker (needs the ``deploy`` extra).

It is dagster-celery's executor (same config: ``broker``, ``backend``, ``include``,
``config_source``, ``retries``) but for termination. When a run is terminated, dagster-celery
revokes its tasks without ``terminate``, which only drops tasks no worker has started: a running
step would go on, on its worker, after its run was canceled. Here the revoke also terminates the
task: the worker SIGTERMs the pool process running the step, and a step with a ``timeout`` (in
its own child, ``flowyml.core.isolation``) is ended with it by its parent-death signal. And a
terminated run stops waiting for a revoked task after ``REVOKE_WAIT_SECONDS``: a task no worker
took (its queue has none) is never reported revoked, and dagster-celery would wait forever.

Route a unit to another queue with ``FlowymlTranslator.get_celery_queue``.
"""

from __future__ import annotations

import time
from typing import Any

import dagster as dg
from celery.exceptions import TaskRevokedError
from celery.result import AsyncResult
from dagster._core.execution.retries import RetryMode
from dagster_celery.core_execution_loop import core_celery_execution_loop
from dagster_celery.executor import CELERY_CONFIG, CeleryExecutor, _submit_task

# What a revoke sends to the process running a task: the signal a step's isolation handles.
REVOKE_SIGNAL = "SIGTERM"
# How long a terminated run waits for its revoked tasks to be reported by their workers.
REVOKE_WAIT_SECONDS = 10.0


class _TerminatingResult:
    """A submitted task as the execution loop sees it (``ready``, ``get``, ``revoke``), whose
    ``revoke`` ends the task where it runs, not only where it waits, and is waited for at most
    ``REVOKE_WAIT_SECONDS``: only a worker records a task as revoked, so a task on a queue no
    worker listens to would never be ready, and the loop, waiting for it, would never end."""

    def __init__(self, result: AsyncResult) -> None:
        self._result = result
        self._revoked_until: float | None = None

    def ready(self) -> bool:
        if self._result.ready():
            return True
        return self._revoked_until is not None and time.monotonic() >= self._revoked_until

    def get(self) -> Any:
        if self._revoked_until is not None and not self._result.ready():
            raise TaskRevokedError(
                f"task {self._result.id} was revoked and no worker reported it within "
                f"{REVOKE_WAIT_SECONDS:g}s (is any worker listening to its queue?)"
            )
        return self._result.get()

    def revoke(self) -> None:
        self._result.revoke(terminate=True, signal=REVOKE_SIGNAL)
        self._revoked_until = time.monotonic() + REVOKE_WAIT_SECONDS


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
