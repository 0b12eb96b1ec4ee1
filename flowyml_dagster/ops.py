"""The op-job flavour: a pipeline as a plain Dagster op job, for deployments without assets.

Same plan, same compute function as the asset flavour; values travel between ops as outputs
(through the job's IO manager) instead of being recorded as assets. A pipeline input is an
unconnected op input, given in run config (``ops.<op>.inputs.<name>.value``).
"""

from __future__ import annotations

import dagster as dg

from flowyml.core.pipeline import Pipeline
from flowyml_dagster.compute import make_compute_fn
from flowyml_dagster.constants import CACHE_RESOURCE_KEY, PIPELINE_TAG
from flowyml_dagster.definitions import (
    ExecutorChoice,
    IOManagerChoice,
    resolve_executor,
    step_resources,
)
from flowyml_dagster.planning import Plan, UnitPlan, make_plan
from flowyml_dagster.translator import FlowymlTranslator


def build_op_job(
    pipeline: Pipeline,
    *,
    translator: FlowymlTranslator | None = None,
    cache_dir: str | None = None,
    enable_cache: bool = True,
    executor: ExecutorChoice = "default",
    io_manager: IOManagerChoice = "default",
) -> dg.JobDefinition:
    """An op job for ``pipeline``, with its resources and executor bound (as in
    ``build_definitions``)."""
    translator = translator or FlowymlTranslator()
    plan = make_plan([pipeline], translator)
    ops = {unit.op_name: _op(unit, plan) for unit in plan.units}
    graph = dg.GraphDefinition(
        name=plan.job_names[pipeline.name],
        node_defs=list(ops.values()),
        dependencies=_dependencies(plan),
        description=pipeline.description or f"flowyml pipeline '{pipeline.name}'",
    )
    return graph.to_job(
        resource_defs=step_resources(cache_dir, enable_cache, io_manager),
        config=plan.run_config(pipeline, pipeline.context) or None,
        executor_def=resolve_executor(executor, [pipeline]),
        tags={PIPELINE_TAG: pipeline.name},
    )


def _op(unit: UnitPlan, plan: Plan) -> dg.OpDefinition:
    return dg.op(
        name=unit.op_name,
        ins={name: dg.In(dg.Any) for name in unit.inputs.values()},
        out={name: dg.Out(dg.Any, is_required=False) for name in unit.outputs.values()},
        description=unit.description,
        tags=dict(unit.tags),
        pool=unit.pool,
        retry_policy=unit.retry_policy,
        config_schema=unit.config_schema(),
        required_resource_keys={CACHE_RESOURCE_KEY},
    )(make_compute_fn(unit, plan.output_metadata))


def _dependencies(plan: Plan) -> dict[str, dict[str, dg.DependencyDefinition]]:
    dependencies: dict[str, dict[str, dg.DependencyDefinition]] = {}
    for unit in plan.units:
        for value, input_name in unit.inputs.items():
            producer = plan.producer_of.get(value)
            if producer is not None:
                dependencies.setdefault(unit.op_name, {})[input_name] = dg.DependencyDefinition(
                    producer.op_name, producer.outputs[value]
                )
    return dependencies
