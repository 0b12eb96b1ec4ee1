"""A pipeline's ``schedule`` becomes a Dagster schedule of its job, cron aliases included."""

from __future__ import annotations

import dagster as dg
import pytest

from flowyml import Pipeline, PipelineDefinitionError, step
from flowyml.core.pipeline import CRON_ALIASES
from flowyml_dagster import build_definitions


def nightly(schedule: str) -> Pipeline:
    @step(outputs=["report"], register=False)
    def report() -> int:
        return 1

    return Pipeline("nightly", steps=[report], schedule=schedule)


@pytest.mark.parametrize("alias", CRON_ALIASES)
def test_a_cron_alias_is_the_schedule_of_the_pipelines_job(alias: str) -> None:
    defs = build_definitions([nightly(alias)])

    schedule = defs.resolve_schedule_def("nightly_schedule")

    assert schedule.cron_schedule == alias
    assert schedule.job_name == "nightly"


def test_a_cron_string_dagster_cannot_run_is_refused_naming_the_pipeline() -> None:
    with pytest.raises(PipelineDefinitionError) as raised:
        build_definitions([nightly("99 * * * *")])

    assert "pipeline 'nightly'" in str(raised.value)
    assert "'99 * * * *'" in str(raised.value)


def test_the_schedule_takes_the_default_status_given_to_build_definitions() -> None:
    defs = build_definitions([nightly("@daily")], schedule_status=dg.DefaultScheduleStatus.RUNNING)

    assert defs.resolve_schedule_def("nightly_schedule").default_status is (
        dg.DefaultScheduleStatus.RUNNING
    )
