"""Planning: every name, key and value route of a translation, decided once for both flavours.

The asset flavour (``definitions``) and the op-job flavour (``ops``) wrap the same plan: the same
op per unit, the same input/output names, the same config fields, the same compute function.
The translator is asked here, once per asset, op and job, and its answers are kept in the plan:
assembly and the op body read the plan and never ask it again (the op body's one exception is
``get_output_metadata``, which needs the value).
Ambiguities (two steps → one asset key, two units → one op name, two pipelines → one job name, an
execution group split between pipelines) are errors here, naming both sides.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import dagster as dg
from dagster._core.storage.tags import PRIORITY_TAG

from flowyml.core.errors import PipelineDefinitionError
from flowyml.core.graph import ExecutionUnit, PipelineGraph, plan_graph
from flowyml.core.params import ParamTypeError, typed_param
from flowyml.core.pipeline import Pipeline
from flowyml.core.step import Step, get_step_registry
from flowyml_dagster.config import (
    ConfigField,
    config_fields,
    config_schema,
    run_config_values,
)
from flowyml_dagster.names import dagster_name
from flowyml_dagster.translator import FlowymlTranslator, StepOutput

# The translator's run-time question: metadata of one output's value (see ``Plan``).
OutputMetadata = Callable[[Step, str, Any], Mapping[str, Any]]


@dataclass(frozen=True)
class UnitPlan:
    """One unit (a step, or an execution group) as one op.

    ``inputs`` maps flowyml input names to the op's Dagster input names; ``outputs`` maps flowyml
    output names to its Dagster output names, and ``specs`` to their assets. ``contexts`` holds
    each owning job's pipeline context (by job name) for params that never travel in run config;
    ``default_context`` serves runs outside those jobs (an ad-hoc materialization from the asset
    graph). ``description`` to ``retry_policy`` are the translator's answers for the op.
    """

    unit: ExecutionUnit
    op_name: str
    inputs: Mapping[str, str]
    outputs: Mapping[str, str]
    specs: Mapping[str, dg.AssetSpec]
    description: str
    tags: Mapping[str, Any]
    pool: str | None
    retry_policy: dg.RetryPolicy | None
    config_fields: tuple[ConfigField, ...]
    contexts: Mapping[str, Mapping[str, Any]]
    default_context: Mapping[str, Any]
    pipelines: tuple[str, ...]

    def config_schema(self) -> dict[str, dg.Field] | None:
        """Dagster config fields of the op, or ``None`` without params."""
        return config_schema(self.op_name, self.config_fields)


@dataclass(frozen=True)
class Plan:
    """The translation of some pipelines, before it becomes Dagster objects.

    ``output_metadata`` is the translator's ``get_output_metadata``: the one question whose
    answer depends on a step's value, so the op body asks it at run time.
    """

    pipelines: tuple[Pipeline, ...]
    graphs: Mapping[str, PipelineGraph]
    job_names: Mapping[str, str]
    keys: Mapping[str, dg.AssetKey]
    units: tuple[UnitPlan, ...]
    pipeline_inputs: tuple[str, ...]
    output_metadata: OutputMetadata

    @cached_property
    def producer_of(self) -> dict[str, UnitPlan]:
        """The unit that produces each value, by flowyml output name."""
        return {output: unit for unit in self.units for output in unit.outputs}

    def units_of(self, pipeline: Pipeline) -> list[UnitPlan]:
        return [u for u in self.units if pipeline.name in u.pipelines]

    def run_config(self, pipeline: Pipeline, context: Mapping[str, Any]) -> dict[str, Any]:
        """Run config giving ``pipeline``'s ops the values of ``context`` (its job's default)."""
        ops = {}
        for unit in self.units_of(pipeline):
            values = run_config_values(unit.config_fields, context)
            if values:
                ops[unit.op_name] = {"config": values}
        return {"ops": ops} if ops else {}


def discover_pipelines() -> list[Pipeline]:
    """One auto-discovering pipeline per name that registered steps are scoped to."""
    registry = get_step_registry()
    names = registry.pipeline_names()
    if not names and len(registry):
        names = ["default"]
    return [Pipeline(name, auto_discover=True) for name in names]


def make_plan(pipelines: Iterable[Pipeline] | None, translator: FlowymlTranslator) -> Plan:
    """Plan ``pipelines`` (``None``: discover them); every ambiguity raises here."""
    chosen = tuple(discover_pipelines() if pipelines is None else pipelines)
    if not chosen:
        raise PipelineDefinitionError("no pipelines to translate")
    graphs = {p.name: p.build() for p in chosen}
    job_names = unique_names(
        {p.name: translator.get_job_name(p) for p in chosen}, "pipelines", "job name"
    )
    if len(chosen) == 1:
        combined = graphs[chosen[0].name]
    else:
        combined = plan_graph("<definitions>", _all_steps(graphs.values()))
    keys, specs = _asset_specs(combined, translator)
    op_names = unique_names(
        {" + ".join(s.name for s in u.steps): translator.get_op_name(u) for u in combined.units},
        "steps",
        "op name",
    )
    units = []
    for unit, op_name in zip(combined.units, op_names.values(), strict=True):
        owners = [p for p in chosen if unit.steps[0].name in graphs[p.name].by_name]
        _check_unit_not_split(unit, owners, graphs)
        planned = _plan_unit(unit, op_name, keys, specs, owners, job_names, translator)
        _check_priority(planned)
        _check_context_values(planned, owners)
        units.append(planned)
    return Plan(
        chosen,
        graphs,
        job_names,
        keys,
        tuple(units),
        combined.pipeline_inputs,
        translator.get_output_metadata,
    )


def unique_names(names: Mapping[str, str], what: str, kind: str) -> dict[str, str]:
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


def _all_steps(graphs: Iterable[PipelineGraph]) -> list[Step]:
    steps: dict[str, Step] = {}
    for graph in graphs:
        for step in graph.steps:
            seen = steps.setdefault(step.name, step)
            if seen is not step:
                raise PipelineDefinitionError(
                    f"two different steps are named '{step.name}': {seen.identity} at "
                    f"{seen.location} and {step.identity} at {step.location} (in pipeline "
                    f"'{graph.name}'); give one of them another name="
                )
    return list(steps.values())


def _asset_specs(
    graph: PipelineGraph, translator: FlowymlTranslator
) -> tuple[dict[str, dg.AssetKey], dict[str, dg.AssetSpec]]:
    """The asset key of every value (step outputs and pipeline inputs, checked for clashes) and
    the spec of every step output. Steps come in dependency order, so each spec is asked with
    the keys its inputs already have."""
    keys = {name: translator.get_input_asset_key(name) for name in graph.pipeline_inputs}
    specs: dict[str, dg.AssetSpec] = {}
    owner_of: dict[dg.AssetKey, str] = {}
    for step in graph.steps:
        deps = tuple(dict.fromkeys(keys[i] for i in step.inputs))
        for output in step.output_names:
            spec = translator.get_asset_spec(StepOutput(step, output, deps))
            _check_spec(translator, step, output, spec)
            _check_deps_keep_inputs(step, output, spec, deps)
            if spec.key in owner_of:
                raise PipelineDefinitionError(
                    f"steps '{owner_of[spec.key]}' and '{step.name}' would both produce asset "
                    f"{spec.key.to_user_string()}; rename an output (or override the translator)"
                )
            owner_of[spec.key] = step.name
            specs[output] = spec
            keys[output] = spec.key
    for name in graph.pipeline_inputs:
        key = keys[name]
        if key in owner_of:
            raise PipelineDefinitionError(
                f"pipeline input '{name}' would get asset key {key.to_user_string()}, which step "
                f"'{owner_of[key]}' already produces"
            )
    return keys, specs


def _check_spec(translator: object, step: Step, output: str, spec: object) -> None:
    """What ``get_asset_spec`` returned is an unpartitioned ``dagster.AssetSpec``: anything else
    would fail later, inside Dagster, without naming the step."""
    if not isinstance(spec, dg.AssetSpec):
        raise PipelineDefinitionError(
            f"translator {type(translator).__name__}: get_asset_spec for step '{step.name}' "
            f"output '{output}' must return dagster.AssetSpec, got {type(spec).__name__}"
        )
    if spec.partitions_def is not None:
        raise PipelineDefinitionError(
            f"step '{step.name}': the asset spec of output '{output}' has a partitions_def; "
            "partitioned assets are not supported"
        )


def _check_deps_keep_inputs(
    step: Step, output: str, spec: dg.AssetSpec, inputs: tuple[dg.AssetKey, ...]
) -> None:
    """The step's inputs are loaded into it, so its assets must depend on them (Dagster would
    refuse the multi-asset with a message about its own internals)."""
    dropped = set(inputs) - {dep.asset_key for dep in spec.deps}
    if dropped:
        names = sorted(key.to_user_string() for key in dropped)
        raise PipelineDefinitionError(
            f"step '{step.name}': the asset spec of output '{output}' drops the deps {names}, "
            "which are inputs of the step; a spec may add deps but must keep these"
        )


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


def _check_priority(planned: UnitPlan) -> None:
    """Dagster's executor parses ``dagster/priority`` as an int when the run starts: check now."""
    unit = planned.unit
    priority = planned.tags.get(PRIORITY_TAG)
    if priority is None:
        return
    try:
        int(priority)
    except (TypeError, ValueError):
        steps = [s.name for s in unit.steps if PRIORITY_TAG in s.tags] or [unit.steps[0].name]
        raise PipelineDefinitionError(
            f"step '{steps[0]}': tags['{PRIORITY_TAG}'] must be an integer, got {priority!r}"
        ) from None


