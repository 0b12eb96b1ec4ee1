"""``dg dev`` serves a project whose jobs come from ``FlowymlPipelinesComponent``, and stops
cleanly: the webserver on 127.0.0.1 lists the jobs over GraphQL, then a Ctrl-C to its process
group ends every process it started."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from dg_support import COMPONENT, create_project
from e2e.e2e_support import (
    GraphQL,
    ServerProcess,
    executable,
    free_port,
    start_server,
    wait_for_webserver,
)

JOBS_QUERY = """
{
  repositoriesOrError {
    ... on RepositoryConnection { nodes { jobs { name } } }
  }
}
"""


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, GraphQL]]:
    """``dg dev`` on a project with the example pipelines, up and serving its code location."""
    project = create_project(tmp_path_factory.mktemp("dg-dev"), "devproj")
    project.write_defs("digits", f"type: {COMPONENT}\nattributes:\n  modules: [digits_pipelines]\n")
    port = free_port()
    server = start_server(
        "dg-dev",
        [executable("dg"), "dev", "--host", "127.0.0.1", "--port", str(port)],
        env=project.env,
        cwd=project.root,
        port=port,
    )
    try:
        yield server, wait_for_webserver(server, [project.name])
    finally:
        server.stop()


def test_dg_dev_serves_the_components_jobs(served: tuple[ServerProcess, GraphQL]) -> None:
    _, client = served

    repositories = client(JOBS_QUERY)["repositoriesOrError"]["nodes"]
    jobs = {job["name"] for repository in repositories for job in repository["jobs"]}
    assert {"training", "batch_scoring"} <= jobs


def test_dg_dev_stops_with_its_process_group(served: tuple[ServerProcess, GraphQL]) -> None:
    server, _ = served

    assert server.stop() == []
    assert server.processes() == []
