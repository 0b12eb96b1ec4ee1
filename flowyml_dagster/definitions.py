"""The builder: flowyml pipelines → one ``dagster.Definitions`` (assets, jobs, schedules ...).

Every step output is an asset; each unit (a step, or an execution group) is one multi-asset whose
body is the shared flowyml core; each pipeline is an asset job selecting its steps, with the
pipeline's context as the job's default run config. Every naming and tagging decision is the
translator's; this module only assembles and checks that the result is unambiguous.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import dagster as dg

from flowyml.core.errors import PipelineDefinitionError
from flowyml.core.graph import ExecutionUnit, PipelineGraph, plan_graph
from flowyml.core.pipeline import Pipeline
from flowyml.core.step import Step, get_step_registry
from flowyml_dagster.cache import CACHE_RESOURCE_KEY, FlowymlCacheResource
from flowyml_dagster.compute import UnitPlan, make_compute_fn
from flowyml_dagster.config import config_fields, config_model, run_config_values
from flowyml_dagster.names import dagster_name
from flowyml_dagster.translator import FlowymlTranslator

DEFAULT_EXECUTOR: Literal["default"] = "default"
_PRELOADED = ("dagster", "flowyml", "flowyml_dagster")


@dataclass
class Translation:
    """The typed result of translating pipelines, before it becomes a ``Definitions``."""

    pipelines: list[Pipeline]
    graphs: dict[str, PipelineGraph]
    units: list[UnitPlan] = field(default_factory=list)
    assets: list[dg.AssetsDefinition | dg.AssetSpec] = field(default_factory=list)
    jobs: list[dg.UnresolvedAssetJobDefinition] = field(default_factory=list)
    schedules: list[dg.ScheduleDefinition] = field(default_factory=list)
    job_names: dict[str, str] = field(default_factory=dict)


def build_definitions(
    pipelines: Iterable[Pipeline] | None = None,
    *,
    translator: FlowymlTranslator | None = None,
    cache_dir: str | None = None,
    enable_cache: bool = True,
    executor: dg.ExecutorDefinition | Literal["default"] | None = DEFAULT_EXECUTOR,
    schedule_status: dg.DefaultScheduleStatus = dg.DefaultScheduleStatus.STOPPED,
) -> dg.Definitions:
    """A complete code location for ``pipelines`` (``None``: every pipeline named by a step).

    ``executor="default"`` runs each unit in its own process, forked from a server that has
    Dagster and the pipelines' modules imported (fast, unlike ``spawn``); pass ``None`` to leave
    the executor to Dagster, e.g. before ``Definitions.merge`` with a deployment that has one.
    """
    translation = translate(pipelines, translator=translator, schedule_status=schedule_status)
    resources = {
        CACHE_RESOURCE_KEY: FlowymlCacheResource(cache_dir=cache_dir, enabled=enable_cache)
    }
    if executor == DEFAULT_EXECUTOR:
        executor = forkserver_executor(translation.pipelines)
    return dg.Definitions(
        assets=translation.assets,
        jobs=translation.jobs,
        schedules=translation.schedules,
        resources=resources,
        executor=executor,
    )


def discover_pipelines() -> list[Pipeline]:
    """One auto-discovering pipeline per name that registered steps are scoped to."""
    registry = get_step_registry()
    names = registry.pipeline_names()
    if not names and len(registry):
        names = ["default"]
    return [Pipeline(name, auto_discover=True) for name in names]


def forkserver_executor(pipelines: Sequence[Pipeline]) -> dg.ExecutorDefinition:
    """Multiprocess executor forking from a server with Dagster and the step modules loaded."""
    modules = list(_PRELOADED)
    for pipeline in pipelines:
        for step in pipeline.steps:
            module = getattr(step.func, "__module__", None)
            if module and module != "__main__" and module in sys.modules and module not in modules:
                modules.append(module)
    return dg.multiprocess_executor.configured(
        {"start_method": {"forkserver": {"preload_modules": modules}}}
    )


def translate(
    pipelines: Iterable[Pipeline] | None,
    *,
    translator: FlowymlTranslator | None = None,
    schedule_status: dg.DefaultScheduleStatus = dg.DefaultScheduleStatus.STOPPED,
) -> Translation:
    """Translate ``pipelines``; every ambiguity is a ``PipelineDefinitionError`` naming steps."""
    translator = translator or FlowymlTranslator()
    chosen = list(discover_pipelines() if pipelines is None else pipelines)
    if not chosen:
        raise PipelineDefinitionError("build_definitions needs at least one pipeline")
    graphs = {p.name: p.build() for p in chosen}
    translation = Translation(pipelines=chosen, graphs=graphs)
    job_names = _unique(
        {p.name: translator.get_job_name(p) for p in chosen}, "pipelines", "job name"
    )
    translation.job_names = job_names
    steps = _all_steps(graphs.values())
    combined = plan_graph("<definitions>", steps)
    keys = _asset_keys(combined, translator)
    op_names = _unique(
        {" + ".join(s.name for s in u.steps): translator.get_op_name(u) for u in combined.units},
        "steps",
        "op name",
    )
    for unit, op_name in zip(combined.units, op_names.values(), strict=True):
        owners = [p for p in chosen if unit.steps[0].name in graphs[p.name].by_name]
        _check_unit_not_split(unit, owners, graphs)
        plan = _plan_unit(unit, op_name, combined, keys, owners, job_names)
        fields = config_fields(unit.steps, [p.context for p in owners])
        translation.units.append(plan)
        translation.assets.append(_multi_asset(plan, fields, keys, combined, translator))
    for name in combined.pipeline_inputs:
        translation.assets.append(
            dg.AssetSpec(
                key=keys[name],
                description=f"Pipeline input '{name}': supplied from outside the pipelines.",
                kinds={"python"},
                metadata={"flowyml/pipeline_input": name},
            )
        )
    for pipeline in chosen:
        job = _job(pipeline, job_names[pipeline.name], translation, keys)
        translation.jobs.append(job)
        if pipeline.schedule:
            translation.schedules.append(
                dg.ScheduleDefinition(
                    name=f"{job.name}_schedule",
                    cron_schedule=pipeline.schedule,
                    job=job,
                    default_status=schedule_status,
                )
            )
    return translation


def _all_steps(graphs: Iterable[PipelineGraph]) -> list[Step]:
    steps: dict[str, Step] = {}
    for graph in graphs:
        for step in graph.steps:
            seen = steps.setdefault(step.name, step)
            if seen is not step and seen.identity != step.identity:
                raise PipelineDefinitionError(
                    f"two different steps are named '{step.name}' ({seen.identity} in pipeline "
                    f"and {step.identity} in pipeline '{graph.name}')"
                )
    return list(steps.values())


def _unique(names: Mapping[str, str], what: str, kind: str) -> dict[str, str]:
    """``names`` (owner → Dagster name) unchanged, or an error naming both owners of a clash."""
    owner_of: dict[str, str] = {}
    for owner, name in names.items():
        if name in owner_of:
            raise PipelineDefinitionError(
                f"{what} '{owner_of[name]}' and '{owner}' would both get the Dagster {kind} "
                f"'{name}'; rename one of them (or override the translator)"
            )
        owner_of[name] = owner
    return dict(names)


def _asset_keys(graph: PipelineGraph, translator: FlowymlTranslator) -> dict[str, dg.AssetKey]:
    """The asset key of every value: step outputs and pipeline inputs, checked for clashes."""
    keys: dict[str, dg.AssetKey] = {}
    owner_of: dict[dg.AssetKey, str] = {}
    for step in graph.steps:
        for output in step.output_names:
            key = translator.get_asset_key(step, output)
            if key in owner_of:
                raise PipelineDefinitionError(
                    f"steps '{owner_of[key]}' and '{step.name}' would both produce asset "
                    f"{key.to_user_string()}; rename an output (or override the translator)"
                )
            owner_of[key] = step.name
            keys[output] = key
    for name in graph.pipeline_inputs:
        key = translator.get_input_asset_key(name)
        if key in owner_of:
            raise PipelineDefinitionError(
                f"pipeline input '{name}' would get asset key {key.to_user_string()}, which step "
                f"'{owner_of[key]}' already produces"
            )
        keys[name] = key
    return keys


def _check_unit_not_split(
    unit: ExecutionUnit, owners: Sequence[Pipeline], graphs: Mapping[str, PipelineGraph]
) -> None:
    for pipeline in owners:
        missing = [s.name for s in unit.steps if s.name not in graphs[pipeline.name].by_name]
        if missing:
            raise PipelineDefinitionError(
                f"execution group '{unit.group}' runs as one op, but pipeline '{pipeline.name}' "
                f"has only some of its steps (not {missing}); scope all of them the same way"
            )


def _plan_unit(
    unit: ExecutionUnit,
    op_name: str,
    graph: PipelineGraph,
    keys: Mapping[str, dg.AssetKey],
    owners: Sequence[Pipeline],
    job_names: Mapping[str, str],
) -> UnitPlan:
    produced = {o for s in unit.steps for o in s.output_names}
    outputs = {o: _io_name(keys[o]) for o in produced}
    external = [i for s in unit.steps for i in s.inputs if i not in produced]
    inputs = {i: _io_name(keys[i]) for i in dict.fromkeys(external)}
    for flavour, names in (("output", outputs), ("input", inputs)):
        _unique({k: v for k, v in names.items()}, f"{flavour}s of op '{op_name}':", f"{flavour}")
    contexts = {job_names[p.name]: p.context.to_dict() for p in owners}
    default = owners[0].context.to_dict() if owners else {}
    return UnitPlan(unit, op_name, inputs, outputs, contexts, default)


def _io_name(key: dg.AssetKey) -> str:
    return dagster_name("__".join(key.path))


def _multi_asset(
    plan: UnitPlan,
    fields: Any,
    keys: Mapping[str, dg.AssetKey],
    graph: PipelineGraph,
    translator: FlowymlTranslator,
) -> dg.AssetsDefinition:
    unit = plan.unit
    outs: dict[str, dg.AssetOut] = {}
    internal_deps: dict[str, set[dg.AssetKey]] = {}
    for step in unit.steps:
        for output in step.output_names:
            outs[plan.outputs[output]] = dg.AssetOut(
                key=keys[output],
                is_required=False,
                description=translator.get_description(step),
                code_version=translator.get_code_version(step),
                group_name=translator.get_group_name(step),
                tags=translator.get_asset_tags(step),
                kinds=translator.get_kinds(step),
                metadata=translator.get_metadata(step),
            )
            internal_deps[plan.outputs[output]] = {keys[i] for i in step.inputs}
    model = config_model(plan.op_name, fields)
    return dg.multi_asset(
        name=plan.op_name,
        outs=outs,
        ins={d: dg.AssetIn(key=keys[i]) for i, d in plan.inputs.items()},
        description=translator.get_description(unit.steps[0])
        if len(unit.steps) == 1
        else (f"Execution group '{unit.group}': " + ", ".join(s.name for s in unit.steps)),
        op_tags=translator.get_op_tags(unit),
        pool=translator.get_pool(unit),
        retry_policy=translator.get_retry_policy(unit),
        config_schema=model.to_fields_dict() if model is not None else None,
        required_resource_keys={CACHE_RESOURCE_KEY},
        internal_asset_deps=internal_deps if len(unit.steps) > 1 else None,
        can_subset=False,
    )(make_compute_fn(plan, translator))


def _job(
    pipeline: Pipeline,
    job_name: str,
    translation: Translation,
    keys: Mapping[str, dg.AssetKey],
) -> dg.UnresolvedAssetJobDefinition:
    graph = translation.graphs[pipeline.name]
    selected = [keys[o] for s in graph.steps for o in s.output_names]
    ops_config: dict[str, Any] = {}
    for plan in translation.units:
        if plan.unit.steps[0].name in graph.by_name:
            fields = config_fields(plan.unit.steps, [pipeline.context])
            values = run_config_values(fields, pipeline.context)
            if values:
                ops_config[plan.op_name] = {"config": values}
    return dg.define_asset_job(
        name=job_name,
        selection=dg.AssetSelection.assets(*selected),
        config={"ops": ops_config} if ops_config else None,
        description=pipeline.description or f"flowyml pipeline '{pipeline.name}'",
        tags={"flowyml/pipeline": pipeline.name},
    )
