"""The example code location served to an existing deployment, the way production runs it.

A gRPC code server (``dagster api grpc``) serves ``examples/definitions.py``; a separate
``dagster-webserver`` loads it through a workspace that names only the server's host and port.
There is no daemon, so the instance uses the ``DefaultRunCoordinator``: ``launchRun`` starts the
run at once, in a run worker the code server spawns.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest
from e2e_support import (
    EXAMPLES_LOCATION,
    REPO_ROOT,
    REPOSITORY,
    Deployment,
    executable,
    free_port,
    make_dagster_home,
    run_to_completion,
    server_env,
    start_server,
    stopped_cleanly,
    wait_for_webserver,
    wait_until,
    write_workspace,
)

JOBS_QUERY = """
query($selector: RepositorySelector!) {
  repositoryOrError(repositorySelector: $selector) {
    __typename
    ... on Repository { jobs { name } location { name } }
  }
}
"""

pytestmark = pytest.mark.timeout(600)


def _grpc_server_answers(port: int) -> bool | None:
    check = subprocess.run(
        [executable("dagster"), "api", "grpc-health-check", "-h", "127.0.0.1", "-p", str(port)],
        capture_output=True,
        timeout=60,
        check=False,
    )
    return True if check.returncode == 0 else None


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    root = tmp_path_factory.mktemp("existing-deployment")
    home = make_dagster_home(root / "dagster_home", queued_runs=False)
    env = server_env(home, root / "flowyml-cache")
    grpc_port = free_port()
    grpc_argv = [
        executable("dagster"), "api", "grpc", "-h", "127.0.0.1", "-p", str(grpc_port),
        "-f", str(REPO_ROOT / "examples" / "definitions.py"),
        "-d", str(REPO_ROOT / "examples"),
        "--location-name", EXAMPLES_LOCATION,
    ]  # fmt: skip
    code_server = start_server("grpc-code-server", grpc_argv, env=env, cwd=root, port=grpc_port)
    with stopped_cleanly(code_server):

        def code_server_ready() -> bool | None:
            code_server.check_running()
            return _grpc_server_answers(grpc_port)

        wait_until(code_server_ready, timeout=120.0, what="the gRPC code server", interval=1.0)
        workspace = write_workspace(
            root / "workspace.yaml",
            [
                {
                    "grpc_server": {
                        "host": "127.0.0.1",
                        "port": grpc_port,
                        "location_name": EXAMPLES_LOCATION,
                    }
                }
            ],
        )
        web_port = free_port()
        web_argv = [
            executable("dagster-webserver"),
            *("-h", "127.0.0.1", "-p", str(web_port), "-w", str(workspace)),
        ]
        webserver = start_server("webserver", web_argv, env=env, cwd=root, port=web_port)
        with stopped_cleanly(webserver):
            client = wait_for_webserver(webserver, [EXAMPLES_LOCATION])
            yield Deployment(webserver, client, home, root)


def test_webserver_lists_the_jobs_of_the_grpc_code_server(deployment: Deployment) -> None:
    selector = {"repositoryLocationName": EXAMPLES_LOCATION, "repositoryName": REPOSITORY}
    repository = deployment.client(JOBS_QUERY, {"selector": selector})["repositoryOrError"]

    assert repository["__typename"] == "Repository", repository
    assert {"training", "batch_scoring"} <= {job["name"] for job in repository["jobs"]}


def test_training_run_launched_without_a_daemon_succeeds(deployment: Deployment) -> None:
    _, status, events = run_to_completion(deployment.client, "training")

    assert status == "SUCCESS", events.failure_summary()
    kinds = {e.get("eventType") for e in events.events}
    assert "RUN_ENQUEUED" not in kinds  # launched at once: nothing queued for a daemon
    assert "model/classifier" in events.materializations()
