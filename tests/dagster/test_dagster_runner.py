"""``flowyml_dagster.run`` returns the plain runner's ``PipelineResult`` for the same pipeline."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import dagster_pipelines as pipelines
import pytest

from flowyml import Pipeline, step
from flowyml.core.execution import StepStatus
from flowyml.core.results import PipelineResult
from flowyml_dagster import runner

INPUTS = {"parity/numbers": [1, 2, 3, 4]}


@dataclass(frozen=True)
class BothWays:
    plain: PipelineResult
    dagster: PipelineResult
    instance: dg.DagsterInstance


@pytest.fixture(scope="module")
def both_ways(module_instance: dg.DagsterInstance, module_tmp: Path) -> BothWays:
    """The parity pipeline run by the plain runner and through Dagster, same inputs and context."""
    plain_work = module_tmp / "plain"
    dagster_work = module_tmp / "dagster"
    plain_work.mkdir()
    dagster_work.mkdir()
    pipeline = Pipeline(
        pipelines.PARITY.name,
        context=pipelines.PARITY.context,
        steps=pipelines.PARITY.steps,
        cache_dir=module_tmp / "plain-cache",
    )
    plain = pipeline.run(inputs=INPUTS, context={"scale": 10, "workdir": str(plain_work)})
    through_dagster = runner.run(
        pipeline,
        instance=module_instance,
        inputs=INPUTS,
        context={"scale": 10, "workdir": str(dagster_work)},
        cache_dir=str(module_tmp / "dagster-cache"),
    )
    return BothWays(plain, through_dagster, module_instance)


def summary(result: PipelineResult) -> dict[str, Any]:
    """What a caller reads from a result, without timings and ids."""
    return {
        name: {
            "status": r.status,
            "outputs": dict(r.outputs),
            "retries": r.retries,
            "cached": r.cached,
            "success": r.success,
            "skipped": r.skipped,
            "error_type": r.error.type if r.error else None,
        }
        for name, r in result.step_results.items()
    }


def test_every_step_ends_the_same_way_through_dagster(both_ways: BothWays) -> None:
    plain = {n: r.status for n, r in both_ways.plain.step_results.items()}

    assert {n: r.status for n, r in both_ways.dagster.step_results.items()} == plain
    assert set(plain.values()) == set(StepStatus)


def test_the_pipelines_outputs_are_the_same_through_dagster(both_ways: BothWays) -> None:
    assert dict(both_ways.dagster.outputs) == dict(both_ways.plain.outputs)
    assert both_ways.dagster["parity/total"] == 100


def test_step_results_read_the_same_through_dagster(both_ways: BothWays) -> None:
    assert summary(both_ways.dagster) == summary(both_ways.plain)


def test_the_run_as_a_whole_reads_the_same_through_dagster(both_ways: BothWays) -> None:
    plain, dagster = both_ways.plain, both_ways.dagster

    assert (dagster.pipeline_name, dagster.success, dagster.state, dagster.failed_steps) == (
        plain.pipeline_name,
        plain.success,
        plain.state,
        plain.failed_steps,
    )


def test_the_dagster_run_is_recorded_on_the_instance(both_ways: BothWays) -> None:
    record = both_ways.instance.get_run_by_id(both_ways.dagster.run_id)

    assert record is not None
    assert record.job_name == "parity"
    assert record.status is dg.DagsterRunStatus.FAILURE


class BadStr(Exception):
    def __str__(self) -> str:
        raise RuntimeError("__str__ of BadStr")


@step(outputs=["odd/bad_str"], register=False)
def raises_bad_str() -> int:
    raise BadStr()


@step(outputs=["odd/empty"], register=False)
def raises_empty_value_error() -> int:
    raise ValueError()


def test_an_odd_exception_reads_as_the_plain_runner_reports_it(
    module_instance: dg.DagsterInstance, tmp_path: Path
) -> None:
    steps = [raises_bad_str, raises_empty_value_error]
    pipeline = Pipeline("odd_errors", steps=steps, cache_dir=tmp_path / "plain")
    plain = pipeline.run()
    through_dagster = runner.run(
        pipeline, instance=module_instance, cache_dir=str(tmp_path / "dagster")
    )

    def errors(result: PipelineResult) -> dict[str, tuple[str, str]]:
        failed = {n: r.error for n, r in result.step_results.items()}
        return {n: (e.type, e.message) for n, e in failed.items() if e is not None}

    assert errors(through_dagster) == errors(plain)
    assert errors(plain) == {
        "raises_bad_str": ("BadStr", "<str() of the exception raised RuntimeError>"),
        "raises_empty_value_error": ("ValueError", ""),
    }


@step(outputs=["pair/number", "pair/lock"], register=False)
def returns_a_lock_second() -> tuple[int, Any]:
    return 1, threading.Lock()


def test_a_step_whose_second_output_cannot_be_stored_failed_as_the_dagster_run_did(
    module_instance: dg.DagsterInstance, tmp_path: Path
) -> None:
    pipeline = Pipeline("second_output_unstored", steps=[returns_a_lock_second])

    result = runner.run(pipeline, instance=module_instance, cache_dir=str(tmp_path))

    step_result = result.step_results["returns_a_lock_second"]
    run = module_instance.get_run_by_id(result.run_id)
    assert run is not None and run.status is dg.DagsterRunStatus.FAILURE
    assert not result.success
    assert step_result.status is StepStatus.FAILED
    assert step_result.error is not None and "pair/lock" in step_result.error.message


@step(outputs=["threads/value"], register=False)
def prints_and_returns() -> int:
    print("a step's own output")
    return 7


def in_threads(launch: Callable[[int], None], count: int) -> None:
    """``launch(0)`` … ``launch(count - 1)``, each in a thread of its own, all at once."""
    threads = [threading.Thread(target=launch, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)


def test_runs_from_several_threads_all_succeed_and_leave_the_processs_output_alone(
    module_instance: dg.DagsterInstance, tmp_path: Path
) -> None:
    stdout_before = os.fstat(1)  # Dagster points fd 1 at each step's log file while it runs
    results: dict[int, PipelineResult] = {}

    def launch(number: int) -> None:
        pipeline = Pipeline(f"threaded_{number}", steps=[prints_and_returns])
        results[number] = runner.run(pipeline, instance=module_instance, cache_dir=str(tmp_path))

    in_threads(launch, 4)

    assert sorted(results) == [0, 1, 2, 3]
    assert all(r.success and r["threads/value"] == 7 for r in results.values())
    stdout_after = os.fstat(1)
    assert (stdout_after.st_dev, stdout_after.st_ino) == (
        stdout_before.st_dev,
        stdout_before.st_ino,
    )


@step(outputs=["inner/value"], register=False)
def inner_value() -> int:
    return 41


@step(outputs=["outer/value"], register=False)
def runs_a_pipeline_itself() -> int:
    inner = runner.run(Pipeline("inner_pipeline", steps=[inner_value]), log_level="ERROR")
    return inner["inner/value"] + 1


def test_a_step_may_run_a_pipeline_through_dagster_itself(
    module_instance: dg.DagsterInstance, tmp_path: Path
) -> None:
    pipeline = Pipeline("outer_pipeline", steps=[runs_a_pipeline_itself])

    result = runner.run(pipeline, instance=module_instance, cache_dir=str(tmp_path))

    assert result.success and result["outer/value"] == 42


def test_threads_making_a_new_dagster_home_instance_at_once_all_succeed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "new-dagster-home"
    home.mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    results: dict[int, PipelineResult] = {}

    def launch(number: int) -> None:
        pipeline = Pipeline(f"first_use_{number}", steps=[prints_and_returns])
        results[number] = runner.run(pipeline, cache_dir=str(tmp_path / "cache"))

    in_threads(launch, 4)

    assert sorted(results) == [0, 1, 2, 3]
    assert all(r.success for r in results.values())
