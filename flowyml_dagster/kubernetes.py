"""flowyml resource requirements as the ``dagster-k8s/config`` tag of an op.

The shape is the one ``dagster_k8s`` reads (``get_user_defined_k8s_config``) and renders into the
step's pod with ``k8s_job_executor``: container ``resources`` and pod ``node_selector``,
``tolerations`` and ``affinity``. CPU gets a request but no limit (a CPU limit only throttles);
memory, ephemeral storage and GPUs get a limit equal to the request, as Kubernetes requires for
GPUs and as avoids surprise OOM kills for memory.

Which label tells a node's GPU type is the cluster's business (GKE sets
``cloud.google.com/gke-accelerator``, NVIDIA's GPU feature discovery ``nvidia.com/gpu.product``,
with other spellings of the type), so ``gpu_type`` becomes a node selector only through
``FlowymlTranslator.get_node_selector``, which selects nothing by default.

A step's own ``dagster-k8s/config`` tag (a security context, job metadata ...) is deep-merged with
what its resources produce, as dagster-k8s merges configs: dicts key by key, lists appended without
duplicates, and for the same leaf the tag's value wins. Two leaves are guarded, because a different
value there would silently undo what ``resources`` asked for: a GPU request or limit (the same
number, ``1`` for ``"1"``, is the same; another vendor's GPU next to it is refused too), and a node
selector label. Those, and two steps of an execution group giving one leaf two values (or one
named item of a list, an ``env`` variable or a volume, two contents), are refused at build time
with an error naming the step(s) and the field, as is a ``null`` anywhere in the tag.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from flowyml.core.errors import PipelineDefinitionError
from flowyml.core.graph import ExecutionUnit
from flowyml.core.resources import (
    GPUConfig,
    NodeAffinity,
    ResourceRequirements,
    kubernetes_quantity,
    label_key,
    label_value,
)
from flowyml_dagster.constants import K8S_CONFIG_TAG

# Lists a merge replaces instead of appending to, as dagster-k8s's ALWAYS_SHALLOW_MERGE_LIST_FIELDS:
# half of one command and half of another is neither.
_WHOLE_LISTS = frozenset({"command", "args"})
# Lists of named items, by the key naming them: two different items of one name are one too many
# (the container gets both values of an env var; Kubernetes refuses two volumes of one name).
_NAMED_LISTS = {
    "env": "name",
    "volumes": "name",
    "volume_mounts": "mount_path",
    "containers": "name",
    "init_containers": "name",
}

# Extended-resource names by GPU vendor prefix of ``gpu_type``; NVIDIA's unless it says otherwise.
_GPU_RESOURCE_BY_VENDOR = {"amd": "amd.com/gpu", "intel": "gpu.intel.com/i915"}
_DEFAULT_GPU_RESOURCE = "nvidia.com/gpu"
_GPU_RESOURCES = frozenset({*_GPU_RESOURCE_BY_VENDOR.values(), _DEFAULT_GPU_RESOURCE})

# How a merge settles one leaf both sides set differently: (path, value so far, new value) → value.
Resolve = Callable[[tuple[str, ...], Any, Any], Any]


def gpu_resource_name(gpu: GPUConfig) -> str:
    """The Kubernetes extended resource of a GPU type (``"nvidia-a100"`` → ``nvidia.com/gpu``)."""
    vendor = gpu.gpu_type.split("-", 1)[0].lower()
    return _GPU_RESOURCE_BY_VENDOR.get(vendor, _DEFAULT_GPU_RESOURCE)


def k8s_config(
    resources: ResourceRequirements, node_selector: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The ``dagster-k8s/config`` value for ``resources`` (empty parts left out).

    ``node_selector`` (the translator's, for the GPU type) joins ``node_affinity.required``; the
    same label with two values cannot be met and raises ``ValueError``.
    """
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
    if node_selector:
        pod_spec["node_selector"] = _join_selectors(
            pod_spec.get("node_selector", {}), node_selector
        )
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


def _join_selectors(required: dict[str, str], selected: Mapping[str, str]) -> dict[str, str]:
    joined = dict(required)
    for key, value in selected.items():
        label_key(key)
        label_value(value)
        if joined.setdefault(key, value) != value:
            raise ValueError(
                f"node label {key!r} is {required[key]!r} in node_affinity.required but "
                f"{value!r} in the translator's node selector for the GPU type"
            )
    return joined


