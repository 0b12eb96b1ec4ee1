"""``Pipeline``'s building API: chaining, ``from_steps``, discovery, the DAG, execution groups,
the cache store and its statistics, and schedule validation."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from flowyml import CacheStore, Pipeline, PipelineDefinitionError, ResourceRequirements, Step, step
from flowyml.core.pipeline import CRON_ALIASES


def chain() -> tuple[Step, Step]:
    """``first`` makes ``a`` = 1, ``second`` makes ``b`` = ``a`` + 1 (neither registered)."""

    @step(outputs=["a"], register=False)
    def first() -> int:
        return 1

    @step(inputs=["a"], outputs=["b"], register=False)
    def second(a: int) -> int:
        return a + 1

    return first, second


def test_add_step_returns_the_pipeline_for_chaining() -> None:
    first, second = chain()

    pipeline = Pipeline("p")

    assert pipeline.add_step(first) is pipeline
    assert pipeline.add_step(second).run()["b"] == 2


def test_add_steps_returns_the_pipeline_for_chaining() -> None:
    first, second = chain()

    pipeline = Pipeline("p")

    assert pipeline.add_steps([first, second]) is pipeline
    assert pipeline.steps == [first, second]


def test_add_steps_accepts_a_generator() -> None:
    first, second = chain()

    def produce() -> Iterator[Step]:
        yield first
        yield second

    pipeline = Pipeline("p").add_steps(produce())

    assert pipeline.steps == [first, second]
    assert pipeline.run()["b"] == 2


def test_from_steps_makes_a_pipeline_of_exactly_those_steps_with_the_options() -> None:
    @step(outputs=["a"])
    def first() -> int:
        return 1

    @step(inputs=["a"], outputs=["b"])
    def second(a: int) -> int:
        return a + 1

    @step(outputs=["other"])
    def unrelated() -> int:
        return 0

    pipeline = Pipeline.from_steps(first, second, name="x", enable_cache=False)

    assert pipeline.name == "x"
    assert pipeline.steps == [first, second]
    assert pipeline.enable_cache is False
    assert pipeline.cache_store is None
    assert set(pipeline.run().step_results) == {"first", "second"}


def test_auto_discover_with_steps_added_by_hand_runs_only_those() -> None:
    @step(outputs=["registered"])
    def registered() -> int:
        return 1

    @step(outputs=["explicit"], register=False)
    def explicit() -> int:
        return 2

    pipeline = Pipeline("p", auto_discover=True).add_step(explicit)

    assert pipeline.steps == [explicit]
    result = pipeline.run()
    assert set(result.step_results) == {"explicit"}
    assert "registered" not in result


def test_auto_discover_without_added_steps_finds_scoped_and_unscoped_steps() -> None:
    @step(outputs=["shared"])
    def shared() -> int:
        return 1

    @step(outputs=["mine"], pipeline="training")
    def mine() -> int:
        return 2

    @step(outputs=["theirs"], pipeline="serving")
    def theirs() -> int:
        return 3

    pipeline = Pipeline("training", auto_discover=True)

    assert pipeline.steps == [shared, mine]
    assert set(pipeline.run().step_results) == {"shared", "mine"}


def _diamond() -> tuple[Step, Step, Step, Step]:
    @step(inputs=["left", "right"], outputs=["joined"], register=False)
    def join(left: int, right: int) -> int:
        return left + right

    @step(inputs=["source"], outputs=["right"], register=False)
    def right(source: int) -> int:
        return source * 2

    @step(inputs=["source"], outputs=["left"], register=False)
    def left(source: int) -> int:
        return source + 1

    @step(outputs=["source"], register=False)
    def source() -> int:
        return 1

    return join, right, left, source


def test_topological_sort_puts_every_node_after_its_producers() -> None:
    steps = _diamond()
    pipeline = Pipeline("diamond", steps=steps)

    nodes = pipeline.dag.topological_sort()

    names = [n.name for n in nodes]
    assert sorted(names) == ["join", "left", "right", "source"]
    position = {name: i for i, name in enumerate(names)}
    producer = {output: n.name for n in nodes for output in n.outputs}
    for node in nodes:
        for needed in node.inputs:
            assert position[producer[needed]] < position[node.name]
    assert names[0] == "source"
    assert names[-1] == "join"


def test_topological_sort_nodes_carry_name_step_inputs_and_outputs() -> None:
    join, right, left, source = _diamond()
    pipeline = Pipeline("diamond", steps=[join, right, left, source])

    node = next(n for n in pipeline.dag.topological_sort() if n.name == "join")

    assert node.step is join
    assert node.inputs == ["left", "right"]
    assert node.outputs == ["joined"]


def test_dag_nodes_maps_step_names_to_nodes() -> None:
    join, right, left, source = _diamond()
    pipeline = Pipeline("diamond", steps=[join, right, left, source])

    nodes = pipeline.dag.nodes

    assert set(nodes) == {"join", "right", "left", "source"}
    assert nodes["left"].name == "left"
    assert nodes["left"].step is left
    assert nodes["left"].inputs == ["source"]
    assert nodes["left"].outputs == ["left"]


def _grouped_pipeline() -> tuple[Pipeline, Step, Step, Step]:
    @step(
        inputs=["raw"],
        outputs=["clean"],
        execution_group="prep",
        resources={"cpu": 1},
        register=False,
    )
    def clean(raw: list[int]) -> list[int]:
        return [v for v in raw if v > 0]

    @step(outputs=["raw"], execution_group="prep", resources={"cpu": 2}, register=False)
    def load() -> list[int]:
        return [1, -2, 3]

    @step(inputs=["clean"], outputs=["total"], register=False)
    def total(clean: list[int]) -> int:
        return sum(clean)

    # Declared out of order: the group's steps come back in the order they run.
    return Pipeline("grouped", steps=[clean, total, load]), load, clean, total


def test_step_groups_lists_each_execution_group_by_name() -> None:
    pipeline, _, _, _ = _grouped_pipeline()

    groups = pipeline.step_groups

    assert [g.group_name for g in groups] == ["prep"]


def test_a_step_group_lists_its_steps_in_run_order() -> None:
    pipeline, load, clean, _ = _grouped_pipeline()

    (group,) = pipeline.step_groups

    assert list(group.steps) == [load, clean]
    assert group.execution_order == ["load", "clean"]


def test_a_step_group_aggregates_its_steps_resources_to_the_maximum() -> None:
    pipeline, _, _, _ = _grouped_pipeline()

    (group,) = pipeline.step_groups

    assert isinstance(group.aggregated_resources, ResourceRequirements)
    assert group.aggregated_resources.cpu == 2


def test_plain_steps_are_not_in_step_groups() -> None:
    pipeline, _, _, total = _grouped_pipeline()

    grouped = [s for g in pipeline.step_groups for s in g.steps]

    assert total not in grouped
    assert all(g.group_name != "total" for g in pipeline.step_groups)


def test_a_pipeline_without_execution_groups_has_no_step_groups() -> None:
    @step(outputs=["a"], register=False)
    def first() -> int:
        return 1

    assert Pipeline("p", steps=[first]).step_groups == []


def test_cache_store_is_none_when_caching_is_off(tmp_path: Path) -> None:
    pipeline = Pipeline("p", enable_cache=False, cache_dir=tmp_path / "cache")

    assert pipeline.cache_store is None


def test_cache_store_is_rooted_at_cache_dir(tmp_path: Path) -> None:
    pipeline = Pipeline("p", cache_dir=tmp_path / "cache")

    store = pipeline.cache_store

    assert isinstance(store, CacheStore)
    assert store.root == (tmp_path / "cache").absolute()


def test_cache_store_without_cache_dir_is_rooted_at_the_default(private_cache_dir: Path) -> None:
    store = Pipeline("p").cache_store

    assert isinstance(store, CacheStore)
    assert store.root == private_cache_dir.absolute()


def test_cache_stats_are_empty_when_caching_is_off(tmp_path: Path) -> None:
    @step(outputs=["a"], register=False)
    def first() -> int:
        return 1

    pipeline = Pipeline("p", steps=[first], enable_cache=False, cache_dir=tmp_path / "cache")
    pipeline.run()

    assert pipeline.cache_stats() == {}


def _two_cacheable_steps(cache_dir: Path) -> Pipeline:
    first, second = chain()

    return Pipeline("p", steps=[first, second], cache_dir=cache_dir)


def test_cache_stats_after_a_first_run_count_two_misses_and_two_entries(tmp_path: Path) -> None:
    pipeline = _two_cacheable_steps(tmp_path / "cache")

    pipeline.run()
    stats = pipeline.cache_stats()

    assert stats["hits"] == 0
    assert stats["misses"] == 2
    assert stats["entries"] == 2
    assert stats["bytes"] > 0


def test_cache_stats_after_a_second_run_count_two_hits(tmp_path: Path) -> None:
    pipeline = _two_cacheable_steps(tmp_path / "cache")

    pipeline.run()
    second = pipeline.run()
    stats = pipeline.cache_stats()

    assert all(r.cached for r in second.step_results.values())
    assert stats["hits"] == 2
    assert stats["misses"] == 2
    assert stats["hit_rate"] == 0.5
    assert stats["entries"] == 2


def test_cache_stats_give_the_original_flowyml_key_names(tmp_path: Path) -> None:
    pipeline = _two_cacheable_steps(tmp_path / "cache")

    pipeline.run()
    stats = pipeline.cache_stats()

    assert "total_entries" in stats
    assert "total_size_mb" in stats
    assert stats["total_entries"] == stats["entries"]
    assert stats["total_size_mb"] == pytest.approx(stats["bytes"] / 2**20)


def test_a_daily_schedule_is_accepted() -> None:
    assert Pipeline("p", schedule="@daily").schedule == "@daily"


@pytest.mark.parametrize("alias", CRON_ALIASES)
def test_every_cron_alias_is_accepted(alias: str) -> None:
    assert Pipeline("p", schedule=alias).schedule == alias


def test_a_five_field_cron_string_is_accepted() -> None:
    assert Pipeline("p", schedule="0 3 * * *").schedule == "0 3 * * *"


@pytest.mark.parametrize("bad", ["@reboot", "daily", "0 3 * *"])
def test_an_invalid_schedule_is_an_error_naming_the_pipeline_and_schedule(bad: str) -> None:
    with pytest.raises(PipelineDefinitionError) as raised:
        Pipeline("nightly", schedule=bad)

    assert "nightly" in str(raised.value)
    assert "schedule" in str(raised.value)


def test_appending_to_pipeline_steps_adds_a_step() -> None:
    first, second = chain()

    pipeline = Pipeline("grow").add_step(first)
    pipeline.run()

    pipeline.steps.append(second)

    assert pipeline.run()["b"] == 2


def test_assigning_pipeline_steps_replaces_them() -> None:
    @step(outputs=["a"], register=False)
    def first() -> int:
        return 1

    @step(outputs=["z"], register=False)
    def other() -> int:
        return 26

    pipeline = Pipeline("swap", steps=[first])

    pipeline.steps = [other]

    assert [s.name for s in pipeline.steps] == ["other"]
    assert pipeline.run().outputs == {"z": 26}


def test_something_not_a_step_in_pipeline_steps_is_refused_at_build() -> None:
    pipeline = Pipeline("stray")
    pipeline.steps.append(print)  # type: ignore[arg-type]

    with pytest.raises(PipelineDefinitionError, match="builtin_function_or_method"):
        pipeline.build()


def test_graph_nodes_are_equal_by_name_and_hashable() -> None:
    @step(outputs=["a"], register=False)
    def first() -> int:
        return 1

    nodes = Pipeline("p", steps=[first]).dag.topological_sort()

    assert {node.name for node in set(nodes)} == {"first"}
    assert nodes == Pipeline("p", steps=[first]).dag.topological_sort()


def test_the_dag_answers_direct_and_transitive_dependencies() -> None:
    @step(outputs=["a"], register=False)
    def first() -> int:
        return 1

    @step(inputs=["a"], outputs=["b"], register=False)
    def second(a: int) -> int:
        return a

    @step(inputs=["b"], outputs=["c"], register=False)
    def third(b: int) -> int:
        return b

    dag = Pipeline("chain", steps=[first, second, third]).dag

    assert dag.get_dependencies("third") == {"second"}
    assert dag.get_all_dependencies("third") == {"first", "second"}
    assert dag.get_dependents("first") == {"second"}
    assert dag.get_all_dependents("first") == {"second", "third"}


@pytest.mark.parametrize(
    "option",
    ["enable_checkpointing", "enable_experiment_tracking", "auto_track", "project_name", "env"],
)
def test_flowyml2_pipeline_options_that_mean_nothing_here_are_accepted(option: str) -> None:
    assert Pipeline("p", **{option: False}).name == "p"


def test_an_unknown_pipeline_option_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="enable_cach"):
        Pipeline("p", enable_cach=False)


def test_run_takes_everything_but_inputs_by_keyword() -> None:
    @step(outputs=["a"], register=False)
    def first() -> int:
        return 1

    with pytest.raises(TypeError):
        Pipeline("p", steps=[first]).run(None, True)  # type: ignore[misc]


def test_a_dry_run_is_refused_rather_than_run() -> None:
    calls: list[str] = []

    @step(outputs=["a"], register=False)
    def first() -> int:
        calls.append("first")
        return 1

    with pytest.raises(TypeError, match="dry_run"):
        Pipeline("p", steps=[first]).run(dry_run=True)

    assert calls == []