def _check_context_values(unit: UnitPlan, owners: Sequence[Pipeline]) -> None:
    """Each pipeline's context values fit the op's config types (else the run would not start),
    by the core's one rule for typing params; its message never shows the value."""
    for pipeline in owners:
        for field in unit.config_fields:
            if field.name not in pipeline.context:
                continue
            try:
                typed_param(field.name, field.annotation, pipeline.context[field.name])
            except ParamTypeError as exc:
                step = next(
                    s.name
                    for s in unit.unit.steps
                    if field.name in (*s.param_names, *s.condition_names)
                )
                raise PipelineDefinitionError(
                    f"pipeline '{pipeline.name}': step '{step}': {exc}"
                ) from None


def _plan_unit(
    unit: ExecutionUnit,
    op_name: str,
    keys: Mapping[str, dg.AssetKey],
    specs: Mapping[str, dg.AssetSpec],
    owners: Sequence[Pipeline],
    job_names: Mapping[str, str],
    translator: FlowymlTranslator,
) -> UnitPlan:
    produced = [o for s in unit.steps for o in s.output_names]
    external = dict.fromkeys(i for s in unit.steps for i in s.inputs if i not in produced)
    outputs = unique_names(
        {o: io_name(keys[o]) for o in produced}, f"op '{op_name}' outputs", "name"
    )
    inputs = unique_names({i: io_name(keys[i]) for i in external}, f"op '{op_name}' inputs", "name")
    return UnitPlan(
        unit=unit,
        op_name=op_name,
        inputs=inputs,
        outputs=outputs,
        specs={o: specs[o] for o in produced},
        description=translator.get_unit_description(unit),
        tags=translator.get_op_tags(unit),
        pool=translator.get_pool(unit),
        retry_policy=translator.get_retry_policy(unit),
        config_fields=config_fields(unit.steps, [p.context for p in owners]),
        contexts={job_names[p.name]: p.context.to_dict() for p in owners},
        default_context=owners[0].context.to_dict() if owners else {},
        pipelines=tuple(p.name for p in owners),
    )


def io_name(key: dg.AssetKey) -> str:
    """The Dagster input/output name that carries the value of asset ``key``."""
    return dagster_name("__".join(key.path))
