"""``FlowymlPipelinesComponent`` through the real ``dg``: listed, scaffolded, checked, launched.

One project for the module, made by ``create-dagster``, with three components: the starter
``dg scaffold defs`` writes (``scaffolded/``), the example digits pipelines (``digits/``), and
``tuned/``, whose YAML gives a step a retry and another a timeout its code does not have.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from dagster import AssetKey, DagsterEventType, DagsterRunStatus
from dg_support import COMPONENT, Project, create_project
from run_support import Run

HERE = Path(__file__).resolve().parent
TUNED_YAML = f"""\
type: {COMPONENT}

attributes:
  modules: [flowproj.tuned]
  translator: flowproj.tuned.TunedTranslator
  cache:
    enabled: false
  steps:
    flaky:
      retry: 1
      tags: {{team: ml}}
    sleepy:
      timeout: 1
"""
# The timed-out step sleeps 30 s; killed at 1 s, it fails long before it would wake.
TIMEOUT_BOUND_SECONDS = 20.0


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    made = create_project(tmp_path_factory.mktemp("dg"), "flowproj")
    made.dg("scaffold", "defs", COMPONENT, "scaffolded")
    made.write_defs("digits", f"type: {COMPONENT}\nattributes:\n  modules: [digits_pipelines]\n")
    shutil.copy(HERE / "tuned_module.py", made.package / "tuned.py")
    made.write_defs("tuned", TUNED_YAML)
    return made


def test_dg_lists_the_component(project: Project) -> None:
    listed = json.loads(project.dg("list", "components", "--json").stdout)

    assert COMPONENT in {item["key"] for item in listed["items"]}


def test_scaffolding_writes_a_defs_yaml_and_a_starter_module(project: Project) -> None:
    scaffolded = project.defs / "scaffolded"

    assert (scaffolded / "defs.yaml").read_text().startswith(f"type: {COMPONENT}\n")
    assert "- .pipelines" in (scaffolded / "defs.yaml").read_text()
    assert "Pipeline.from_steps" in (scaffolded / "pipelines.py").read_text()


def test_dg_checks_and_lists_every_pipeline_as_assets_and_jobs(project: Project) -> None:
    project.dg("check", "defs")
    listed = json.loads(project.dg("list", "defs", "--json").stdout)

    jobs = {job["name"] for job in listed["jobs"]}
    groups = {asset["asset_key"]: asset["group_name"] for asset in listed["assets"]}
    tags = {
        a["asset_key"]: {t["key"]: t["value"] for t in a.get("tags", [])} for a in listed["assets"]
    }
    assert jobs == {"example", "training", "batch_scoring", "tuned"}
    assert {"numbers", "total", "tuned/flaky", "tuned/slept"} <= set(groups)
    assert {"data/features", "model/classifier", "report/training", "predictions/batch"} <= set(
        groups
    )
    assert groups["tuned/flaky"] == groups["tuned/slept"] == "tuned_group"
    assert groups["model/classifier"] == "training"
    assert tags["tuned/flaky"] == {"team": "ml"}


def test_dg_launch_runs_the_scaffolded_pipeline_to_success(project: Project) -> None:
    project.dg("launch", "--job", "example")

    run = project.last_run("example")
    assert run.status is DagsterRunStatus.SUCCESS
    assert set(run.step_keys(DagsterEventType.STEP_SUCCESS)) == {"make_numbers", "add_up"}
    assert set(run.materializations()) == {AssetKey("numbers"), AssetKey("total")}


def test_the_yaml_gives_a_step_retries_and_another_an_enforced_timeout(project: Project) -> None:
    launched = project.dg("launch", "--job", "tuned", check=False)

    assert launched.returncode != 0
    run = project.last_run("tuned")
    assert run.status is DagsterRunStatus.FAILURE
    assert run.step_keys(DagsterEventType.STEP_UP_FOR_RETRY) == ["flaky"]
    assert "flaky" in run.step_keys(DagsterEventType.STEP_SUCCESS)
    assert "timeout of 1s" in run.failure_text("sleepy")
    assert _step_seconds(run, "sleepy") < TIMEOUT_BOUND_SECONDS


def test_a_bad_override_names_the_file_the_step_and_the_field(project: Project) -> None:
    bad = project.write_defs(
        "broken",
        f"type: {COMPONENT}\nattributes:\n  modules: [flowproj.tuned]\n"
        "  steps:\n    flaky:\n      retry: -1\n",
    )
    try:
        checked = project.dg("check", "defs", check=False)
    finally:
        shutil.rmtree(bad.parent)

    output = checked.stdout + checked.stderr
    assert checked.returncode != 0
    assert f"{bad}:6" in output
    assert "step 'flaky': retry:" in output


def _step_seconds(run: Run, step_key: str) -> float:
    """From the step's start to its failure, by the run's event log."""
    (start,) = [e for e in run.entries(DagsterEventType.STEP_START) if e.step_key == step_key]
    (end,) = [e for e in run.entries(DagsterEventType.STEP_FAILURE) if e.step_key == step_key]
    return end.timestamp - start.timestamp
