"""An op's user tags: its steps' own tags, one value per tag, and a Celery queue checked.

The steps of an execution group share one op, so one tag given two values by two of them has no
single meaning (a task sent to ``gpu`` or to ``cpu``?); it is refused at build time naming both
steps, as a clash in their ``dagster-k8s/config`` is. The same value twice is one tag. The
``pipeline`` tag flowyml sets on each step is the exception: the op's is every pipeline of its
steps.

A Celery queue (a ``dagster-celery/queue`` tag, or ``FlowymlTranslator.get_celery_queue``'s
answer) must be a non-empty name without whitespace or control characters: anything else is a
queue no worker listens to, where the task would wait forever.
"""

from __future__ import annotations

from typing import Any

from flowyml.core.errors import PipelineDefinitionError
from flowyml.core.graph import ExecutionUnit
from flowyml_dagster.constants import CELERY_QUEUE_TAG, K8S_CONFIG_TAG

_PIPELINE_TAG = "pipeline"


def unit_tags(unit: ExecutionUnit) -> dict[str, str]:
    """The user tags of ``unit``'s op but ``dagster-k8s/config`` (merged on its own)."""
    tags: dict[str, str] = {}
    givers: dict[str, str] = {}
    pipelines: list[str] = []
    for step in unit.steps:
        for key, value in step.tags.items():
            if key == K8S_CONFIG_TAG:
                continue
            if key == _PIPELINE_TAG:
                pipelines.extend(p for p in value.split(",") if p not in pipelines)
                continue
            if key == CELERY_QUEUE_TAG:
                check_queue(value, f"step '{step.name}': tags[{key!r}]")
            if key in tags and tags[key] != value:
                raise PipelineDefinitionError(
                    f"steps '{givers[key]}' and '{step.name}' share one op (execution group "
                    f"'{unit.group}') but their tags[{key!r}] are {tags[key]!r} and {value!r}"
                )
            tags[key] = value
            givers.setdefault(key, step.name)
    if pipelines:
        tags[_PIPELINE_TAG] = ",".join(pipelines)
    return tags


def check_queue(queue: Any, where: str) -> str:
    """``queue`` when it can name a Celery queue a worker listens to, else an error at ``where``."""
    if (
        not isinstance(queue, str)
        or not queue
        or any(c.isspace() or not c.isprintable() for c in queue)
    ):
        raise PipelineDefinitionError(
            f"{where}: {queue!r} is not a Celery queue name: a non-empty string without "
            "whitespace or control characters (a task on a queue no worker listens to waits "
            "forever)"
        )
    return queue
