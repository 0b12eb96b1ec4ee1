"""A flowyml 2.x program: resource requirements on steps, and conditions that skip steps.

Resources are declared as a dict, with ``resources(...)`` or as ``ResourceRequirements`` with a
``GPUConfig``, and read back from the step; they do not change how a local run goes. A step whose
``condition`` is false is skipped, and the run still succeeds.
"""

from flowyml import Pipeline, context, step
from flowyml.core.resources import GPUConfig, ResourceRequirements, resources

SMALL = resources(cpu="2", memory="4Gi")
LARGE = ResourceRequirements(
    cpu="8", memory="32Gi", gpu=GPUConfig(gpu_type="nvidia-a100", count=2, memory="40Gi")
)


@step(outputs=["embeddings"], resources={"gpu": 1})
def embed():
    return [[0.1, 0.2], [0.3, 0.4]]


@step(inputs=["embeddings"], outputs=["index"], resources=SMALL)
def build_index(embeddings):
    return {i: vector for i, vector in enumerate(embeddings)}


@step(inputs=["index"], outputs=["model"], resources=LARGE)
def train(index):
    return {"size": len(index)}


@step(outputs=["metrics"], resources={"cpu": "1", "memory": "512Mi"})
def evaluate():
    return {"accuracy": 0.93}


@step(
    inputs=["metrics"],
    outputs=["deployment"],
    condition=lambda deploy_enabled: deploy_enabled,
)
def deploy(metrics):
    return f"deployed at {metrics['accuracy']:.2f}"


@step(
    inputs=["metrics"],
    outputs=["alert"],
    condition=lambda metrics, min_accuracy: metrics["accuracy"] < min_accuracy,
)
def raise_alert(metrics):
    return "accuracy below threshold"


@step(
    inputs=["metrics"],
    outputs=["badge"],
    condition=lambda metrics: metrics["accuracy"] >= 0.9,
)
def award_badge(metrics):
    return "gold"


def check_resources():
    assert embed.resources["gpu"] == 1

    assert isinstance(SMALL, ResourceRequirements)
    assert SMALL.cpu == "2"
    assert SMALL.memory == "4Gi"
    assert SMALL.gpu is None
    assert build_index.resources.cpu == "2"
    assert build_index.resources.memory == "4Gi"
    assert build_index.resources["cpu"] == "2"

    assert train.resources.gpu.gpu_type == "nvidia-a100"
    assert train.resources.gpu.count == 2
    assert train.resources.gpu.memory == "40Gi"
    assert train.resources["gpu"] == 2
    assert train.resources["memory"] == "32Gi"

    assert evaluate.resources["cpu"] == "1"
    assert evaluate.resources["memory"] == "512Mi"

    for bad in ({"cpu": "lots"}, {"memory": "four gigs"}):
        try:
            resources(**bad)
        except ValueError:
            pass
        else:
            raise AssertionError(f"resources({bad}) was accepted")

    pipeline = Pipeline("resourced_search")
    pipeline.add_steps([embed, build_index, train])
    result = pipeline.run(auto_start_ui=False)
    assert result.success
    assert result["model"] == {"size": 2}


def check_conditions():
    ctx = context(deploy_enabled=False, min_accuracy=0.8)
    pipeline = Pipeline("gated_release", context=ctx)
    pipeline.add_steps([evaluate, deploy, raise_alert, award_badge])

    result = pipeline.run(auto_start_ui=False)
    assert result.success
    assert result.step_results["evaluate"].success
    assert result.step_results["deploy"].skipped
    assert result.step_results["raise_alert"].skipped
    assert not result.step_results["award_badge"].skipped
    assert result.step_results["award_badge"].success
    assert result["badge"] == "gold"

    ctx.update({"deploy_enabled": True, "min_accuracy": 0.95})
    result = pipeline.run(auto_start_ui=False)
    assert result.success
    assert not result.step_results["deploy"].skipped
    assert result.step_results["deploy"].success
    assert result["deployment"] == "deployed at 0.93"
    assert not result.step_results["raise_alert"].skipped
    assert result["alert"] == "accuracy below threshold"
    assert result["badge"] == "gold"


def main():
    check_resources()
    check_conditions()
    print("OK")


if __name__ == "__main__":
    main()
