"""flowyml resource requirements as the ``dagster-k8s/config`` tag of an op.

The shape is the one ``dagster_k8s`` reads (``get_user_defined_k8s_config``) and renders into the
step's pod with ``k8s_job_executor``: container ``resources`` and pod ``node_selector``,
``tolerations`` and ``affinity``. CPU gets a request but no limit (a CPU limit only throttles);
memory, ephemeral storage and GPUs get a limit equal to the request, as Kubernetes requires for
GPUs and as avoids surprise OOM kills for memory.
"""

from __future__ import annotations

from typing import Any

from flowyml.core.resources import (
    GPUConfig,
    NodeAffinity,
    ResourceRequirements,
    kubernetes_quantity,
)

# Extended-resource names by GPU vendor prefix of ``gpu_type``; NVIDIA's unless it says otherwise.
_GPU_RESOURCE_BY_VENDOR = {"amd": "amd.com/gpu", "intel": "gpu.intel.com/i915"}
_DEFAULT_GPU_RESOURCE = "nvidia.com/gpu"


def gpu_resource_name(gpu: GPUConfig) -> str:
    """The Kubernetes extended resource of a GPU type (``"nvidia-a100"`` → ``nvidia.com/gpu``)."""
    vendor = gpu.gpu_type.split("-", 1)[0].lower()
    return _GPU_RESOURCE_BY_VENDOR.get(vendor, _DEFAULT_GPU_RESOURCE)


def k8s_config(resources: ResourceRequirements) -> dict[str, Any]:
    """The ``dagster-k8s/config`` value for ``resources`` (empty parts left out)."""
    requests: dict[str, str] = {}
    limits: dict[str, str] = {}
    if resources.cpu is not None:
        requests["cpu"] = str(resources.cpu)
    if resources.memory is not None:
        requests["memory"] = limits["memory"] = kubernetes_quantity(resources.memory)
    if resources.storage is not None:
        storage = kubernetes_quantity(resources.storage)
        requests["ephemeral-storage"] = limits["ephemeral-storage"] = storage
    pod_spec: dict[str, Any] = {}
    if resources.gpu is not None:
        gpu = gpu_resource_name(resources.gpu)
        requests[gpu] = limits[gpu] = str(resources.gpu.count)
        pod_spec["tolerations"] = [{"key": gpu, "operator": "Exists", "effect": "NoSchedule"}]
    if resources.node_affinity is not None:
        _place(pod_spec, resources.node_affinity)
    config: dict[str, Any] = {}
    container_resources = {k: v for k, v in (("requests", requests), ("limits", limits)) if v}
    if container_resources:
        config["container_config"] = {"resources": container_resources}
    if pod_spec:
        config["pod_spec_config"] = pod_spec
    return config


def _place(pod_spec: dict[str, Any], affinity: NodeAffinity) -> None:
    if affinity.required:
        pod_spec["node_selector"] = dict(affinity.required)
    if affinity.preferred:
        pod_spec["affinity"] = {
            "node_affinity": {
                "preferred_during_scheduling_ignored_during_execution": [
                    {
                        "weight": 1,
                        "preference": {
                            "match_expressions": [
                                {"key": key, "operator": "In", "values": [value]}
                                for key, value in affinity.preferred.items()
                            ]
                        },
                    }
                ]
            }
        }
    if affinity.tolerations:
        tolerations = pod_spec.setdefault("tolerations", [])
        tolerations.extend(t for t in affinity.tolerations if t not in tolerations)


def describe(resources: ResourceRequirements) -> str:
    """A one-line human summary for asset metadata: ``cpu 4, memory 16Gi, 1x nvidia-a100``."""
    parts = []
    if resources.cpu is not None:
        parts.append(f"cpu {resources.cpu}")
    if resources.memory is not None:
        parts.append(f"memory {resources.memory}")
    if resources.storage is not None:
        parts.append(f"storage {resources.storage}")
    if resources.gpu is not None:
        memory = f" ({resources.gpu.memory} each)" if resources.gpu.memory else ""
        parts.append(f"{resources.gpu.count}x {resources.gpu.gpu_type} GPU{memory}")
    if resources.node_affinity is not None and resources.node_affinity.required:
        labels = ", ".join(f"{k}={v}" for k, v in resources.node_affinity.required.items())
        parts.append(f"nodes {labels}")
    return ", ".join(parts) or "no requirements"
