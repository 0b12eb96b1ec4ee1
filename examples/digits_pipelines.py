"""A real ML workflow on scikit-learn's bundled digits data set (no download).

Two pipelines share steps: ``training`` (load → split → scale → train → evaluate → promote →
report) and ``batch_scoring`` (load → score with the trained model and scaler). ``load_digits``
is unscoped, so both pipelines discover it; every other step is scoped with ``pipeline=``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.datasets import load_digits as sklearn_digits
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from flowyml import GPUConfig, Pipeline, ResourceRequirements, RetryPolicy, context, step


@step(outputs=["data/features", "data/labels"], tags={"layer": "ingest"})
def load_digits() -> tuple[pd.DataFrame, pd.Series]:
    """Load the 8x8 handwritten digits (1,797 images) shipped with scikit-learn."""
    bunch = sklearn_digits(as_frame=True)
    return bunch.data, bunch.target


@step(
    inputs=["data/features", "data/labels"],
    outputs=["data/train", "data/test"],
    execution_group="preprocessing",
    pipeline="training",
    tags={"layer": "prepare"},
)
def split(features: pd.DataFrame, labels: pd.Series, test_size: float = 0.25, seed: int = 7):
    """Stratified train/test split, so every digit is in both parts."""
    x_train, x_test, y_train, y_test = train_test_split(
        features, labels, test_size=test_size, random_state=seed, stratify=labels
    )
    return {"X": x_train, "y": y_train}, {"X": x_test, "y": y_test}


@step(
    inputs=["data/train", "data/test"],
    outputs=["model/scaler", "data/train_scaled", "data/test_scaled"],
    execution_group="preprocessing",
    pipeline="training",
    resources=ResourceRequirements(cpu="1", memory="2Gi"),
    tags={"layer": "prepare"},
)
def scale(train: dict[str, Any], test: dict[str, Any]):
    """Fit a StandardScaler on the training part only, then scale both parts."""
    scaler = StandardScaler().fit(train["X"])
    return (
        scaler,
        {"X": scaler.transform(train["X"]), "y": train["y"].to_numpy()},
        {"X": scaler.transform(test["X"]), "y": test["y"].to_numpy()},
    )


@step(
    inputs=["data/train_scaled"],
    outputs=["model/classifier"],
    retry=RetryPolicy(max_retries=2, delay=1.0, backoff="exponential", jitter="plus_minus"),
    timeout=600,
    resources=ResourceRequirements(
        cpu="4", memory="8Gi", gpu=GPUConfig(gpu_type="nvidia-tesla-t4", count=1)
    ),
    pipeline="training",
    tags={
        "layer": "model",
        "framework": "scikit-learn",
        # Merged by flowyml_dagster with the Kubernetes config the resources above produce.
        "dagster-k8s/config": {
            "container_config": {
                "security_context": {"run_as_non_root": True, "allow_privilege_escalation": False}
            }
        },
    },
)
def train(train_scaled: dict[str, np.ndarray], C: float = 1.0, max_iter: int = 500):
    """Multinomial logistic regression; asks for a GPU so the Kubernetes tags show it."""
    return LogisticRegression(C=C, max_iter=max_iter).fit(train_scaled["X"], train_scaled["y"])


@step(
    inputs=["model/classifier", "data/test_scaled"],
    outputs=["metrics/evaluation"],
    pipeline="training",
    tags={"layer": "model"},
)
def evaluate(classifier, test_scaled: dict[str, np.ndarray]) -> dict[str, Any]:
    """Accuracy, macro F1 and the confusion matrix on the held-out part."""
    predicted = classifier.predict(test_scaled["X"])
    return {
        "accuracy": float(accuracy_score(test_scaled["y"], predicted)),
        "f1_macro": float(f1_score(test_scaled["y"], predicted, average="macro")),
        "confusion_matrix": confusion_matrix(test_scaled["y"], predicted).tolist(),
        "test_rows": len(predicted),
    }


def beats_threshold(evaluation: dict[str, Any], min_accuracy: float) -> bool:
    """Promote only a model whose accuracy reaches the context's ``min_accuracy``."""
    return evaluation["accuracy"] >= min_accuracy


@step(
    inputs=["model/classifier", "metrics/evaluation"],
    outputs=["model/promoted"],
    condition=beats_threshold,
    pipeline="training",
    tags={"layer": "release"},
)
def promote(classifier, evaluation: dict[str, Any]) -> dict[str, Any]:
    """Mark the model as the one to serve, with the metrics it was promoted on."""
    return {"model": classifier, "accuracy": evaluation["accuracy"]}


@step(inputs=["metrics/evaluation"], outputs=["report/training"], pipeline="training")
def report(evaluation: dict[str, Any]) -> str:
    """A markdown report of the run's metrics and confusion matrix."""
    matrix = evaluation["confusion_matrix"]
    worst = min(range(len(matrix)), key=lambda digit: matrix[digit][digit] / sum(matrix[digit]))
    return "\n".join(
        [
            "# Digits classifier",
            "",
            f"- accuracy: {evaluation['accuracy']:.4f}",
            f"- macro F1: {evaluation['f1_macro']:.4f}",
            f"- test rows: {evaluation['test_rows']}",
            f"- hardest digit: {worst} ({matrix[worst][worst]}/{sum(matrix[worst])} right)",
        ]
    )


@step(
    inputs=["model/classifier", "model/scaler", "data/features"],
    outputs=["predictions/batch"],
    pipeline="batch_scoring",
    cache="input_hash",
    tags={"layer": "serve"},
)
def score_batch(classifier, scaler, features: pd.DataFrame) -> pd.DataFrame:
    """Predict a digit for every row of the batch, with the model's confidence."""
    probabilities = classifier.predict_proba(scaler.transform(features))
    return pd.DataFrame(
        {"prediction": probabilities.argmax(axis=1), "confidence": probabilities.max(axis=1)}
    )


TRAINING_CONTEXT = context(test_size=0.25, seed=7, C=1.0, max_iter=500, min_accuracy=0.9)

training = Pipeline(
    "training",
    context=TRAINING_CONTEXT,
    auto_discover=True,
    description="Train, evaluate and (if good enough) promote a digits classifier.",
)
batch_scoring = Pipeline(
    "batch_scoring",
    auto_discover=True,
    schedule="0 6 * * *",
    description="Score the digits batch with the trained model, every morning at 06:00.",
)
