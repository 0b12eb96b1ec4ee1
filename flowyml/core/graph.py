"""A pipeline's dependency graph, built from declared inputs/outputs and validated once.

Edges come only from names: a step that lists ``"data/train"`` among its inputs depends on the
step that lists it among its outputs. An input nobody produces is a *pipeline input*, given to
``run(inputs=...)``. Steps of one ``execution_group`` form one unit that runs back to back.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

from flowyml.core.errors import (
    MissingPipelineInputError,
    PipelineDefinitionError,
    StepDefinitionError,
)
from flowyml.core.execution import StepStatus
from flowyml.core.params import ParamTypeError, typed_param
from flowyml.core.step import Step

if TYPE_CHECKING:  # the resource models need pydantic: imported once a step has resources
    from flowyml.core.resources import ResourceRequirements


@dataclass(frozen=True)
class ExecutionUnit:
    """Steps that run together: one step, or every step of an execution group, in order."""

    name: str
    steps: tuple[Step, ...]
    group: str | None
    resources: ResourceRequirements | None

    @property
    def group_name(self) -> str:
        """The unit's name under the original flowyml's ``StepGroup`` spelling."""
        return self.name

    @property
    def aggregated_resources(self) -> ResourceRequirements | None:
        """What the unit's process or pod needs: the merged requirements of its steps."""
        return self.resources

    @property
    def execution_order(self) -> list[str]:
        return [s.name for s in self.steps]


@dataclass(frozen=True, eq=False)
class GraphNode:
    """One step as a node of the graph (the original flowyml's ``Node``): equal by name."""

    name: str
    step: Step
    inputs: list[str]
    outputs: list[str]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, GraphNode) and other.name == self.name

    def __hash__(self) -> int:
        return hash(self.name)


@dataclass(frozen=True)
class PipelineGraph:
    """The validated graph: steps in dependency order, who produces what, and the units."""

    name: str
    steps: tuple[Step, ...]
    producers: Mapping[str, str]
    pipeline_inputs: tuple[str, ...]
    units: tuple[ExecutionUnit, ...]

    @cached_property
    def by_name(self) -> dict[str, Step]:
        return {s.name: s for s in self.steps}

    @cached_property
    def nodes(self) -> dict[str, GraphNode]:
        """The steps as nodes, by name, in dependency order."""
        return {s.name: GraphNode(s.name, s, list(s.inputs), list(s.outputs)) for s in self.steps}

    def topological_sort(self) -> list[GraphNode]:
        """Every node after the nodes whose outputs it needs."""
        return list(self.nodes.values())

    def get_dependencies(self, name: str) -> set[str]:
        """Names of the steps whose outputs step ``name`` takes."""
        return set(self.upstream_of(self.by_name[name]))

    def get_dependents(self, name: str) -> set[str]:
        """Names of the steps that take an output of step ``name``."""
        return set(self._dependents[name])

    def get_all_dependencies(self, name: str) -> set[str]:
        """Every step that step ``name`` needs, directly or not."""
        return {s.name for s in self.steps if name in self.downstream_of(s.name)}

    def get_all_dependents(self, name: str) -> set[str]:
        """Every step that needs step ``name``, directly or not."""
        return self.downstream_of(name)

    def upstream_of(self, step: Step) -> list[str]:
        """Names of the steps whose outputs ``step`` needs, in input order, without repeats."""
        return list(dict.fromkeys(self.producers[i] for i in step.inputs if i in self.producers))

    @cached_property
    def _dependents(self) -> dict[str, list[str]]:
        dependents: dict[str, list[str]] = {s.name: [] for s in self.steps}
        for step in self.steps:
            for upstream in self.upstream_of(step):
                dependents[upstream].append(step.name)
        return dependents

    def downstream_of(self, name: str) -> set[str]:
        """Every step that needs, directly or not, an output of step ``name``."""
        found: set[str] = set()
        frontier = [name]
        while frontier:
            for dependent in self._dependents[frontier.pop()]:
                if dependent not in found:
                    found.add(dependent)
                    frontier.append(dependent)
        return found


def blocked(
    graph: PipelineGraph, step: Step, statuses: Mapping[str, StepStatus]
) -> tuple[StepStatus, str] | None:
    """Why ``step`` cannot run, given how the steps before it ended; ``None`` if it can.

    The one rule both runners follow. An execution group runs as one unit: it does not start
    when a value it needs from outside did not come (as Dagster does not start an op with a
    missing input), and it stops at its first failed step. Otherwise a step needs each upstream
    step to have succeeded. ``statuses`` holds the steps already decided, in unit order.
    """
    unit = next(u for u in graph.units if step in u.steps)
    if unit.group is not None:
        inside = {s.name for s in unit.steps}
        for member in unit.steps:
            for upstream in graph.upstream_of(member):
                if upstream not in inside and (why := _not_produced(upstream, statuses)):
                    return why[0], (
                        f"execution group '{unit.group}' needs a value of step '{upstream}', "
                        f"which {why[1]}"
                    )
        for member in unit.steps:
            if member is step:
                break
            if statuses.get(member.name) is StepStatus.FAILED:
                return (
                    StepStatus.UPSTREAM_FAILED,
                    f"execution group '{unit.group}' stopped at failed step '{member.name}'",
                )
    for upstream in graph.upstream_of(step):
        if why := _not_produced(upstream, statuses):
            return why[0], f"upstream step '{upstream}' {why[1]}"
    return None


