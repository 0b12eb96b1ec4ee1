"""The tags of an execution group's op: its steps' tags, one value per tag.

The steps share one op, so a tag two of them give different values has no single meaning (the
task on queue ``gpu`` or ``cpu``?) and fails the build, as a clash in their ``dagster-k8s/config``
does.
"""

from __future__ import annotations

import pytest

from flowyml import Pipeline, step
from flowyml.core.errors import PipelineDefinitionError
from flowyml_dagster import build_definitions


def group_op_tags(first: dict[str, str], second: dict[str, str]) -> dict[str, object]:
    @step(outputs=["a"], pipeline="tagged_group", execution_group="g", tags=first)
    def first_step() -> int:
        return 1

    @step(inputs=["a"], outputs=["b"], pipeline="tagged_group", execution_group="g", tags=second)
    def second_step(a: int) -> int:
        return a

    defs = build_definitions([Pipeline("tagged_group", auto_discover=True)])
    return dict(defs.resolve_job_def("tagged_group").graph.nodes[0].definition.tags)


@pytest.mark.parametrize("key", ["dagster-celery/queue", "team"])
def test_two_steps_of_a_group_giving_one_tag_two_values_fail_the_build(key: str) -> None:
    with pytest.raises(PipelineDefinitionError) as raised:
        group_op_tags({key: "gpu"}, {key: "cpu"})

    message = str(raised.value)
    assert "steps 'first_step' and 'second_step'" in message
    assert f"tags[{key!r}] are 'gpu' and 'cpu'" in message


def test_two_steps_of_a_group_giving_one_tag_the_same_value_share_it() -> None:
    tags = group_op_tags({"team": "ml"}, {"team": "ml", "stage": "fit"})

    assert tags["team"] == "ml"
    assert tags["stage"] == "fit"


def test_a_groups_pipeline_tag_lists_every_pipeline_of_its_steps() -> None:
    @step(outputs=["a"], pipeline=["both", "one"], execution_group="g")
    def first_step() -> int:
        return 1

    @step(inputs=["a"], outputs=["b"], pipeline=["both", "two"], execution_group="g")
    def second_step(a: int) -> int:
        return a

    defs = build_definitions([Pipeline("both", auto_discover=True)])

    assert defs.resolve_job_def("both").graph.nodes[0].definition.tags["pipeline"] == "both,one,two"
