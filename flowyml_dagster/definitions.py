"""The builder: flowyml pipelines → one ``dagster.Definitions`` (assets, jobs, schedules ...).

Every step output is an asset; each unit (a step, or an execution group) is one multi-asset whose
body is the shared flowyml core; each pipeline is an asset job selecting its steps, with the
pipeline's context as the job's default run config. Every naming and tagging decision is the
translator's and every name is fixed by the plan; this module only assembles.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import dagster as dg

from flowyml.core.errors import PipelineDefinitionError
from flowyml.core.pipeline import Pipeline
from flowyml_dagster.cache import FlowymlCacheResource
from flowyml_dagster.compute import make_compute_fn
from flowyml_dagster.constants import (
    CACHE_RESOURCE_KEY,
    K8S_CONFIG_TAG,
    PIPELINE_INPUT_METADATA_KEY,
    PIPELINE_TAG,
    PRODUCED_BY_METADATA_KEY,
)
from flowyml_dagster.planning import Plan, UnitPlan, make_plan
from flowyml_dagster.storage import instance_storage_io_manager
from flowyml_dagster.translator import FlowymlTranslator

ExecutorChoice = dg.ExecutorDefinition | Literal["default"] | None
# A Pythonic IO manager (``dg.ConfigurableIOManager``, e.g. dagster-aws's ``S3PickleIOManager``)
# is a ``ConfigurableIOManagerFactory``, not an ``IOManagerDefinition``: both are accepted.
IOManagerChoice = (
    dg.IOManagerDefinition | dg.ConfigurableIOManagerFactory | Literal["default"] | None
)
# What every step process imports before its step starts and ``import dagster`` leaves out: the
# instance's SQL storage (SQLAlchemy, Alembic; ~1 s a step when each process imports it anew).
_PRELOADED = (
    "dagster",
    "dagster._core.storage.event_log",
    "dagster._core.storage.runs",
    "dagster._core.storage.schedules",
    "flowyml",
    "flowyml_dagster",
)
# Read when the job is rebuilt in a step process if a step has its own ``dagster-k8s/config``
# (merged with its resources): the Kubernetes client, ~0.4 s a step.
_K8S_CONFIG_READER = "dagster_k8s.job"


@dataclass(frozen=True)
class Translation:
    """The typed result of translating pipelines: the plan and the Dagster objects made from it."""

    plan: Plan
    assets: tuple[dg.AssetsDefinition | dg.AssetSpec, ...]
    jobs: tuple[dg.UnresolvedAssetJobDefinition, ...]
    schedules: tuple[dg.ScheduleDefinition, ...]

    def to_definitions(
        self,
        *,
        cache_dir: str | None,
        enable_cache: bool,
        executor: ExecutorChoice,
        io_manager: IOManagerChoice = "default",
    ) -> dg.Definitions:
        return dg.Definitions(
            assets=self.assets,
            jobs=self.jobs,
            schedules=self.schedules,
            resources=step_resources(cache_dir, enable_cache, io_manager),
            executor=resolve_executor(executor, self.plan.pipelines),
        )


def build_definitions(
    pipelines: Iterable[Pipeline] | None = None,
    *,
    translator: FlowymlTranslator | None = None,
    cache_dir: str | None = None,
    enable_cache: bool = True,
    executor: ExecutorChoice = "default",
    io_manager: IOManagerChoice = "default",
    schedule_status: dg.DefaultScheduleStatus = dg.DefaultScheduleStatus.STOPPED,
) -> dg.Definitions:
    """A complete code location for ``pipelines`` (``None``: every pipeline named by a step).

    ``executor="default"`` runs each unit in its own process, forked from a server that has
    Dagster and the pipelines' modules imported (fast, unlike ``spawn``); ``io_manager="default"``
    stores values under the instance's storage directory, a location run config cannot move.
    Pass ``None`` for either to leave it to Dagster or to a deployment's own, e.g. before
    ``Definitions.merge`` with definitions that have one, or an IO manager of your own to keep
    values elsewhere, e.g. on object storage: ``io_manager=S3PickleIOManager(s3_resource=
    S3Resource(endpoint_url=...), s3_bucket=...)`` (dagster-aws; credentials from the usual AWS
    chain).
    """
    translation = translate(pipelines, translator=translator, schedule_status=schedule_status)
    return translation.to_definitions(
        cache_dir=cache_dir, enable_cache=enable_cache, executor=executor, io_manager=io_manager
    )


def translate(
    pipelines: Iterable[Pipeline] | None,
    *,
    translator: FlowymlTranslator | None = None,
    schedule_status: dg.DefaultScheduleStatus = dg.DefaultScheduleStatus.STOPPED,
    job_executor: dg.ExecutorDefinition | None = None,
) -> Translation:
    """Translate ``pipelines`` to assets, asset jobs and schedules.

    ``job_executor`` is set on each job, for definitions merged with others that may not carry
    an executor of their own (several components of one ``dg`` project)."""
    translator = translator or FlowymlTranslator()
    plan = make_plan(pipelines, translator)
    assets: list[dg.AssetsDefinition | dg.AssetSpec] = [
        _multi_asset(unit, plan) for unit in plan.units
    ]
    assets.extend(
        dg.AssetSpec(
            key=plan.keys[name],
            description=f"Pipeline input '{name}': supplied from outside the pipelines.",
            metadata={PIPELINE_INPUT_METADATA_KEY: name},
        )
        for name in plan.pipeline_inputs
    )
    jobs = {p.name: _asset_job(p, plan, job_executor) for p in plan.pipelines}
    schedules = tuple(
        _schedule(p, jobs[p.name], schedule_status) for p in plan.pipelines if p.schedule
    )
    return Translation(plan, tuple(assets), tuple(jobs.values()), schedules)


def _schedule(
    pipeline: Pipeline, job: dg.UnresolvedAssetJobDefinition, status: dg.DefaultScheduleStatus
) -> dg.ScheduleDefinition:
    """The pipeline's schedule; a cron string Dagster cannot read names the pipeline."""
    try:
        return dg.ScheduleDefinition(
            name=f"{job.name}_schedule",
            cron_schedule=pipeline.schedule,
            job=job,
            default_status=status,
        )
    except dg.DagsterInvalidDefinitionError as exc:
        raise PipelineDefinitionError(
            f"pipeline '{pipeline.name}': schedule {pipeline.schedule!r} is not a cron schedule "
            f"Dagster can run ({exc})"
        ) from None


