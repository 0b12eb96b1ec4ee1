"""Resource requirements: validated quantities, kept as written, merged by maximum."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from flowyml import GPUConfig, NodeAffinity, ResourceRequirements, StepDefinitionError, step
from flowyml.core.resources import cpu_millicores, quantity_bytes


@pytest.mark.parametrize(
    ("cpu", "millicores"),
    [("4", 4000), ("500m", 500), (4, 4000), (0.5, 500), ("0.5", 500), ("2.5", 2500)],
)
def test_a_cpu_quantity_is_accepted_and_kept_as_written(cpu: Any, millicores: int) -> None:
    resources = ResourceRequirements(cpu=cpu)

    assert resources.cpu == cpu
    assert type(resources.cpu) is type(cpu)
    assert cpu_millicores(resources.cpu) == millicores


@pytest.mark.parametrize(
    ("memory", "size"),
    [
        ("1Ki", 2**10),
        ("16Mi", 16 * 2**20),
        ("16Gi", 16 * 2**30),
        ("2Ti", 2 * 2**40),
        ("1K", 10**3),
        ("16M", 16 * 10**6),
        ("16G", 16 * 10**9),
        ("2T", 2 * 10**12),
        ("1KB", 10**3),
        ("512MB", 512 * 10**6),
        ("16GB", 16 * 10**9),
        ("2TB", 2 * 10**12),
        ("1.5Gi", 3 * 2**29),
    ],
)
def test_memory_and_storage_accept_binary_and_decimal_units(memory: str, size: int) -> None:
    resources = ResourceRequirements(memory=memory, storage=memory)

    assert resources.memory == memory
    assert resources.storage == memory
    assert quantity_bytes(memory) == size


@pytest.mark.parametrize(
    "resources",
    [
        {"cpu": "abc"},
        {"cpu": "-1"},
        {"cpu": -1},
        {"cpu": 0},
        {"cpu": True},
        {"cpu": float("inf")},
        {"memory": "16gb"},
        {"memory": "16 Gi"},
        {"memory": "-1Gi"},
        {"memory": "0"},
        {"storage": "ten gigs"},
        {"gpu": {"count": 0}},
        {"gpu": 1.5},
        {"gpu": {"count": 1, "memory": "lots"}},
        {"disk": "10Gi"},
    ],
    ids=lambda r: repr(r),
)
def test_a_bad_resource_value_is_a_validation_error(resources: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        ResourceRequirements(**resources)


@pytest.mark.parametrize(
    ("resources", "field"),
    [
        ({"cpu": "abc"}, "resources.cpu"),
        ({"cpu": "-1"}, "resources.cpu"),
        ({"memory": "16gb"}, "resources.memory"),
        ({"memory": "16 Gi"}, "resources.memory"),
        ({"storage": "1Xi"}, "resources.storage"),
        ({"gpu": -1}, "resources.gpu.count"),
        ({"gpu": {"type": "a100", "count": 0}}, "resources.gpu.count"),
        ({"cpus": 4}, "resources.cpus"),
        ({"cpu": "4\n"}, "resources.cpu"),
        ({"memory": "1Gi\n"}, "resources.memory"),
        ({"storage": "10Gi\n"}, "resources.storage"),
        ({"gpu": {"type": "nvidia-a100\n"}}, "resources.gpu.gpu_type"),
        ({"gpu": {"type": "nvidia a100"}}, "resources.gpu.gpu_type"),
        ({"gpu": {"type": ""}}, "resources.gpu.gpu_type"),
        ({"gpu": {"count": 1, "memory": "40Gi\n"}}, "resources.gpu.memory"),
        ({"node_affinity": {"required": {"pool": "gpu\n"}}}, "resources.node_affinity.required"),
        ({"node_affinity": {"preferred": {"zone\n": "a"}}}, "resources.node_affinity.preferred"),
    ],
    ids=lambda r: repr(r),
)
def test_a_bad_resource_value_fails_the_decoration_naming_step_and_field(
    resources: dict[str, Any], field: str
) -> None:
    with pytest.raises(StepDefinitionError) as raised:

        @step(resources=resources)
        def train() -> None:
            return None

    assert raised.value.step == "train"
    assert raised.value.field == field
    assert f"step 'train': {field}:" in str(raised.value)


@pytest.mark.parametrize(
    ("resources", "field"),
    [
        ({"cpu": "\u0664"}, "resources.cpu"),  # Arabic-Indic 4
        ({"cpu": "\uff14"}, "resources.cpu"),  # fullwidth 4
        ({"cpu": "1.\u0665"}, "resources.cpu"),
        ({"memory": "\u0661\u0666Gi"}, "resources.memory"),  # Arabic-Indic 16
        ({"storage": "\uff11\uff10Gi"}, "resources.storage"),  # fullwidth 10
        ({"gpu": {"count": 1, "memory": "\u0664\u0660Gi"}}, "resources.gpu.memory"),
    ],
    ids=lambda r: repr(r),
)
def test_a_quantity_with_non_ascii_digits_fails_the_decoration(
    resources: dict[str, Any], field: str
) -> None:
    # Python's \d and Decimal read them as numbers; Kubernetes refuses the pod.
    with pytest.raises(StepDefinitionError) as raised:

        @step(resources=resources)
        def train() -> None:
            return None

    assert raised.value.step == "train"
    assert raised.value.field == field


def test_a_resources_dict_is_validated_into_the_steps_requirements() -> None:
    @step(resources={"cpu": 2, "memory": "4Gi", "gpu": {"type": "nvidia-a100", "count": 2}})
    def train() -> None:
        return None

    assert isinstance(train.requirements, ResourceRequirements)
    assert train.requirements.cpu == 2
    assert train.requirements.memory == "4Gi"
    assert train.requirements.gpu == GPUConfig(gpu_type="nvidia-a100", count=2)


def test_a_resources_dict_reads_back_as_given() -> None:
    given = {"gpu": 1, "memory": "4Gi"}

    @step(resources=given)
    def train() -> None:
        return None

    given["gpu"] = 8
    assert train.resources == {"gpu": 1, "memory": "4Gi"}
    assert train.resources["gpu"] == 1


def test_an_int_gpu_becomes_that_many_generic_gpus() -> None:
    @step(resources={"gpu": 2})
    def train() -> None:
        return None

    assert train.requirements is not None
    assert train.requirements.gpu == GPUConfig(gpu_type="generic", count=2)
    assert train.requirements.get_gpu_count() == 2
    assert train.requirements.has_gpu()


def test_zero_gpus_means_no_gpu() -> None:
    @step(resources={"gpu": 0, "cpu": 1})
    def train() -> None:
        return None

    assert train.requirements is not None
    assert train.requirements.gpu is None
    assert not train.requirements.has_gpu()
    assert train.resources == {"gpu": 0, "cpu": 1}


@pytest.mark.parametrize("field", ["memory", "storage"])
def test_a_byte_quantity_without_a_unit_is_refused_saying_what_to_write(field: str) -> None:
    with pytest.raises(StepDefinitionError) as raised:

        @step(resources={field: 16})
        def train() -> None:
            return None

    assert raised.value.step == "train"
    assert field in raised.value.field
    assert "'16Gi'" in str(raised.value)
    assert "'16G'" in str(raised.value)


def test_the_resources_helper_makes_validated_requirements() -> None:
    from flowyml.core.resources import resources

    made = resources(cpu="2", memory="4Gi", gpu=GPUConfig(gpu_type="nvidia-a100", count=2))

    assert made == ResourceRequirements(
        cpu="2", memory="4Gi", gpu=GPUConfig(gpu_type="nvidia-a100", count=2)
    )
    with pytest.raises(ValidationError):
        resources(memory="lots")


def test_the_gpu_read_like_a_dict_is_the_number_of_gpus() -> None:
    resources = ResourceRequirements(gpu=GPUConfig(gpu_type="nvidia-a100", count=2))

    assert resources["gpu"] == 2
    assert resources.get("gpu") == 2
    assert resources.gpu == GPUConfig(gpu_type="nvidia-a100", count=2)
    assert ResourceRequirements(cpu=1)["gpu"] is None


def test_resources_can_be_read_like_a_dict() -> None:
    resources = ResourceRequirements(cpu="500m", memory="1Gi")

    assert resources["cpu"] == "500m"
    assert resources["memory"] == "1Gi"
    assert resources["storage"] is None
    assert resources.get("cpu") == "500m"
    assert resources.get("nonsense", "default") == "default"
    assert dict(zip(resources.keys(), [resources[k] for k in resources], strict=True)) == {
        "cpu": "500m",
        "memory": "1Gi",
    }
    with pytest.raises(KeyError):
        resources["nonsense"]


def test_resources_are_read_only() -> None:
    resources = ResourceRequirements(cpu=1)

    with pytest.raises(ValidationError):
        resources.cpu = 2  # type: ignore[misc]


def test_node_affinity_holds_labels_and_tolerations() -> None:
    affinity = NodeAffinity(
        required={"pool": "gpu"},
        preferred={"zone": "a"},
        tolerations=[{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}],
    )
    resources = ResourceRequirements(node_affinity=affinity)

    assert resources["node_affinity"]["required"] == {"pool": "gpu"}
    assert resources.node_affinity is not None
    assert resources.node_affinity.tolerations[0]["key"] == "gpu"


def test_merging_takes_the_largest_value_of_each_field() -> None:
    merged = ResourceRequirements.merge(
        ResourceRequirements(cpu="500m", memory="1Gi", storage="10G"),
        ResourceRequirements(cpu=2, memory="1500M"),
        ResourceRequirements(cpu="1", storage="20Gi", gpu=GPUConfig(count=1)),
        None,
    )

    assert merged == ResourceRequirements(
        cpu=2, memory="1500M", storage="20Gi", gpu=GPUConfig(count=1)
    )


def test_merging_gpus_keeps_the_named_type_and_the_largest_count_and_memory() -> None:
    merged = ResourceRequirements.merge(
        ResourceRequirements(gpu=GPUConfig(gpu_type="nvidia-a100", count=1, memory="40Gi")),
        ResourceRequirements(gpu=GPUConfig(count=4, memory="16Gi")),
    )

    assert merged is not None
    assert merged.gpu == GPUConfig(gpu_type="nvidia-a100", count=4, memory="40Gi")


def test_merging_different_gpu_types_is_an_error() -> None:
    with pytest.raises(ValueError, match="GPU types"):
        ResourceRequirements.merge(
            ResourceRequirements(gpu=GPUConfig(gpu_type="nvidia-a100")),
            ResourceRequirements(gpu=GPUConfig(gpu_type="nvidia-v100")),
        )


def test_merging_node_affinities_unions_labels_and_tolerations() -> None:
    toleration = {"key": "gpu", "operator": "Exists"}
    merged = ResourceRequirements.merge(
        ResourceRequirements(node_affinity=NodeAffinity(required={"pool": "gpu"})),
        ResourceRequirements(
            node_affinity=NodeAffinity(preferred={"zone": "a"}, tolerations=[toleration])
        ),
    )

    assert merged is not None
    assert merged.node_affinity == NodeAffinity(
        required={"pool": "gpu"}, preferred={"zone": "a"}, tolerations=[toleration]
    )


def test_merging_nothing_gives_no_requirements() -> None:
    assert ResourceRequirements.merge(None, None) is None
