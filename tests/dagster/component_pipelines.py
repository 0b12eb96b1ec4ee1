"""Pipelines the component tests load by module name (``modules: [component_pipelines]``).

``modelling``: ``prepare`` and ``fit`` share the execution group ``gpu_work``, ``report`` runs
alone; ``auditing``: ``audit``. ``KindTranslator`` is a translator to name in YAML. Steps
are named in the pipeline, so the autouse registry reset of each test does not matter. Not a
test module.
"""

from __future__ import annotations

from flowyml import Pipeline, Step, step
from flowyml_dagster import FlowymlTranslator


@step(outputs=["rows"], execution_group="gpu_work")
def prepare() -> list[int]:
    return [1, 2, 3]


@step(inputs=["rows"], outputs=["fitted"], execution_group="gpu_work", retry=1)
def fit(rows: list[int]) -> int:
    return sum(rows)


@step(inputs=["fitted"], outputs=["summary"], tags={"layer": "report"})
def report(fitted: int) -> str:
    return f"fitted {fitted}"


@step(outputs=["audit"])
def audit() -> str:
    return "ok"


modelling = Pipeline.from_steps(prepare, fit, report, name="modelling")
auditing = Pipeline.from_steps(audit, name="auditing")


class KindTranslator(FlowymlTranslator):
    """Named by import path in a test's YAML: one more kind on every asset."""

    def get_kinds(self, step: Step) -> set[str]:
        return {"python", "flowyml"}
