"""An execution group ends the same way on the plain runner and through Dagster: it stops at its
first failing step, and it does not start when a value it needs from outside never came."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from flowyml import Pipeline, Step, step
from flowyml.core.results import PipelineResult
from flowyml_dagster import runner


@step(outputs=["grp/a"], execution_group="grp", register=False)
def grp_first() -> int:
    raise RuntimeError("broken")


@step(inputs=["grp/a"], outputs=["grp/b"], execution_group="grp", register=False)
def grp_second(a: int) -> int:
    return a


@step(outputs=["grp/c"], execution_group="grp", register=False)
def grp_independent() -> int:
    return 3


@step(outputs=["gate/open"], condition=lambda: False, register=False)
def closed_gate() -> int:
    return 1


@step(inputs=["gate/open"], outputs=["gated/a"], execution_group="gated", register=False)
def gated_needs(value: int) -> int:
    return value


@step(outputs=["gated/b"], execution_group="gated", register=False)
def gated_independent() -> int:
    return 2


FAILING = [grp_first, grp_second, grp_independent]
STARVED = [closed_gate, gated_needs, gated_independent]


def outcomes(result: PipelineResult) -> dict[str, tuple[str, str | None]]:
    return {name: (r.status.value, r.reason) for name, r in result.step_results.items()}


@pytest.mark.parametrize("steps", [FAILING, STARVED], ids=["failing-step", "missing-value"])
def test_a_group_ends_the_same_way_on_both_runners(
    steps: list[Step], instance: dg.DagsterInstance, tmp_path: Path
) -> None:
    pipeline = Pipeline("parity_group", steps=steps, enable_cache=False)

    plain = pipeline.run()
    dagster = runner.run(pipeline, instance=instance, cache_dir=str(tmp_path / "cache"))

    assert outcomes(dagster) == outcomes(plain)
    assert dagster.success is plain.success
