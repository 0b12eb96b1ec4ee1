"""``FlowymlPipelinesComponent``: flowyml pipelines as a Dagster component, configured in YAML.

``dg scaffold defs flowyml_dagster.FlowymlPipelinesComponent <path>`` writes a ``defs.yaml``
naming the modules whose ``Pipeline`` objects become assets and jobs. Several such components
make one code location: each job carries its own executor (preloading its steps' modules) and
components with the same cache directory share one set of resource objects, which is what
Dagster needs to merge them.

Per-step overrides in the YAML tune a step without editing its code: ``retry``, ``timeout``,
``resources`` and ``tags`` go through ``Step.with_options``, so they are refused by the very
rules of the ``@step`` decorator; ``pool`` is Dagster's alone and goes to the translator.
Every refusal names the YAML file (and line), the step and the field.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Mapping, Sequence
from importlib.resources import files
from pathlib import Path
from typing import Any, Literal, Self

import dagster as dg
from dagster_shared.yaml_utils.source_position import SourcePositionTree
from pydantic import BaseModel, Field, PrivateAttr

from flowyml.core.errors import CacheLocationError, StepDefinitionError
from flowyml.core.graph import ExecutionUnit
from flowyml.core.pipeline import Pipeline
from flowyml.core.step import Step, get_registered_steps
from flowyml_dagster.definitions import resolve_executor, step_resources, translate
from flowyml_dagster.translator import FlowymlTranslator

DEFS_FILE = "defs.yaml"
# What ``dg scaffold defs`` writes beside the defs.yaml when no module is given.
STARTER_MODULE = Path("pipelines.py")


class ComponentAttributeError(ValueError):
    """An attribute of a component's ``defs.yaml`` is invalid; the message starts with where."""


class _Refusal(Exception):
    """A problem with the attribute at ``key_path``, before its file and line are known."""

    def __init__(self, problem: str, *key_path: str | int) -> None:
        super().__init__(problem)
        self.problem, self.key_path = problem, key_path


class StepOverrides(dg.Model, dg.Resolvable):
    """Options of one step, replacing what its ``@step`` says (``tags`` are added to its own).

    Values are checked by the ``@step`` decorator's rules, not here, so they are typed loosely.
    """

    retry: Any = Field(
        default=None, description="Number of retries, or a policy: max_retries, delay, backoff"
    )
    timeout: Any = Field(default=None, description="Seconds before the step is killed")
    resources: Any = Field(
        default=None, description="cpu, memory, gpu ... as in @step(resources=...)"
    )
    tags: Any = Field(default=None, description="Tags added to (or replacing) the step's own")
    pool: Any = Field(default=None, description="Dagster concurrency pool of the step's op")


class CacheAttributes(dg.Model, dg.Resolvable):
    """flowyml's step cache. ``enabled: false`` turns it off for this component's steps;
    ``dir`` (a local path, relative to the project's root, or a URL such as ``s3://bucket/x``)
    is the code location's, the same in every component that names one."""

    enabled: bool = True
    dir: str | None = None


class ScaffoldParams(BaseModel):
    """``dg scaffold defs ... --module my_project.pipelines``; without it, a starter module."""

    module: str | None = None


class FlowymlPipelinesScaffolder(dg.Scaffolder[ScaffoldParams]):
    """Writes a ``defs.yaml`` that loads: the given module, or a starter ``pipelines.py`` beside
    it (a module name starting with ``.`` is relative to the ``defs.yaml`` folder)."""

    @classmethod
    def get_scaffold_params(cls) -> type[ScaffoldParams]:
        return ScaffoldParams

    def scaffold(self, request: dg.ScaffoldRequest[ScaffoldParams]) -> None:
        module = request.params.module
        if module is None:
            module = f".{STARTER_MODULE.stem}"
            starter = files("flowyml_dagster") / "templates" / STARTER_MODULE.name
            (request.target_path / STARTER_MODULE.name).write_text(starter.read_text())
        dg.scaffold_component(request, {"modules": [module], "steps": {}})


