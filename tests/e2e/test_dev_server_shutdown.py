"""Stopping ``dagster dev`` with Ctrl-C while a run sits in a long step.

Ctrl-C in a terminal sends SIGINT to the whole foreground process group; afterwards no process of
the server may be left: not the webserver, daemon or code server, and not the run worker, the
step process or the step's timeout child (which runs in a process group of its own).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from e2e_support import (
    launch_run,
    long_step_config,
    start_dagster_dev,
    wait_for_long_step,
    wait_for_webserver,
    wait_until_gone,
)

LOCATION = "e2e_long_step"

pytestmark = pytest.mark.timeout(600)


def test_ctrl_c_stops_dagster_dev_mid_run_and_leaves_no_process(
    long_step_workspace: Path, tmp_path: Path
) -> None:
    server = start_dagster_dev("shutdown-dev", long_step_workspace, tmp_path)
    try:
        client = wait_for_webserver(server, [LOCATION])
        pid_file = tmp_path / "pids.json"
        run_id = launch_run(
            client, "long_running", location=LOCATION, run_config=long_step_config(pid_file)
        )
        run = wait_for_long_step(client, run_id, pid_file)
    finally:
        survivors = server.stop()

    assert survivors == [], "\n".join(str(p) for p in survivors) + "\n" + server.log_tail()
    assert wait_until_gone(run.tree, timeout=5.0) == []
