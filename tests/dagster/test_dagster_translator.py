"""The translator: one ``get_asset_spec`` override changes any attribute of a step's assets, and
the translator is asked once per asset, op and job while planning, never again at run time
(but for ``get_output_metadata``, whose answer depends on the value)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import dagster as dg
import pytest

from flowyml import Pipeline, step
from flowyml.core.errors import PipelineDefinitionError
from flowyml.core.step import Step
from flowyml_dagster import FlowymlTranslator, StepOutput, build_definitions


@step(outputs=["rows/left", "rows/right"], register=False)
def split() -> tuple[list[int], list[int]]:
    return [1, 2], [3]


@step(inputs=["rows/left"], outputs=["rows/doubled"], execution_group="sum", register=False)
def double(left: list[int]) -> list[int]:
    return [2 * row for row in left]


@step(
    inputs=["rows/doubled", "rows/right"],
    outputs=["rows/total"],
    execution_group="sum",
    register=False,
)
def total(doubled: list[int], right: list[int]) -> int:
    return sum(doubled) + sum(right)


@step(inputs=["given/offset", "rows/total"], outputs=["rows/shifted"], register=False)
def shift(offset: int, total: int) -> int:
    return offset + total


ROWS = Pipeline("rows", steps=[split, double, total])
ROWS_WITH_INPUT = Pipeline("rows_with_input", steps=[split, double, total, shift])
TEAM = ("team",)


class TeamAssets(FlowymlTranslator):
    """Every attribute changed with one override, as a user would."""

    def get_asset_spec(self, output: StepOutput) -> dg.AssetSpec:
        spec = super().get_asset_spec(output)
        return spec.replace_attributes(
            key=spec.key.with_prefix(TEAM),
            owners=["team:ml"],
            group_name="ml",
            tags={**spec.tags, "tier": "gold"},
        )


class ScopedGroups(FlowymlTranslator):
    """A subclass written before ``get_asset_spec``: one small method overridden."""

    def get_group_name(self, step: Step) -> str:
        return f"scoped_{step.name}"


class ExtraLineage(FlowymlTranslator):
    def get_asset_spec(self, output: StepOutput) -> dg.AssetSpec:
        spec = super().get_asset_spec(output)
        return spec.replace_attributes(deps=[*spec.deps, dg.AssetKey("warehouse")])


class DroppedInputs(FlowymlTranslator):
    def get_asset_spec(self, output: StepOutput) -> dg.AssetSpec:
        return super().get_asset_spec(output).replace_attributes(deps=[])


class ReturnsAKey(FlowymlTranslator):
    def get_asset_spec(self, output: StepOutput) -> dg.AssetSpec:
        return super().get_asset_spec(output).key  # type: ignore[return-value]


class Partitioned(FlowymlTranslator):
    def get_asset_spec(self, output: StepOutput) -> dg.AssetSpec:
        spec = super().get_asset_spec(output)
        return spec.replace_attributes(partitions_def=dg.StaticPartitionsDefinition(["a", "b"]))


class Counting(FlowymlTranslator):
    """Counts the questions the builder asks; a method's calls to its siblings are its own."""

    def __init__(self) -> None:
        self.asked: Counter[str] = Counter()
        self._depth = 0


def _counted(name: str) -> Callable[..., Any]:
    answer = getattr(FlowymlTranslator, name)

    def ask(self: Counting, *args: Any, **kwargs: Any) -> Any:
        if self._depth == 0:
            self.asked[name] += 1
        self._depth += 1
        try:
            return answer(self, *args, **kwargs)
        finally:
            self._depth -= 1

    return ask


for _name in [n for n in vars(FlowymlTranslator) if n.startswith("get_")]:
    setattr(Counting, _name, _counted(_name))


def team_key(*path: str) -> dg.AssetKey:
    return dg.AssetKey([*TEAM, *path])


