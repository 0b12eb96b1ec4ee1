"""What ``dagster dev -w workspace.yaml`` shows of the example pipelines, read through GraphQL.

Jobs and their descriptions, every step output as an asset with its step's docstring and kinds,
the Kubernetes resources of the train op, the GPU pool, and the pipeline schedule.
"""

from __future__ import annotations

import json
from typing import Any

from e2e_support import EXAMPLES_LOCATION, REPOSITORY, Deployment

from flowyml_dagster.constants import K8S_CONFIG_TAG

REPOSITORY_QUERY = """
query($selector: RepositorySelector!) {
  repositoryOrError(repositorySelector: $selector) {
    __typename
    ... on Repository {
      jobs { name description }
      schedules {
        name
        cronSchedule
        pipelineName
        scheduleState { status }
      }
    }
  }
}
"""

JOB_ASSETS_QUERY = """
query($pipeline: PipelineSelector!) {
  assetNodes(pipeline: $pipeline) {
    assetKey { path }
    description
    kinds
    groupName
    opNames
    pools
    opTags { key value }
  }
}
"""

SELECTOR = {"repositoryLocationName": EXAMPLES_LOCATION, "repositoryName": REPOSITORY}


def _repository(deployment: Deployment) -> dict[str, Any]:
    found = deployment.client(REPOSITORY_QUERY, {"selector": SELECTOR})["repositoryOrError"]
    assert found["__typename"] == "Repository", found
    return found


def _training_assets(deployment: Deployment) -> dict[str, dict[str, Any]]:
    pipeline = {**SELECTOR, "pipelineName": "training"}
    nodes = deployment.client(JOB_ASSETS_QUERY, {"pipeline": pipeline})["assetNodes"]
    return {"/".join(node["assetKey"]["path"]): node for node in nodes}


def test_example_jobs_are_listed_with_their_pipeline_descriptions(
    examples_dev: Deployment,
) -> None:
    jobs = {job["name"]: job["description"] for job in _repository(examples_dev)["jobs"]}

    assert jobs["training"] == ("Train, evaluate and (if good enough) promote a digits classifier.")
    assert jobs["batch_scoring"] == (
        "Score the digits batch with the trained model, every morning at 06:00."
    )


def test_every_training_step_output_is_an_asset_described_by_its_step(
    examples_dev: Deployment,
) -> None:
    assets = _training_assets(examples_dev)

    assert set(assets) == {
        "data/features",
        "data/labels",
        "data/train",
        "data/test",
        "model/scaler",
        "data/train_scaled",
        "data/test_scaled",
        "model/classifier",
        "metrics/evaluation",
        "model/promoted",
        "report/training",
    }
    assert assets["model/classifier"]["description"] == (
        "Multinomial logistic regression; asks for a GPU so the Kubernetes tags show it."
    )
    assert assets["model/promoted"]["description"] == (
        "Mark the model as the one to serve, with the metrics it was promoted on."
    )
    assert all(node["description"] for node in assets.values())


def test_assets_carry_the_translator_kinds(examples_dev: Deployment) -> None:
    assets = _training_assets(examples_dev)

    assert {key: set(node["kinds"]) for key, node in assets.items()} == {
        key: {"python", "scikitlearn"} for key in assets
    }


def test_train_op_requests_a_gpu_through_the_k8s_config_tag(examples_dev: Deployment) -> None:
    node = _training_assets(examples_dev)["model/classifier"]
    tags = {tag["key"]: tag["value"] for tag in node["opTags"]}

    config = json.loads(tags[K8S_CONFIG_TAG])
    resources = config["container_config"]["resources"]
    assert node["opNames"] == ["train"]
    assert resources["requests"]["nvidia.com/gpu"] == "1"
    assert resources["limits"]["nvidia.com/gpu"] == "1"
    assert resources["requests"]["cpu"] == "4"
    assert resources["requests"]["memory"] == "8Gi"
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in config[
        "pod_spec_config"
    ]["tolerations"]


def test_only_the_gpu_step_is_in_the_gpu_pool(examples_dev: Deployment) -> None:
    assets = _training_assets(examples_dev)

    pools = {key: node["pools"] for key, node in assets.items() if node["pools"]}
    assert pools == {"model/classifier": ["gpu"]}


def test_pipeline_schedule_is_a_dagster_schedule_stopped_by_default(
    examples_dev: Deployment,
) -> None:
    schedules = {s["name"]: s for s in _repository(examples_dev)["schedules"]}

    assert set(schedules) == {"batch_scoring_schedule"}
    schedule = schedules["batch_scoring_schedule"]
    assert schedule["cronSchedule"] == "0 6 * * *"
    assert schedule["pipelineName"] == "batch_scoring"
    assert schedule["scheduleState"]["status"] == "STOPPED"
