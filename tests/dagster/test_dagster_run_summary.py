"""A failed ``flowyml_dagster.run`` prints one short summary, not pages of Dagster's frames.

The summary names the failed step, the user's exception and the line that raised it; the whole
traceback stays in the returned result and in the instance's event log.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from dagster import DagsterEventType

import flowyml_dagster
from flowyml import Pipeline, step

REPO = Path(__file__).resolve().parents[2]
MAX_LINES = 25
SCRIPT = """
import json

import flowyml_dagster
from flowyml import Pipeline, step


@step(outputs=["data/raw"], register=False)
def load() -> list[int]:
    return [1, 2, 3]


@step(inputs=["data/raw"], outputs=["model/fit"], register=False)
def fit(raw: list[int]) -> int:
    raise ValueError(f"cannot fit {len(raw)} rows")


result = flowyml_dagster.run(Pipeline("failing", steps=[load, fit]))
error = result.step_results["fit"].error
print(json.dumps({"run_id": result.run_id, "traceback": error.traceback}))
"""
RAISE_LINE = 'raise ValueError(f"cannot fit {len(raw)} rows")'


@dataclass(frozen=True)
class FailedRun:
    script: Path
    home: Path
    console: str  # what the run printed on stderr
    result: dict[str, Any]  # what the script read from the returned PipelineResult


@pytest.fixture(scope="module")
def failed_run(module_tmp: Path) -> FailedRun:
    """The script run once in a child Python, with a Dagster instance of its own."""
    script = module_tmp / "failing.py"
    script.write_text(textwrap.dedent(SCRIPT))
    home = module_tmp / "summary-home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "PYTHONPATH": os.pathsep.join(filter(None, (str(REPO), os.environ.get("PYTHONPATH")))),
    }
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=module_tmp,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return FailedRun(script, home, done.stderr, json.loads(done.stdout))


def test_the_summary_fits_on_one_screen(failed_run: FailedRun) -> None:
    assert 0 < len(failed_run.console.splitlines()) < MAX_LINES


def test_the_summary_names_the_failed_step_and_the_users_exception(failed_run: FailedRun) -> None:
    assert "step 'fit' failed: ValueError: cannot fit 3 rows" in failed_run.console


def test_the_summary_shows_the_line_that_raised_it(failed_run: FailedRun) -> None:
    line = SCRIPT.splitlines().index(f"    {RAISE_LINE}") + 1
    where = f'File "{failed_run.script}", line {line}, in fit'

    lines = [text.strip() for text in failed_run.console.splitlines()]

    assert lines[lines.index(where) + 1] == RAISE_LINE


def test_the_summary_prints_none_of_dagsters_frames(failed_run: FailedRun) -> None:
    assert "site-packages" not in failed_run.console
    assert "Stack Trace" not in failed_run.console


def test_the_result_keeps_the_whole_traceback(failed_run: FailedRun) -> None:
    traceback = failed_run.result["traceback"]

    assert "dagster/_core/execution" in traceback
    assert RAISE_LINE in traceback


def test_the_event_log_keeps_the_whole_traceback(failed_run: FailedRun) -> None:
    with dg.DagsterInstance.from_config(str(failed_run.home)) as instance:
        (entry,) = instance.all_logs(
            failed_run.result["run_id"], of_type=DagsterEventType.STEP_FAILURE
        )
    assert entry.dagster_event is not None
    error = entry.dagster_event.step_failure_data.error
    assert error is not None
    assert "dagster/_core/execution" in error.to_string()
    assert RAISE_LINE in error.to_string()


def test_at_log_level_critical_a_failed_run_prints_nothing(
    instance: dg.DagsterInstance, capfd: pytest.CaptureFixture[str]
) -> None:
    @step(outputs=["broken/value"], register=False)
    def broken() -> int:
        raise ValueError("broken")

    result = flowyml_dagster.run(
        Pipeline("quiet", steps=[broken]), instance=instance, log_level="CRITICAL"
    )

    assert not result.success
    assert capfd.readouterr().err == ""


def test_a_long_message_is_cut_to_five_lines_in_the_summary(
    instance: dg.DagsterInstance, capfd: pytest.CaptureFixture[str]
) -> None:
    @step(outputs=["long/value"], register=False)
    def verbose() -> int:
        raise ValueError("\n".join(f"detail {i}" for i in range(200)))

    result = flowyml_dagster.run(Pipeline("verbose", steps=[verbose]), instance=instance)
    console = capfd.readouterr().err

    assert "ValueError: detail 0" in console
    assert "detail 4…" in console
    assert "detail 5" not in console
    assert len(console.splitlines()) < MAX_LINES
    assert result.step_results["verbose"].error.message.count("detail") == 200  # type: ignore[union-attr]


def test_a_chained_exception_shows_the_users_raise_line_then_its_cause(
    instance: dg.DagsterInstance, capfd: pytest.CaptureFixture[str]
) -> None:
    @step(outputs=["chained/value"], register=False)
    def lookup() -> int:
        try:
            return {}["key"]
        except KeyError as exc:
            raise ValueError("no key") from exc

    flowyml_dagster.run(Pipeline("chained", steps=[lookup]), instance=instance)
    lines = [line.strip() for line in capfd.readouterr().err.splitlines()]

    at = lines.index("step 'lookup' failed: ValueError: no key")
    assert lines[at + 2] == 'raise ValueError("no key") from exc'
    assert lines[at + 3] == "(raised from KeyError: 'key')"
    assert lines[at + 5] == 'return {}["key"]'