@dg.scaffold_with(FlowymlPipelinesScaffolder)
class FlowymlPipelinesComponent(dg.Component, dg.Model, dg.Resolvable):
    """flowyml pipelines from Python modules, as assets, asset jobs and schedules."""

    modules: list[str] = Field(description="Modules whose flowyml Pipeline objects to load")
    pipelines: list[str] | None = Field(
        default=None, description="Names of the pipelines to load (default: all found)"
    )
    # Defaults, not default_factory: Dagster 1.12.0's Resolvable refuses a default_factory field
    # ("cannot specify both default and default_factory"); pydantic copies a default per model.
    cache: CacheAttributes = Field(default=CacheAttributes())
    translator: str | None = Field(
        default=None, description="Import path of a FlowymlTranslator subclass"
    )
    steps: dict[str, StepOverrides] = Field(
        default={}, description="Per-step overrides, by step name"
    )
    io_manager: Literal["flowyml", "project"] = Field(
        default="flowyml",
        description="flowyml: bind flowyml's io_manager; project: bind none, the project's "
        "own definitions provide the io_manager resource",
    )

    # Where each attribute is in the YAML: Dagster gives it to ``load``, not to ``build_defs``,
    # where the overrides are checked against the steps.
    _positions: SourcePositionTree | None = PrivateAttr(default=None)

    @classmethod
    def load(cls, attributes: BaseModel | None, context: dg.ComponentLoadContext) -> Self:
        loaded = super().load(attributes, context)
        loaded._positions = context.resolution_context.source_position_tree
        return loaded

    def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        try:
            modules = [_absolute_module(context, name) for name in self.modules]
            pipelines = _select(_pipelines_in(modules), self.pipelines)
            pipelines, pools = _apply_overrides(pipelines, self.steps, cache=self.cache.enabled)
            translator = _with_pools(_translator_class(self.translator), pools)
            resources = _resources(_cache_dir(self.cache.dir, context.project_root))
            if self.io_manager == "project":
                resources = {k: v for k, v in resources.items() if k != "io_manager"}
        except _Refusal as refusal:
            where = _where(self._positions, context.path, refusal.key_path)
            raise ComponentAttributeError(f"{where}: {refusal.problem}") from None
        executor = resolve_executor("default", pipelines)
        translation = translate(pipelines, translator=translator, job_executor=executor)
        return dg.Definitions(
            assets=translation.assets,
            jobs=translation.jobs,
            schedules=translation.schedules,
            resources=resources,
        )


def _cache_dir(given: str | None, project_root: Path) -> str | None:
    """A local ``dir`` from the project's root (a server's working directory varies); a URL
    (``s3://bucket/prefix``) as written, for the core to check."""
    if given is None or "://" in given:
        return given
    return str(project_root / Path(given).expanduser())


def _resources(cache_dir: str | None) -> dict[str, Any]:
    """The step resources; a cache location the core refuses is ``cache.dir``'s problem."""
    try:
        return _shared_resources(cache_dir)
    except CacheLocationError as exc:
        raise _Refusal(f"cache.dir: {exc}", "cache", "dir") from None


@functools.cache
def _shared_resources(cache_dir: str | None) -> dict[str, Any]:
    """One set of resource objects per cache directory: Dagster merges the definitions of a
    project's components only when a resource key holds the very same object in each (so
    ``cache.enabled`` works on the steps, and components must agree on ``cache.dir``)."""
    return step_resources(cache_dir, True, "default")


def _absolute_module(context: dg.ComponentLoadContext, name: str) -> str:
    """``.pipelines`` → the module ``pipelines.py`` beside the ``defs.yaml``, as Dagster reads
    ``type: .MyComponent``; other names unchanged."""
    if not name.startswith("."):
        return name
    return context.defs_relative_module_name(context.path) + name


def _where(
    positions: SourcePositionTree | None, folder: Path, key_path: Sequence[str | int]
) -> str:
    """``path/defs.yaml:LINE`` of the attribute at ``key_path`` (or of its nearest parent)."""
    if positions is None:
        return str(folder / DEFS_FILE)
    position, _ = positions.lookup_closest_and_path(["attributes", *key_path], None)
    return str(position)


def _pipelines_in(modules: Sequence[str]) -> list[Pipeline]:
    """Every ``Pipeline`` object at the top level of ``modules``, in definition order."""
    found: dict[str, Pipeline] = {}
    visible: set[int] = set()
    for index, name in enumerate(modules):
        try:
            module = importlib.import_module(name)
        except ImportError as exc:
            raise _Refusal(f"modules: cannot import {name!r} ({exc})", "modules", index) from None
        values = list(vars(module).values())
        visible.update(id(v) for v in values if isinstance(v, Step))
        pipelines = [v for v in values if isinstance(v, Pipeline)]
        if not pipelines:
            raise _Refusal(f"modules: {name!r} defines no flowyml Pipeline", "modules", index)
        for pipeline in pipelines:
            if found.setdefault(pipeline.name, pipeline) is not pipeline:
                raise _Refusal(
                    f"modules: two pipelines are named {pipeline.name!r} (one in {name!r})",
                    "modules",
                    index,
                )
    return [_own_steps(p, visible) for p in found.values()]