def unit_k8s_config(
    unit: ExecutionUnit, render: Callable[[ResourceRequirements], dict[str, Any]]
) -> dict[str, Any]:
    """The ``dagster-k8s/config`` of a unit's op: ``render(unit.resources)`` (the translator's
    ``get_k8s_config``) deep-merged with each step's own ``dagster-k8s/config`` tag."""
    try:
        generated = render(unit.resources) if unit.resources is not None else {}
    except ValueError as exc:
        names = ", ".join(f"'{s.name}'" for s in unit.steps)
        where = f"execution group '{unit.group}' (steps {names})" if unit.group else f"step {names}"
        raise PipelineDefinitionError(f"{where}: resources: {exc}") from None
    own = [(s.name, config) for s in unit.steps if (config := _own_config(s.name, s.tags))]
    for step_name, config in own:  # each tag against resources first, to name its step
        _check_gpu_names(step_name, generated, config)
        _deep_merge(generated, config, _guard(step_name))
    users: dict[str, Any] = {}
    for index, (step_name, config) in enumerate(own):
        users = _deep_merge(users, config, _clash(step_name, own[:index]))
    return _deep_merge(generated, users, _theirs)


def _own_config(step_name: str, tags: Mapping[str, str]) -> dict[str, Any]:
    """The step's ``dagster-k8s/config`` tag (JSON text; a dict is stored as such), checked and in
    dagster-k8s's snake_case by dagster-k8s itself; only the parts the user gave."""
    text = tags.get(K8S_CONFIG_TAG)
    if text is None:
        return {}
    field = f"step '{step_name}': tags[{K8S_CONFIG_TAG!r}]"
    try:
        given = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PipelineDefinitionError(f"{field}: not a JSON object ({exc})") from None
    if not isinstance(given, dict):
        raise PipelineDefinitionError(f"{field}: must be a JSON object, got {text!r}")
    if (null := _null_path(given)) is not None:  # dagster-k8s: "'NoneType' has no ... 'items'"
        raise PipelineDefinitionError(
            f"{field}: {_dotted(null)} is null; leave it out or give it a value"
        )
    try:
        from dagster_k8s.job import get_user_defined_k8s_config
    except ImportError:
        raise PipelineDefinitionError(
            f"{field}: merging it with the step's resources needs dagster-k8s: "
            "pip install 'flowyml-dagster[k8s]'"
        ) from None
    try:
        parsed = get_user_defined_k8s_config({K8S_CONFIG_TAG: text}).to_dict()
    except Exception as exc:  # a Kubernetes key it does not know is a bare Exception
        raise PipelineDefinitionError(f"{field}: {exc}") from None
    return {key: parsed[key] for key in given}


def _null_path(value: Any, path: tuple[str, ...] = ()) -> tuple[str, ...] | None:
    """The path of the first ``None`` in ``value``, if any."""
    if value is None:
        return path
    items = value.items() if isinstance(value, Mapping) else ()
    if isinstance(value, list):
        items = ((f"[{index}]", item) for index, item in enumerate(value))
    for key, item in items:
        if (found := _null_path(item, (*path, key))) is not None:
            return found
    return None


def _check_gpu_names(step_name: str, generated: Mapping[str, Any], own: Mapping[str, Any]) -> None:
    """A tag may not add a GPU of another vendor next to the one the resources ask for: the pod
    would wait for nodes with both, or get GPUs its step did not ask for."""
    wanted = _leaf(generated, ("container_config", "resources"))
    given = _leaf(own, ("container_config", "resources"))
    if not isinstance(wanted, Mapping) or not isinstance(given, Mapping):
        return
    ours = {name for part in wanted.values() for name in part if _is_gpu(name)}
    if not ours:
        return
    for part, quantities in given.items():
        for name in quantities if isinstance(quantities, Mapping) else ():
            if _is_gpu(name) and name not in ours:
                raise PipelineDefinitionError(
                    f"step '{step_name}': tags[{K8S_CONFIG_TAG!r}]: container_config.resources."
                    f"{part}.{name} is another GPU than the step's resources ask for "
                    f"({', '.join(sorted(ours))}); change resources or the translator, not the tag"
                )


