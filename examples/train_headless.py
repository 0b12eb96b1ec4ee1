"""Materialize the training pipeline through Dagster without a server, and print a summary.

Runs on the instance of ``$DAGSTER_HOME`` (``make train`` sets it to ``.dagster_home`` in the
repo), so the run, its events and the assets show in ``make run``'s UI afterwards.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from definitions import DigitsTranslator
from digits_pipelines import training

from flowyml_dagster import run


def main() -> int:
    result = run(training, translator=DigitsTranslator())
    print(f"run {result.run_id}: {result.state} in {result.duration_seconds:.1f}s")
    for name, step in result.step_results.items():
        cache = "cache hit" if step.cached else ""
        print(f"  {name:12} {step.status.value:16} {cache}")
    if result.success:
        evaluation = result["metrics/evaluation"]
        print(f"accuracy {evaluation['accuracy']:.4f}, macro F1 {evaluation['f1_macro']:.4f}")
    return 0 if result.success else 1


if __name__ == "__main__":
    raise SystemExit(main())
