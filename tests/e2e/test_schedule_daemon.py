"""A pipeline's ``schedule=`` as a Dagster schedule that the scheduler daemon really runs.

The code location ``locations/e2e_schedule_location.py`` schedules a one-step pipeline every
minute and builds its definitions with ``schedule_status=RUNNING``, so ``dagster dev``'s daemon
launches a run at the next minute boundary with nobody switching the schedule on. The daemon's
tick is seen on each instance storage: Dagster's default SQLite files, and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from e2e_support import (
    LOCATIONS,
    REPOSITORY,
    SCHEDULE_LOCATION,
    Deployment,
    dagster_dev,
    python_file_entry,
    runs_with_tag,
    wait_for_run,
    wait_until,
    write_workspace,
)

LOCATION = SCHEDULE_LOCATION
SCHEDULE = "heartbeat_schedule"
FIRST_TICK_TIMEOUT = 150.0  # the next minute boundary, plus the daemon's own polling interval

SCHEDULES_QUERY = """
query($selector: RepositorySelector!) {
  schedulesOrError(repositorySelector: $selector) {
    __typename
    ... on Schedules {
      results { name cronSchedule pipelineName scheduleState { status } }
    }
  }
}
"""

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def schedule_dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    root = tmp_path_factory.mktemp("schedule-dev")
    workspace = write_workspace(
        root / "workspace.yaml",
        [python_file_entry(LOCATIONS / "e2e_schedule_location.py", LOCATION)],
    )
    with dagster_dev("schedule-dev", workspace, root, [LOCATION]) as deployment:
        yield deployment


@pytest.fixture(params=["sqlite", "postgres"])
def schedule_dev_on_each_storage(request: pytest.FixtureRequest) -> Deployment:
    """A ``dagster dev`` serving the schedule's location on a SQLite, then a PostgreSQL instance."""
    fixture = {"sqlite": "schedule_dev", "postgres": "postgres_dev"}[request.param]
    return request.getfixturevalue(fixture)


def test_every_minute_schedule_is_listed_as_running(schedule_dev: Deployment) -> None:
    selector = {"repositoryLocationName": LOCATION, "repositoryName": REPOSITORY}
    found = schedule_dev.client(SCHEDULES_QUERY, {"selector": selector})["schedulesOrError"]

    assert found["__typename"] == "Schedules", found
    assert [
        (s["name"], s["cronSchedule"], s["pipelineName"], s["scheduleState"]["status"])
        for s in found["results"]
    ] == [(SCHEDULE, "* * * * *", "heartbeat", "RUNNING")]


def test_scheduler_daemon_launches_a_run_that_succeeds(
    schedule_dev_on_each_storage: Deployment,
) -> None:
    deployment = schedule_dev_on_each_storage
    client = deployment.client

    def first_scheduled_run() -> str | None:
        deployment.webserver.check_running()
        runs = runs_with_tag(client, "dagster/schedule_name", SCHEDULE)
        return str(runs[-1]["runId"]) if runs else None

    run_id = wait_until(
        first_scheduled_run,
        timeout=FIRST_TICK_TIMEOUT,
        what=f"the scheduler daemon to launch a run of {SCHEDULE}",
        interval=1.0,
    )

    assert wait_for_run(client, run_id) == "SUCCESS"