def _is_gpu(resource_name: str) -> bool:
    return resource_name in _GPU_RESOURCES or resource_name.endswith("/gpu")


def _deep_merge(
    onto: Mapping[str, Any], update: Mapping[str, Any], resolve: Resolve, path: tuple[str, ...] = ()
) -> dict[str, Any]:
    """``update`` merged onto a copy of ``onto`` as dagster-k8s's deep merge does; a leaf both set
    differently is ``resolve``'s to settle."""
    merged = dict(onto)
    for key, value in update.items():
        here = (*path, key)
        old = merged.get(key)
        if key not in merged:
            merged[key] = value
        elif isinstance(old, Mapping) and isinstance(value, Mapping):
            merged[key] = _deep_merge(old, value, resolve, here)
        elif isinstance(old, list) and isinstance(value, list) and key not in _WHOLE_LISTS:
            merged[key] = _merge_list(key, old, value, resolve, here)
        elif old != value:
            merged[key] = resolve(here, old, value)
    return merged


def _merge_list(
    key: str, old: list[Any], new: list[Any], resolve: Resolve, path: tuple[str, ...]
) -> list[Any]:
    """``new``'s items appended to ``old``'s but those already there; in a list of named items
    (``env`` ...), an item named as one already there but different is ``resolve``'s to settle:
    appended, the pod would get both (two values of one variable, two volumes of one name)."""
    merged = list(old)
    by = _NAMED_LISTS.get(key)
    for item in new:
        if item in merged:
            continue
        name = item.get(by) if by and isinstance(item, Mapping) else None
        index = (
            next(
                (i for i, o in enumerate(merged) if isinstance(o, Mapping) and o.get(by) == name),
                None,
            )
            if name is not None
            else None
        )
        if index is None:
            merged.append(item)
        else:
            merged[index] = resolve((*path, _item(by, name)), merged[index], item)
    return merged


def _item(by: str, name: Any) -> str:
    return f"[{by}={name!r}]"


def _dotted(path: tuple[str, ...]) -> str:
    return ".".join(path).replace(".[", "[")


def _guarded(path: tuple[str, ...]) -> bool:
    """A GPU request or limit, or a node selector label: leaves resources set that a tag must not
    silently change (a pod without its GPU, or on nodes without that GPU type)."""
    gpu = (
        len(path) == 4
        and path[:2] == ("container_config", "resources")
        and path[3] in _GPU_RESOURCES
    )
    return gpu or path[:2] == ("pod_spec_config", "node_selector")


def _guard(step_name: str) -> Resolve:
    def resolve(path: tuple[str, ...], ours: Any, theirs: Any) -> Any:
        if _guarded(path) and not (_is_gpu(path[-1]) and str(theirs) == str(ours)):
            raise PipelineDefinitionError(
                f"step '{step_name}': tags[{K8S_CONFIG_TAG!r}]: {_dotted(path)} is {theirs!r} but "
                f"the step's resources (through the translator) make it {ours!r}; change resources "
                "or the translator, not the tag"
            )
        return theirs

    return resolve


def _clash(step_name: str, earlier: list[tuple[str, dict[str, Any]]]) -> Resolve:
    def resolve(path: tuple[str, ...], ours: Any, theirs: Any) -> Any:
        other = next(name for name, config in earlier if _leaf(config, path) == ours)
        raise PipelineDefinitionError(
            f"steps '{other}' and '{step_name}' share one pod (an execution group) but their "
            f"tags[{K8S_CONFIG_TAG!r}] set {_dotted(path)} to {ours!r} and {theirs!r}"
        )

    return resolve


def _theirs(path: tuple[str, ...], ours: Any, theirs: Any) -> Any:
    """The tag's value, but resources' spelling of a guarded leaf (checked equal: 1 and '1')."""
    return ours if _guarded(path) else theirs


def _leaf(config: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = config
    for index, key in enumerate(path):
        if isinstance(value, list):  # key is ``_item``'s: the named item of that list
            by = _NAMED_LISTS.get(path[index - 1], "")
            value = next((v for v in value if _item(by, v.get(by)) == key), None)
        else:
            value = value.get(key) if isinstance(value, Mapping) else None
    return value


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
