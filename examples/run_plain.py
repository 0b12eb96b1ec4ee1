"""Run the example pipelines with the plain-Python runner (no Dagster, no server)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from digits_pipelines import batch_scoring, training


def main() -> int:
    trained = training.run()
    for name, result in trained.step_results.items():
        status, seconds = result.status.value, result.duration_seconds
        print(f"{name:12} {status:16} cached={result.cached} {seconds:.2f}s")
    if not trained.success:
        print(f"training failed: {trained.failed_steps}")
        return 1
    evaluation = trained["metrics/evaluation"]
    print(f"accuracy={evaluation['accuracy']:.4f} f1={evaluation['f1_macro']:.4f}")
    scored = batch_scoring.run(
        inputs={name: trained[name] for name in ("model/classifier", "model/scaler")}
    )
    predictions = scored["predictions/batch"]
    print(f"scored {len(predictions)} rows, mean confidence {predictions['confidence'].mean():.3f}")
    return 0 if scored.success else 1


if __name__ == "__main__":
    raise SystemExit(main())