def _not_produced(
    upstream: str, statuses: Mapping[str, StepStatus]
) -> tuple[StepStatus, str] | None:
    """How an upstream step ended without its values (the status to give, and a verb phrase)."""
    status = statuses.get(upstream)
    if status in (StepStatus.FAILED, StepStatus.UPSTREAM_FAILED):
        return StepStatus.UPSTREAM_FAILED, "failed"
    if status is StepStatus.SKIPPED:
        return StepStatus.SKIPPED, "was skipped"
    return None


def plan_graph(name: str, steps: Sequence[Step]) -> PipelineGraph:
    """Order ``steps`` and group them into units, checking the wiring but not param values."""
    unique = _unique_steps(name, steps)
    for step in unique:
        if (problem := step.binding_problem) is not None:
            raise StepDefinitionError(step.name, "inputs", problem)
    producers = _producers(unique)
    ordered = _topological(name, unique, producers)
    inputs = tuple(dict.fromkeys(i for s in ordered for i in s.inputs if i not in producers))
    _check_not_nested(name, producers, inputs)
    return PipelineGraph(
        name=name,
        steps=tuple(ordered),
        producers=producers,
        pipeline_inputs=inputs,
        units=_units(name, ordered, producers),
    )


def check_values(pipeline: str, steps: Iterable[Step], context: Mapping[str, Any]) -> None:
    """Every param has a value, no context name shadows an input, every condition can be called."""
    for step in steps:
        for input_name, param in step.signature.input_parameters:
            if param in context:
                raise PipelineDefinitionError(
                    f"pipeline '{pipeline}': step '{step.name}': parameter '{param}' receives "
                    f"input '{input_name}' and is also a context parameter; rename one of them"
                )
        for param in step.signature.params:
            if param.required and param.name not in context:
                raise PipelineDefinitionError(
                    f"pipeline '{pipeline}': step '{step.name}': parameter '{param.name}' has no "
                    "value: it is not an input, not in the context and has no default"
                )
            if param.name in context:
                try:
                    typed_param(param.name, param.annotation, context[param.name])
                except ParamTypeError as exc:
                    raise PipelineDefinitionError(
                        f"pipeline '{pipeline}': step '{step.name}': {exc}"
                    ) from None
        if step.condition_signature is not None:
            known = {*step.inputs, *step.signature.parameter_of_input.values(), *step.param_names}
            known.update(context)
            if missing := [n for n in step.condition_signature.required if n not in known]:
                raise PipelineDefinitionError(
                    f"pipeline '{pipeline}': step '{step.name}': condition asks for {missing}, "
                    "which are neither inputs nor params of the step nor context parameters"
                )


def check_inputs(graph: PipelineGraph, inputs: Mapping[str, Any]) -> None:
    """Every pipeline input has a value, else an error naming the inputs and the steps in need."""
    if missing := [name for name in graph.pipeline_inputs if name not in inputs]:
        needing = [s.name for s in graph.steps if any(i in missing for i in s.inputs)]
        raise MissingPipelineInputError(
            f"pipeline '{graph.name}' needs inputs {missing} (for steps {needing}), which no step "
            "produces; pass them as run(inputs={...})"
        )


def _unique_steps(pipeline: str, steps: Sequence[Step]) -> list[Step]:
    if not steps:
        raise PipelineDefinitionError(f"pipeline '{pipeline}' has no steps")
    unique: dict[str, Step] = {}
    for step in steps:
        seen = unique.get(step.name)
        if seen is None:
            unique[step.name] = step
        elif seen is not step:
            raise PipelineDefinitionError(
                f"pipeline '{pipeline}': two different steps are named '{step.name}' "
                f"({seen.identity} at {seen.location} and {step.identity} at {step.location}); "
                "give one of them another name="
            )
    return list(unique.values())


def _producers(steps: Iterable[Step]) -> dict[str, str]:
    producers: dict[str, str] = {}
    for step in steps:
        for output in step.output_names:
            if output in producers:
                raise PipelineDefinitionError(
                    f"output '{output}' is produced by two steps: '{producers[output]}' and "
                    f"'{step.name}'"
                )
            producers[output] = step.name
    return producers