def _own_steps(pipeline: Pipeline, visible: set[int]) -> Pipeline:
    """An auto-discovering pipeline with the steps scoped to it and the unscoped steps of its
    component's modules (defined or imported there). Discovery reads the process-wide
    registry, which in a ``dg`` project also holds other components' steps: their unscoped
    steps must not become this pipeline's too (one asset, two components)."""
    steps = pipeline.steps
    if not pipeline.auto_discover or steps != get_registered_steps(pipeline.name):
        return pipeline
    return _with_steps(pipeline, [s for s in steps if s.pipelines or id(s) in visible])


def _select(found: list[Pipeline], names: list[str] | None) -> list[Pipeline]:
    if names is None:
        return found
    by_name = {p.name: p for p in found}
    for index, name in enumerate(names):
        if name not in by_name:
            raise _Refusal(
                f"pipelines: no pipeline {name!r} in the modules (found: {', '.join(by_name)})",
                "pipelines",
                index,
            )
    return [by_name[name] for name in dict.fromkeys(names)]


def _apply_overrides(
    pipelines: list[Pipeline], overrides: Mapping[str, StepOverrides], *, cache: bool
) -> tuple[list[Pipeline], dict[str, str]]:
    """The pipelines with each overridden step replaced by one tuned copy (a step shared by
    pipelines stays one asset), and the pool each step's overrides ask for. ``cache=False``
    turns every step's cache off, as ``@step(cache=False)`` would."""
    steps = {s.name: s for p in pipelines for s in p.steps}
    for name in overrides:
        if name not in steps:
            raise _Refusal(
                f"steps: no step {name!r} in the pipelines (steps: {', '.join(steps)})",
                "steps",
                name,
            )
    tuned: dict[str, Step] = {}
    pools: dict[str, str] = {}
    for name in steps if not cache else overrides:
        override = overrides.get(name, StepOverrides())
        options = override.model_dump(exclude_none=True, exclude={"pool"})
        if not cache:
            options["cache"] = False
        if "tags" in options and isinstance(options["tags"], Mapping):
            options["tags"] = {**steps[name].tags, **options["tags"]}
        try:
            tuned[name] = steps[name].with_options(**options)
        except StepDefinitionError as exc:
            raise _Refusal(str(exc), "steps", name, exc.field.split(".")[0]) from None
        if override.pool is not None:
            if not isinstance(override.pool, str) or not override.pool.strip():
                problem = f"must be a non-empty pool name, got {override.pool!r}"
                raise _Refusal(
                    str(StepDefinitionError(name, "pool", problem)), "steps", name, "pool"
                )
            pools[name] = override.pool
    _check_one_pool_per_group(steps, pools)
    if not tuned:
        return pipelines, pools
    return [_with_steps(p, [tuned.get(s.name, s) for s in p.steps]) for p in pipelines], pools


def _check_one_pool_per_group(steps: Mapping[str, Step], pools: Mapping[str, str]) -> None:
    """An execution group is one op, so all its steps' pools must agree."""
    pool_of_group: dict[str, tuple[str, str]] = {}
    for name, pool in pools.items():
        group = steps[name].execution_group
        if group is None:
            continue
        first, first_pool = pool_of_group.setdefault(group, (name, pool))
        if first_pool != pool:
            raise _Refusal(
                f"step '{name}': pool: {pool!r}, but step '{first}' of the same execution group "
                f"'{group}' asks for {first_pool!r}; one op runs the group, so give them one pool",
                "steps",
                name,
                "pool",
            )


def _with_steps(pipeline: Pipeline, steps: list[Step]) -> Pipeline:
    """``pipeline`` as Dagster sees it (name, context, schedule, description), with ``steps``."""
    return Pipeline(
        pipeline.name,
        context=pipeline.context,
        schedule=pipeline.schedule,
        description=pipeline.description,
        steps=steps,
    )


def _translator_class(path: str | None) -> type[FlowymlTranslator]:
    if path is None:
        return FlowymlTranslator
    module_name, _, class_name = path.replace(":", ".").rpartition(".")
    try:
        found = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError, ValueError) as exc:
        raise _Refusal(f"translator: cannot import {path!r} ({exc})", "translator") from None
    if not (isinstance(found, type) and issubclass(found, FlowymlTranslator)):
        raise _Refusal(f"translator: {path!r} is not a FlowymlTranslator subclass", "translator")
    return found


def _with_pools(base: type[FlowymlTranslator], pools: Mapping[str, str]) -> FlowymlTranslator:
    """An instance of ``base`` whose ``get_pool`` answers the YAML's pools first."""
    if not pools:
        return base()

    class WithPools(base):  # type: ignore[valid-type,misc]
        def get_pool(self, unit: ExecutionUnit) -> str | None:
            asked = [pools[s.name] for s in unit.steps if s.name in pools]
            return asked[0] if asked else super().get_pool(unit)

    WithPools.__name__ = WithPools.__qualname__ = f"{base.__name__}WithPools"
    return WithPools()
