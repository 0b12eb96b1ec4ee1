"""Each plain run leaves a JSON record in the pipeline's runs directory: how every step ended."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from flowyml import Pipeline, PipelineDefinitionError, step


def two_steps(calls: list[str] | None = None) -> Pipeline:
    @step(outputs=["rows"], register=False)
    def load() -> list[int]:
        return [1, 2, 3]

    @step(inputs=["rows"], outputs=["total"], register=False)
    def total(rows: list[int]) -> int:
        if calls is not None:
            calls.append("total")
        raise ValueError("bad rows")

    return Pipeline("records", steps=[load, total])


def test_runs_dir_defaults_to_flowyml_runs_dir_and_is_created(private_runs_dir: Path) -> None:
    assert not private_runs_dir.exists()

    assert Pipeline("p").runs_dir == private_runs_dir
    assert private_runs_dir.is_dir()


def test_runs_dir_given_to_the_pipeline_wins(tmp_path: Path) -> None:
    assert Pipeline("p", runs_dir=tmp_path / "mine").runs_dir == tmp_path / "mine"


def test_a_plain_run_writes_a_record_named_after_its_run_id(tmp_path: Path) -> None:
    pipeline = Pipeline("records", steps=two_steps().steps, runs_dir=tmp_path / "runs")

    result = pipeline.run(run_id="nightly-7")

    record = json.loads((tmp_path / "runs" / "nightly-7.json").read_text())
    assert record["run_id"] == "nightly-7" == result.run_id
    assert record["pipeline"] == "records"
    assert record["status"] == "failed"
    assert record["started_at"] is not None
    assert record["duration_seconds"] >= 0


def test_the_record_says_how_each_step_ended_without_its_values(tmp_path: Path) -> None:
    pipeline = Pipeline("records", steps=two_steps().steps, runs_dir=tmp_path)

    result = pipeline.run()

    steps = json.loads((tmp_path / f"{result.run_id}.json").read_text())["steps"]
    assert steps["load"]["status"] == "success"
    assert steps["load"]["cached"] is False
    assert steps["load"]["error"] is None
    assert steps["load"]["cache_key"].startswith("load:")
    assert steps["total"]["status"] == "failed"
    assert steps["total"]["error"] == "ValueError: bad rows"
    assert "[1, 2, 3]" not in (tmp_path / f"{result.run_id}.json").read_text()


def test_a_second_run_records_cache_hits(tmp_path: Path) -> None:
    pipeline = Pipeline("records", steps=two_steps().steps, runs_dir=tmp_path)
    pipeline.run(run_id="first")

    pipeline.run(run_id="second")

    steps = json.loads((tmp_path / "second.json").read_text())["steps"]
    assert steps["load"]["cached"] is True


def test_records_are_private_to_the_user(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    Pipeline("records", steps=two_steps().steps, runs_dir=runs).run(run_id="one")

    assert stat.S_IMODE(os.stat(runs).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(runs / "one.json").st_mode) == 0o600


@pytest.mark.parametrize("run_id", ["../escape", "a/b", ".hidden", "", "x" * 200, "a b"])
def test_a_run_id_that_cannot_name_a_record_is_refused_before_any_step_runs(
    run_id: str, tmp_path: Path
) -> None:
    calls: list[str] = []
    pipeline = Pipeline("records", steps=two_steps(calls).steps, runs_dir=tmp_path)

    with pytest.raises(PipelineDefinitionError, match="run_id"):
        pipeline.run(run_id=run_id)

    assert calls == []
    assert list(tmp_path.iterdir()) == []


def test_a_runs_dir_that_cannot_be_written_costs_a_warning_not_the_result(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    pipeline = Pipeline("records", steps=two_steps().steps, runs_dir=blocker / "runs")

    result = pipeline.run()

    assert result.step_results["load"].success
    assert "not recorded" in caplog.text
