"""The example code location: ``dagster dev -w workspace.yaml`` loads ``defs`` from here.

``DigitsTranslator`` shows the translator pattern: two overrides add scikit-learn's kind and put
the confusion matrix and the report on the materializations as markdown.
"""

from __future__ import annotations

from typing import Any

import dagster as dg
from digits_pipelines import batch_scoring, training

from flowyml import Step
from flowyml_dagster import FlowymlTranslator, build_definitions


class DigitsTranslator(FlowymlTranslator):
    """The default mapping, plus scikit-learn's kind and markdown for metrics and reports."""

    def get_kinds(self, step: Step) -> set[str]:
        return {"python", "scikitlearn"}

    def get_output_metadata(self, step: Step, output_name: str, value: Any) -> dict[str, Any]:
        metadata = super().get_output_metadata(step, output_name, value)
        if output_name == "metrics/evaluation":
            metadata["confusion_matrix"] = dg.MetadataValue.md(_markdown_matrix(value))
        elif output_name == "report/training":
            metadata["report"] = dg.MetadataValue.md(value)
        return metadata


def _markdown_matrix(evaluation: dict[str, Any]) -> str:
    matrix = evaluation["confusion_matrix"]
    header = "| true \\ predicted | " + " | ".join(str(i) for i in range(len(matrix))) + " |"
    rule = "|---" * (len(matrix) + 1) + "|"
    rows = [f"| {i} | " + " | ".join(str(v) for v in row) + " |" for i, row in enumerate(matrix)]
    return "\n".join([header, rule, *rows])


defs = build_definitions([training, batch_scoring], translator=DigitsTranslator())
