"""``Pipeline``: a named set of steps, its context, and how to run it without any server."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flowyml.core.cache_store import CacheStore
from flowyml.core.context import Context
from flowyml.core.errors import PipelineDefinitionError
from flowyml.core.graph import PipelineGraph, check_values, plan_graph
from flowyml.core.results import PipelineResult
from flowyml.core.runner import run_graph
from flowyml.core.step import Step, get_registered_steps

logger = logging.getLogger(__name__)

# Keywords of the original Pipeline.run that mean nothing without its UI and tracking server;
# accepted so existing scripts run unchanged.
_IGNORED_RUN_OPTIONS = frozenset({"debug", "auto_start_ui", "stack", "orchestrator", "resources"})


class Pipeline:
    """A named set of steps run together, with a context of parameters.

    ``auto_discover=True`` takes every registered step scoped to this pipeline's name plus every
    unscoped step, at build time (so steps defined after the pipeline object are found too).
    ``schedule`` is a cron string that ``flowyml_dagster`` turns into a Dagster schedule.
    """

    def __init__(
        self,
        name: str,
        context: Context | Mapping[str, Any] | None = None,
        auto_discover: bool = False,
        enable_cache: bool = True,
        cache_dir: str | Path | None = None,
        schedule: str | None = None,
        description: str | None = None,
        steps: list[Step] | None = None,
    ) -> None:
        if not isinstance(name, str) or not name.strip():
            raise PipelineDefinitionError(f"a pipeline needs a non-empty name, got {name!r}")
        if schedule is not None and (not isinstance(schedule, str) or len(schedule.split()) != 5):
            raise PipelineDefinitionError(
                f"pipeline '{name}': schedule must be a 5-field cron string, got {schedule!r}"
            )
        self.name = name
        self.context = _as_context(name, context)
        self.auto_discover = auto_discover
        self.enable_cache = enable_cache
        self.cache_dir = cache_dir
        self.schedule = schedule
        self.description = description
        self._steps: list[Step] = []
        self._graph: PipelineGraph | None = None
        for step in steps or []:
            self.add_step(step)

    def add_step(self, step: Step) -> Pipeline:
        """Add a step explicitly (also one made with ``register=False``); returns ``self``."""
        if not isinstance(step, Step):
            raise PipelineDefinitionError(
                f"pipeline '{self.name}': add_step takes a @step, got {type(step).__name__}"
            )
        self._steps.append(step)
        self._graph = None
        return self

    @property
    def steps(self) -> list[Step]:
        """The steps of this pipeline: those added, then the auto-discovered ones."""
        found = list(self._steps)
        if self.auto_discover:
            found.extend(s for s in get_registered_steps(self.name) if s not in found)
        return found

    def build(self) -> PipelineGraph:
        """Validate the pipeline and return its graph; every declaration problem raises here."""
        graph = self._plan()
        check_values(self.name, graph.steps, self.context)
        return graph

    def _plan(self) -> PipelineGraph:
        """The graph's wiring, without checking params (a run's context may still supply them)."""
        if self._graph is None or self.auto_discover:
            self._graph = plan_graph(self.name, self.steps)
        return self._graph

    def run(
        self,
        inputs: Mapping[str, Any] | None = None,
        context: Context | Mapping[str, Any] | None = None,
        run_id: str | None = None,
        **options: Any,
    ) -> PipelineResult:
        """Run in this process and return the result; a failed step does not raise.

        ``context`` overrides the pipeline's context for this run only. A missing pipeline input
        or param raises before any step runs.
        """
        for option in options:
            if option not in _IGNORED_RUN_OPTIONS:
                raise TypeError(f"Pipeline.run() got an unexpected keyword argument '{option}'")
        graph = self._plan()
        run_context = self.context.inherit(**_as_context(self.name, context).to_dict())
        check_values(self.name, graph.steps, run_context)
        store = CacheStore(self.cache_dir) if self.enable_cache else None
        return run_graph(
            graph, inputs=inputs or {}, context=run_context, cache=store, run_id=run_id
        )

    def __repr__(self) -> str:
        return f"Pipeline({self.name!r}, steps={[s.name for s in self.steps]})"


def _as_context(pipeline: str, context: Context | Mapping[str, Any] | None) -> Context:
    if context is None:
        return Context()
    if isinstance(context, Context):
        return context
    if isinstance(context, Mapping):
        return Context(**context)
    raise PipelineDefinitionError(
        f"pipeline '{pipeline}': context must be a Context or a dict, got {type(context).__name__}"
    )
