"""``Pipeline``: a named set of steps, its context, and how to run it without any server."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from flowyml.core.cache_location import StepCache, open_cache_store, resolve_cache_location
from flowyml.core.context import Context
from flowyml.core.errors import PipelineDefinitionError
from flowyml.core.graph import ExecutionUnit, PipelineGraph, check_values, plan_graph
from flowyml.core.progress import ProgressDisplay
from flowyml.core.results import PipelineResult
from flowyml.core.run_records import check_run_id, default_runs_dir, write_run_record
from flowyml.core.runner import run_graph
from flowyml.core.step import Step, get_registered_steps

# Keywords of the original Pipeline and Pipeline.run that mean nothing without its UI, stacks and
# tracking server; accepted so existing scripts run unchanged.
_IGNORED_OPTIONS = frozenset(
    {"enable_checkpointing", "enable_experiment_tracking", "auto_track", "stack", "env",
     "project", "project_name"}
)  # fmt: skip
_IGNORED_RUN_OPTIONS = frozenset(
    {"debug", "auto_start_ui", "stack", "env", "orchestrator", "resources", "docker_config"}
)
# The cron aliases Dagster's schedules accept.
CRON_ALIASES = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")


class Pipeline:
    """A named set of steps run together, with a context of parameters.

    Steps come from ``steps=``/``add_step``/``add_steps``, or, with ``auto_discover=True`` and
    none added, from the registry at build time: every step scoped to this pipeline's name plus
    every unscoped step (so steps defined after the pipeline object are found too).
    ``schedule`` is a cron string (or an alias such as ``"@daily"``) that ``flowyml_dagster``
    turns into a Dagster schedule. Each plain run leaves a JSON record in ``runs_dir``.
    ``cache_dir`` (else ``$FLOWYML_CACHE_DIR``) is a local path or a storage URL such as
    ``s3://bucket/prefix``; one that cannot be used is refused here (``CacheLocationError``).
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
        steps: Iterable[Step] | None = None,
        runs_dir: str | Path | None = None,
        **options: Any,
    ) -> None:
        for option in options:
            if option not in _IGNORED_OPTIONS:
                raise TypeError(f"Pipeline() got an unexpected keyword argument '{option}'")
        if not isinstance(name, str) or not name.strip():
            raise PipelineDefinitionError(f"a pipeline needs a non-empty name, got {name!r}")
        _check_schedule(name, schedule)
        if enable_cache:
            resolve_cache_location(cache_dir)  # a location it cannot use is refused now
        self.name = name
        self.context = _as_context(name, context)
        self.auto_discover = auto_discover
        self.enable_cache = enable_cache
        self.cache_dir = cache_dir
        self.schedule = schedule
        self.description = description
        self._runs_dir = Path(runs_dir).expanduser() if runs_dir is not None else None
        self._steps: list[Step] = []
        self._graph: PipelineGraph | None = None
        self._planned_from: tuple[Step, ...] = ()
        self._cache_store: StepCache | None = None
        self._hits = self._misses = 0
        self.add_steps(steps or [])

    @classmethod
    def from_steps(cls, *steps: Step, name: str, **options: Any) -> Pipeline:
        """A pipeline of exactly ``steps``: ``Pipeline.from_steps(load, train, name="train")``."""
        return cls(name, steps=steps, **options)

    def add_step(self, step: Step) -> Pipeline:
        """Add a step explicitly (also one made with ``register=False``); returns ``self``.

        A pipeline with steps added by hand runs those, and does not auto-discover others.
        """
        if not isinstance(step, Step):
            raise PipelineDefinitionError(
                f"pipeline '{self.name}': add_step takes a @step, got {type(step).__name__}"
            )
        self._steps.append(step)
        return self

    def add_steps(self, steps: Iterable[Step]) -> Pipeline:
        """Add each of ``steps`` in order; returns ``self``."""
        for step in steps:
            self.add_step(step)
        return self

    @property
    def steps(self) -> list[Step]:
        """The steps of this pipeline: those added, else (``auto_discover``) the registered ones.

        The added steps are the list itself, so ``pipeline.steps.append(step)`` adds one, as in
        flowyml 2.x; every plan looks at the list afresh.
        """
        if self._steps or not self.auto_discover:
            return self._steps
        return get_registered_steps(self.name)

    @steps.setter
    def steps(self, steps: Iterable[Step]) -> None:
        self._steps = []
        self.add_steps(steps)

    def build(self) -> PipelineGraph:
        """Validate the pipeline and return its graph; every declaration problem raises here."""
        graph = self._plan()
        check_values(self.name, graph.steps, self.context)
        return graph

    @property
    def dag(self) -> PipelineGraph:
        """The dependency graph (``dag.topological_sort()``, ``dag.nodes``), planned now."""
        return self._plan()

    @property
    def step_groups(self) -> list[ExecutionUnit]:
        """The execution groups, each with its steps in the order they run."""
        return [unit for unit in self._plan().units if unit.group is not None]

    def _plan(self) -> PipelineGraph:
        """The graph's wiring, without checking params (a run's context may still supply them)."""
        steps = tuple(self.steps)
        if self._graph is None or self._planned_from != steps:
            if strays := [s for s in steps if not isinstance(s, Step)]:
                raise PipelineDefinitionError(
                    f"pipeline '{self.name}': steps must be @step functions, got "
                    f"{[type(s).__name__ for s in strays]}"
                )
            self._graph = plan_graph(self.name, steps)
            self._planned_from = steps
        return self._graph

    @property
    def cache_store(self) -> StepCache | None:
        """The store plain runs read and write, or ``None`` when caching is off."""
        if not self.enable_cache:
            return None
        location = str(resolve_cache_location(self.cache_dir))
        if self._cache_store is None or self._cache_store.location != location:
            self._cache_store = open_cache_store(self.cache_dir)
        return self._cache_store

    def cache_stats(self) -> dict[str, Any]:
        """What the cache holds now (``entries``, ``bytes``), and how this pipeline's plain runs
        in this process used it (``hits``; ``misses``: cacheable steps not found, which ran);
        ``{}`` when caching is off. The original flowyml's key names are given too."""
        store = self.cache_store
        if store is None:
            return {}
        entries, size = store.usage()
        looked_up = self._hits + self._misses
        return {
            "entries": entries,
            "bytes": size,
            "hits": self._hits,
            "misses": self._misses,
            "hit_rate": self._hits / looked_up if looked_up else 0.0,
            "total_entries": entries,
            "total_size_mb": size / 2**20,
        }

    @property
    def runs_dir(self) -> Path:
        """Where plain runs leave their JSON records (created): ``runs_dir=``, else
        ``$FLOWYML_RUNS_DIR``, else ``$XDG_STATE_HOME/flowyml/runs``."""
        path = self._runs_dir_path()
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        return path

    def _runs_dir_path(self) -> Path:
        return self._runs_dir if self._runs_dir is not None else default_runs_dir()

    def run(
        self,
        inputs: Mapping[str, Any] | None = None,
        *,
        context: Context | Mapping[str, Any] | None = None,
        run_id: str | None = None,
        progress: bool | None = None,
        **options: Any,
    ) -> PipelineResult:
        """Run in this process and return the result; a failed step does not raise.

        ``context`` overrides the pipeline's context for this run only. A missing pipeline input
        or param raises before any step runs. ``progress`` shows each step as it starts and ends
        on stderr: by default only on a terminal or in a notebook; ``False`` never.
        """
        if options.pop("dry_run", False):
            raise TypeError("run(dry_run=True) is not supported; pipeline.build() validates")
        for option in options:
            if option not in _IGNORED_RUN_OPTIONS:
                raise TypeError(f"Pipeline.run() got an unexpected keyword argument '{option}'")
        if run_id is not None:
            try:
                check_run_id(run_id)
            except ValueError as exc:
                raise PipelineDefinitionError(f"pipeline '{self.name}': {exc}") from None
        graph = self._plan()
        run_context = self.context.inherit(**_as_context(self.name, context).to_dict())
        check_values(self.name, graph.steps, run_context)
        self._cache_store = open_cache_store(self.cache_dir) if self.enable_cache else None
        display = ProgressDisplay(progress) if progress is not False else None
        result = run_graph(
            graph,
            inputs=inputs or {},
            context=run_context,
            cache=self._cache_store,
            run_id=run_id,
            observer=display if display is not None and display.enabled else None,
        )
        for step_result in result.step_results.values():
            if step_result.cached:
                self._hits += 1
            elif step_result.cache_key is not None and step_result.success:
                self._misses += 1
        write_run_record(self._runs_dir_path(), result)
        return result

    def __repr__(self) -> str:
        return f"Pipeline({self.name!r}, steps={[s.name for s in self.steps]})"


def _check_schedule(pipeline: str, schedule: object) -> None:
    """A 5-field cron string or one of the aliases Dagster accepts; ``flowyml_dagster`` checks
    the field values when it makes the schedule."""
    if schedule is None:
        return
    if isinstance(schedule, str) and (
        schedule in CRON_ALIASES or (not schedule.startswith("@") and len(schedule.split()) == 5)
    ):
        return
    raise PipelineDefinitionError(
        f"pipeline '{pipeline}': schedule must be a 5-field cron string ('0 3 * * *') or one of "
        f"{', '.join(CRON_ALIASES)}, got {schedule!r}"
    )


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