def _check_not_nested(
    pipeline: str, producers: Mapping[str, str], pipeline_inputs: Sequence[str]
) -> None:
    """No value's name is a folder of another's (``data`` and ``data/train``): values are stored
    at paths made from their names, and one path cannot be both a file and a folder."""
    owner = dict.fromkeys(pipeline_inputs, "a pipeline input")
    owner.update((o, f"step '{s}'") for o, s in producers.items())
    for name in owner:
        segments = name.split("/")
        for cut in range(1, len(segments)):
            folder = "/".join(segments[:cut])
            if folder in owner:
                raise PipelineDefinitionError(
                    f"pipeline '{pipeline}': '{folder}' ({owner[folder]}) and '{name}' "
                    f"({owner[name]}) cannot both be values: '{folder}' would be a file and the "
                    f"folder of '{name}'; rename one (e.g. '{folder}/all')"
                )


def _topological(pipeline: str, steps: list[Step], producers: Mapping[str, str]) -> list[Step]:
    """Steps after everything they need; raises on a cycle, naming it."""
    needs = {s.name: {producers[i] for i in s.inputs if i in producers} for s in steps}
    order, stuck = _in_rounds([s.name for s in steps], needs)
    if stuck:
        cycle = _find_cycle(stuck)
        raise PipelineDefinitionError(f"pipeline '{pipeline}' has a cycle: {' -> '.join(cycle)}")
    by_name = {s.name: s for s in steps}
    return [by_name[name] for name in order]


def _in_rounds(
    nodes: Sequence[str], needs: Mapping[str, set[str]]
) -> tuple[list[str], dict[str, set[str]]]:
    """Kahn's algorithm in rounds: each round takes every node whose needs are met, in the order
    of ``nodes``, so the result is stable. Returns the order and the nodes left waiting on each
    other (a cycle), with their unmet needs. O(nodes + edges), so 5000-step graphs stay cheap.
    """
    position = {node: index for index, node in enumerate(nodes)}
    waiting = {node: len(needs[node]) for node in nodes}
    dependents: dict[str, list[str]] = {node: [] for node in nodes}
    for node in nodes:
        for needed in needs[node]:
            dependents[needed].append(node)
    order: list[str] = []
    ready = [node for node in nodes if waiting[node] == 0]
    while ready:
        order.extend(ready)
        unblocked = []
        for node in ready:
            for dependent in dependents[node]:
                waiting[dependent] -= 1
                if waiting[dependent] == 0:
                    unblocked.append(dependent)
        ready = sorted(unblocked, key=position.__getitem__)
    placed = set(order)
    return order, {node: needs[node] - placed for node in nodes if node not in placed}


def _find_cycle(needs: Mapping[str, set[str]]) -> list[str]:
    """One cycle among steps that all wait on each other, as ``a -> b -> a``."""
    start = next(iter(needs))
    path = [start]
    while True:
        following = next(n for n in sorted(needs[path[-1]]) if n in needs)
        if following in path:
            return [*path[path.index(following) :], following]
        path.append(following)


def _units(
    pipeline: str, ordered: list[Step], producers: Mapping[str, str]
) -> tuple[ExecutionUnit, ...]:
    unit_of = {
        s.name: f"group:{s.execution_group}" if s.execution_group else s.name for s in ordered
    }
    members: dict[str, list[Step]] = {}
    for step in ordered:
        members.setdefault(unit_of[step.name], []).append(step)
    needs = {
        unit: {unit_of[producers[i]] for s in group for i in s.inputs if i in producers} - {unit}
        for unit, group in members.items()
    }
    placed, stuck = _in_rounds(list(members), needs)
    if stuck:
        waiting = sorted({s.execution_group for u in stuck for s in members[u]} - {None})
        cycle = " -> ".join(
            f"group '{members[u][0].execution_group}'" if members[u][0].execution_group
            else f"step '{u}'"
            for u in _find_cycle(stuck)
        )  # fmt: skip
        raise PipelineDefinitionError(
            f"pipeline '{pipeline}': execution groups {waiting} "
            "cannot each run as one unit: a step outside a group both needs and feeds it "
            f"({cycle})"
        )
    units = []
    for unit in placed:
        group = members[unit]
        name = group[0].execution_group
        try:
            resources = _merged_requirements(group)
        except ValueError as exc:
            raise PipelineDefinitionError(
                f"pipeline '{pipeline}': execution group '{name}' (steps "
                f"{[s.name for s in group]}): resources: {exc}"
            ) from None
        units.append(
            ExecutionUnit(
                name=name or group[0].name, steps=tuple(group), group=name, resources=resources
            )
        )
    return tuple(units)


def _merged_requirements(steps: list[Step]) -> ResourceRequirements | None:
    """``ResourceRequirements.merge`` of the steps' requirements; ``None`` (without importing
    the models) when none has any."""
    if all(s.requirements is None for s in steps):
        return None
    from flowyml.core.resources import ResourceRequirements

    return ResourceRequirements.merge(*(s.requirements for s in steps))