def step_resources(
    cache_dir: str | None, enable_cache: bool, io_manager: IOManagerChoice
) -> dict[str, dg.ResourceDefinition | dg.ConfigurableIOManagerFactory]:
    """The cache resource and the IO manager, neither configurable from run config: both say
    where pickles are loaded from, which is not for whoever launches a run to choose. (An IO
    manager given here is the caller's, with whatever config schema it has.)"""
    resource = FlowymlCacheResource(cache_dir=cache_dir, enabled=enable_cache)
    resources: dict[str, dg.ResourceDefinition | dg.ConfigurableIOManagerFactory] = {
        CACHE_RESOURCE_KEY: dg.ResourceDefinition(
            resource_fn=lambda _: resource,
            config_schema={},  # an empty schema: any run config for it is refused
            description="flowyml's step cache (location fixed by the code location)",
        )
    }
    if io_manager == "default":
        resources["io_manager"] = instance_storage_io_manager()
    elif io_manager is not None:
        resources["io_manager"] = io_manager
    return resources


def resolve_executor(
    executor: ExecutorChoice, pipelines: Sequence[Pipeline]
) -> dg.ExecutorDefinition | None:
    """``"default"`` → a multiprocess executor forking from a server that has imported what each
    step process would import again: Dagster's storage, flowyml and the steps' own modules."""
    if executor != "default":
        return executor
    return dg.multiprocess_executor.configured(
        {"start_method": {"forkserver": {"preload_modules": preloaded_modules(pipelines)}}}
    )


def preloaded_modules(pipelines: Sequence[Pipeline]) -> list[str]:
    """The modules the default executor's fork server imports once per run, so that no step
    process imports them itself."""
    modules = list(_PRELOADED)
    for pipeline in pipelines:
        for step in pipeline.steps:
            module = getattr(step.func, "__module__", None)
            if module and module != "__main__" and module in sys.modules and module not in modules:
                modules.append(module)
            if K8S_CONFIG_TAG in step.tags and _K8S_CONFIG_READER not in modules:
                modules.append(_K8S_CONFIG_READER)
    return modules


def _multi_asset(unit: UnitPlan, plan: Plan) -> dg.AssetsDefinition:
    """The unit's op as a multi-asset with one out per planned spec.

    ``AssetOut.from_spec`` takes a spec without deps, so each spec's deps become the out's
    internal deps; deps that are neither the unit's inputs nor its own outputs (lineage a spec
    added) are the multi-asset's non-argument deps.
    """
    ins = {name: dg.AssetIn(key=plan.keys[value]) for value, name in unit.inputs.items()}
    known = {asset_in.key for asset_in in ins.values()} | {s.key for s in unit.specs.values()}
    outs: dict[str, dg.AssetOut] = {}
    internal_deps: dict[str, set[dg.AssetKey]] = {}
    # Which jobs materialize the unit's assets: a run that needs one before it exists says so.
    produced_by = dg.MetadataValue.json({p: plan.job_names[p] for p in unit.pipelines})
    lineage: dict[dg.AssetKey, dg.AssetDep] = {}
    for output, spec in unit.specs.items():
        name = unit.outputs[output]
        outs[name] = dg.AssetOut.from_spec(
            spec.replace_attributes(
                deps=[], metadata={**spec.metadata, PRODUCED_BY_METADATA_KEY: produced_by}
            ),
            is_required=not spec.skippable,
        )
        internal_deps[name] = {dep.asset_key for dep in spec.deps}
        lineage.update((d.asset_key, d) for d in spec.deps if d.asset_key not in known)
    return dg.multi_asset(
        name=unit.op_name,
        outs=outs,
        ins=ins,
        deps=list(lineage.values()) or None,
        description=unit.description,
        op_tags=dict(unit.tags),
        pool=unit.pool,
        retry_policy=unit.retry_policy,
        config_schema=unit.config_schema(),
        required_resource_keys={CACHE_RESOURCE_KEY},
        internal_asset_deps=internal_deps,
        can_subset=False,
    )(make_compute_fn(unit, plan.output_metadata))


def _asset_job(
    pipeline: Pipeline, plan: Plan, executor: dg.ExecutorDefinition | None
) -> dg.UnresolvedAssetJobDefinition:
    graph = plan.graphs[pipeline.name]
    selected = [plan.keys[o] for s in graph.steps for o in s.output_names]
    return dg.define_asset_job(
        name=plan.job_names[pipeline.name],
        selection=dg.AssetSelection.assets(*selected),
        config=plan.run_config(pipeline, pipeline.context) or None,
        description=pipeline.description or f"flowyml pipeline '{pipeline.name}'",
        tags={PIPELINE_TAG: pipeline.name},
        executor_def=executor,
    )