def test_one_spec_override_changes_owners_group_tags_and_key_of_every_asset() -> None:
    graph = build_definitions([ROWS], translator=TeamAssets()).resolve_asset_graph()

    node = graph.get(team_key("rows", "total"))

    assert node.owners == ["team:ml"]
    assert node.group_name == "ml"
    assert node.tags["tier"] == "gold"
    assert node.kinds == {"python"}


def test_a_key_changed_in_the_spec_is_the_key_downstream_steps_depend_on() -> None:
    graph = build_definitions([ROWS], translator=TeamAssets()).resolve_asset_graph()

    assert graph.get(team_key("rows", "doubled")).parent_keys == {team_key("rows", "left")}
    assert graph.get(team_key("rows", "total")).parent_keys == {
        team_key("rows", "doubled"),
        team_key("rows", "right"),
    }


def test_steps_run_and_store_their_values_under_the_keys_of_the_spec() -> None:
    defs = build_definitions(
        [ROWS], translator=TeamAssets(), enable_cache=False, executor=dg.in_process_executor
    )

    result = defs.resolve_job_def("rows").execute_in_process(
        instance=dg.DagsterInstance.ephemeral()
    )

    assert result.asset_value(team_key("rows", "total")) == 9


def test_a_small_method_overridden_alone_still_shapes_the_spec() -> None:
    graph = build_definitions([ROWS], translator=ScopedGroups()).resolve_asset_graph()

    assert graph.get(dg.AssetKey(["rows", "total"])).group_name == "scoped_total"


def test_a_dep_added_in_the_spec_is_lineage_of_the_asset() -> None:
    graph = build_definitions([ROWS], translator=ExtraLineage()).resolve_asset_graph()

    assert graph.get(dg.AssetKey(["rows", "total"])).parent_keys == {
        dg.AssetKey(["rows", "doubled"]),
        dg.AssetKey(["rows", "right"]),
        dg.AssetKey("warehouse"),
    }


def test_a_spec_that_drops_a_steps_input_is_an_error_naming_the_step() -> None:
    with pytest.raises(PipelineDefinitionError, match=r"step 'double'.*rows/left"):
        build_definitions([ROWS], translator=DroppedInputs())


def test_a_spec_that_is_not_an_asset_spec_is_an_error_naming_translator_step_and_output() -> None:
    expected = (
        r"translator ReturnsAKey: get_asset_spec for step 'split' output 'rows/left' "
        r"must return dagster\.AssetSpec, got AssetKey"
    )
    with pytest.raises(PipelineDefinitionError, match=expected):
        build_definitions([ROWS], translator=ReturnsAKey())


def test_a_partitioned_spec_is_refused_at_build_naming_the_step() -> None:
    expected = r"step 'split'.*partitioned assets are not supported"
    with pytest.raises(PipelineDefinitionError, match=expected):
        build_definitions([ROWS], translator=Partitioned())


def test_planning_asks_once_per_asset_op_and_job_and_assembly_asks_nothing() -> None:
    translator = Counting()

    build_definitions([ROWS_WITH_INPUT], translator=translator).resolve_job_def("rows_with_input")

    assets, ops = 5, 3  # four step outputs and shift's; split, the "sum" group, shift
    assert translator.asked == {
        "get_job_name": 1,
        "get_input_asset_key": 1,
        "get_asset_spec": assets,
        "get_op_name": ops,
        "get_unit_description": ops,
        "get_op_tags": ops,
        "get_pool": ops,
        "get_retry_policy": ops,
    }


def test_at_run_time_only_output_metadata_is_asked_once_per_value() -> None:
    translator = Counting()
    job = build_definitions(
        [ROWS], translator=translator, enable_cache=False, executor=dg.in_process_executor
    ).resolve_job_def("rows")
    planned = Counter(translator.asked)

    job.execute_in_process(instance=dg.DagsterInstance.ephemeral())

    assert translator.asked - planned == {"get_output_metadata": 4}
