"""A code location for the end-to-end tests: one step that sleeps far longer than any test.

The step runs under a ``timeout``, so its body runs in a forked child of the Dagster step
process. Before sleeping it writes both pids (the step process and the timeout child) to the
file named by its ``pid_file`` param, which a test sets through run config, so the test can
check that terminating the run, or stopping the server, leaves neither process behind.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from flowyml import Pipeline, context, step
from flowyml_dagster import build_definitions

SLEEP_SECONDS = 3600.0


@step(outputs=["long/result"], timeout=2 * SLEEP_SECONDS, cache=False)
def sleep_long(pid_file: str, seconds: float = SLEEP_SECONDS) -> str:
    """Record the pids of this step's processes, then sleep (a stand-in for a long GPU job)."""
    if pid_file:
        # The worker's parent is the timeout's supervisor; the step process is its parent.
        stat = Path(f"/proc/{os.getppid()}/stat").read_text()
        step_pid = int(stat[stat.rindex(")") + 2 :].split()[1])
        record = {"step_pid": step_pid, "timeout_child_pid": os.getpid()}
        target = Path(pid_file)
        partial = target.with_name(target.name + ".partial")
        partial.write_text(json.dumps(record), encoding="utf-8")
        partial.replace(target)  # atomic: a reader never sees half a record
    time.sleep(seconds)
    return "finished"


long_running = Pipeline(
    "long_running",
    context=context(pid_file="", seconds=SLEEP_SECONDS),
    auto_discover=True,
    description="One step that sleeps for an hour, to be terminated by the tests.",
)

defs = build_definitions([long_running])
