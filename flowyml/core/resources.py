"""Resource requirements of a step: CPU, memory, storage, GPUs and node placement.

These are plain validated values with no orchestrator in them; ``flowyml_dagster`` turns them into
Kubernetes requests/limits and pools. Quantities are kept exactly as the user wrote them (``4``,
``"4"`` and ``"4000m"`` stay distinct spellings) and are compared through their numeric value.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# Matched with ``fullmatch`` only: ``$`` would also match before a final newline ("4\n"). Digits
# are ASCII ``[0-9]``: ``\d`` also matches Arabic-Indic or fullwidth ones, refused by Kubernetes.
_CPU = re.compile(r"(?P<number>[0-9]+(\.[0-9]+)?)(?P<milli>m?)")
_BYTES = re.compile(
    r"(?P<number>[0-9]+(\.[0-9]+)?)(?P<unit>Ki|Mi|Gi|Ti|Pi|KB|MB|GB|TB|PB|K|M|G|T|P|B)?"
)
# A non-empty Kubernetes label value: what ``gpu_type`` and node labels become in a node selector.
_LABEL_VALUE = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?")
# A Kubernetes label key: an optional DNS-subdomain prefix and a slash, then a name.
_LABEL_KEY = re.compile(
    r"([a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
)

# Multipliers of the accepted byte units; "K" and "KB" are decimal like Kubernetes' "k".
_BYTE_UNITS: dict[str, int] = {
    "": 1, "B": 1,
    "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50,
    "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15,
    "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12, "PB": 10**15,
}  # fmt: skip

# Kubernetes spells the decimal units k, M, G, T, P and has no "B" suffix.
_K8S_UNITS: dict[str, str] = {"": "", "B": "", "K": "k", "KB": "k", "MB": "M", "GB": "G",
                              "TB": "T", "PB": "P"}  # fmt: skip


def cpu_millicores(cpu: int | float | str) -> int:
    """The numeric value of a CPU quantity in millicores (``"500m"`` → 500, ``2`` → 2000)."""
    if isinstance(cpu, bool):
        raise ValueError(f"CPU must be a number or a quantity like '2' or '500m', not {cpu!r}")
    if isinstance(cpu, int | float):
        if not cpu > 0 or cpu == float("inf"):
            raise ValueError(f"CPU must be a positive finite number, got {cpu!r}")
        return int(Decimal(str(cpu)) * 1000)
    match = _CPU.fullmatch(cpu)
    if not match:
        raise ValueError(
            f"invalid CPU quantity {cpu!r}: use cores ('4', '0.5') or millicores ('500m')"
        )
    value = Decimal(match["number"]) * (1 if match["milli"] else 1000)
    if value <= 0:
        raise ValueError(f"CPU must be positive, got {cpu!r}")
    return int(value)


def quantity_bytes(quantity: str) -> int:
    """The number of bytes of a memory or storage quantity (``"16Gi"`` → 17179869184)."""
    match = _BYTES.fullmatch(quantity) if isinstance(quantity, str) else None
    if not match:
        raise ValueError(
            f"invalid byte quantity {quantity!r}: use a number with no space and a unit among "
            "Ki Mi Gi Ti Pi, K M G T P, KB MB GB TB PB (e.g. '16Gi', '512Mi', '2GB')"
        )
    value = int(Decimal(match["number"]) * _BYTE_UNITS[match["unit"] or ""])
    if value <= 0:
        raise ValueError(f"quantity must be positive, got {quantity!r}")
    return value


def label_value(value: str) -> str:
    """``value`` when Kubernetes accepts it as a label value (a node selector's), else an error."""
    if not isinstance(value, str) or not _LABEL_VALUE.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a Kubernetes label value: 1 to 63 letters, digits, '-', '_' "
            "or '.', starting and ending with a letter or digit"
        )
    return value


def label_key(key: str) -> str:
    """``key`` when Kubernetes accepts it as a label key (``[prefix/]name``), else an error."""
    if not isinstance(key, str) or not _LABEL_KEY.fullmatch(key):
        raise ValueError(
            f"{key!r} is not a Kubernetes label key: an optional DNS prefix and '/', then at most "
            "63 letters, digits, '-', '_' or '.'"
        )
    return key


def kubernetes_quantity(quantity: str) -> str:
    """The byte quantity in Kubernetes' spelling (``"2GB"`` → ``"2G"``, ``"1K"`` → ``"1k"``)."""
    match = _BYTES.fullmatch(quantity)
    if not match:
        raise ValueError(f"invalid byte quantity {quantity!r}")
    unit = match["unit"] or ""
    return match["number"] + _K8S_UNITS.get(unit, unit)


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    def __getitem__(self, key: str) -> Any:
        """Dict-style read access, for code written against the original dict resources."""
        if key not in type(self).model_fields:
            raise KeyError(key)
        return getattr(self, key)

    def get(self, key: str, default: Any = None) -> Any:
        return self[key] if key in type(self).model_fields else default

    def __iter__(self) -> Iterator[str]:  # type: ignore[override]
        return iter(self.to_dict())

    def keys(self) -> list[str]:
        return list(self.to_dict())

    def to_dict(self) -> dict[str, Any]:
        """The fields that are set, as plain values."""
        return self.model_dump(exclude_none=True)


class GPUConfig(_Model):
    """GPUs a step needs: how many, of which type, with how much memory each."""

    gpu_type: str = "generic"
    count: int = Field(default=1, ge=1)
    memory: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _accept_type_alias(cls, data: Any) -> Any:
        if isinstance(data, dict) and "type" in data and "gpu_type" not in data:
            data = {("gpu_type" if k == "type" else k): v for k, v in data.items()}
        return data

    @field_validator("count", mode="before")
    @classmethod
    def _count_is_integral(cls, value: Any) -> Any:
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise ValueError(f"GPU count must be a whole number, got {value!r}")
        return value

    @field_validator("gpu_type")
    @classmethod
    def _gpu_type_is_label_value(cls, value: str) -> str:
        # A translator may put it in a node selector, where anything else is refused at launch.
        return label_value(value)

    @field_validator("memory")
    @classmethod
    def _memory_is_quantity(cls, value: str | None) -> str | None:
        if value is not None:
            quantity_bytes(value)
        return value


class NodeAffinity(_Model):
    """Where a step may run: required and preferred node labels, and taints it tolerates."""

    required: dict[str, str] = Field(default_factory=dict)
    preferred: dict[str, str] = Field(default_factory=dict)
    tolerations: list[dict[str, str]] = Field(default_factory=list)

    @field_validator("required", "preferred")
    @classmethod
    def _labels_are_kubernetes_labels(cls, labels: dict[str, str]) -> dict[str, str]:
        for key, value in labels.items():
            label_key(key)
            label_value(value)
        return labels


class ResourceRequirements(_Model):
    """CPU, memory, storage, GPU and placement needs of a step.

    ``cpu`` accepts ``4``, ``"4"``, ``"0.5"`` or ``"500m"``; ``memory`` and ``storage`` accept
    binary (``Ki``..``Pi``) and decimal (``K``..``P``, ``KB``..``PB``) units; a bare number is
    refused (16 what?). ``gpu`` accepts a :class:`GPUConfig`, a dict, or a number of GPUs
    (``0``: none). An unknown key is an error, never ignored.
    """

    cpu: int | float | str | None = None
    memory: str | None = None
    storage: str | None = None
    gpu: GPUConfig | None = None
    node_affinity: NodeAffinity | None = None

    @field_validator("cpu", mode="before")
    @classmethod
    def _cpu_is_not_bool(cls, value: Any) -> Any:
        if isinstance(value, bool):  # else pydantic turns True into 1 core
            raise ValueError(f"CPU must be a number or a quantity like '500m', not {value!r}")
        return value

    @field_validator("cpu")
    @classmethod
    def _cpu_is_quantity(cls, value: int | float | str | None) -> int | float | str | None:
        if value is not None:
            cpu_millicores(value)
        return value

    @field_validator("memory", "storage", mode="before")
    @classmethod
    def _bytes_have_a_unit(cls, value: Any) -> Any:
        if isinstance(value, int | float) and not isinstance(value, bool):
            number = f"{value:g}"
            raise ValueError(
                f"{value!r} has no unit; write '{number}Gi' for {number} GiB or '{number}G' "
                f"for {number} GB (units: Ki Mi Gi Ti Pi, K M G T P, KB MB GB TB PB)"
            )
        return value

    @field_validator("memory", "storage")
    @classmethod
    def _bytes_are_quantity(cls, value: str | None) -> str | None:
        if value is not None:
            quantity_bytes(value)
        return value

    @field_validator("gpu", mode="before")
    @classmethod
    def _gpu_from_number(cls, value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError(f"gpu must be a GPUConfig, a dict or a number of GPUs, not {value!r}")
        if isinstance(value, int | float):
            return {"count": value} if value != 0 else None  # 0 GPUs: none, as written
        return value

    def __getitem__(self, key: str) -> Any:
        """Dict-style access; ``["gpu"]`` is the number of GPUs (``None`` without), as it was
        when resources were a dict like ``{"gpu": 2}``; ``.gpu`` is the :class:`GPUConfig`."""
        if key == "gpu":
            return self.gpu.count if self.gpu is not None else None
        return super().__getitem__(key)

    def has_gpu(self) -> bool:
        return self.gpu is not None

    def get_gpu_count(self) -> int:
        return self.gpu.count if self.gpu else 0

    @classmethod
    def merge(cls, *requirements: ResourceRequirements | None) -> ResourceRequirements | None:
        """The smallest requirements that satisfy all of ``requirements`` (each field's maximum).

        Used for an execution group, whose steps share one process or pod. Conflicting GPU types or
        node labels cannot both be met and raise ``ValueError``.
        """
        given = [r for r in requirements if r is not None]
        if not given:
            return None
        cpus = [r.cpu for r in given if r.cpu is not None]
        memories = [r.memory for r in given if r.memory is not None]
        storages = [r.storage for r in given if r.storage is not None]
        return cls(
            cpu=max(cpus, key=cpu_millicores) if cpus else None,
            memory=max(memories, key=quantity_bytes) if memories else None,
            storage=max(storages, key=quantity_bytes) if storages else None,
            gpu=_merge_gpus([r.gpu for r in given if r.gpu is not None]),
            node_affinity=_merge_affinities([r.node_affinity for r in given if r.node_affinity]),
        )


def resources(
    cpu: int | float | str | None = None,
    memory: str | None = None,
    storage: str | None = None,
    gpu: GPUConfig | Mapping[str, Any] | int | None = None,
    node_affinity: NodeAffinity | Mapping[str, Any] | None = None,
) -> ResourceRequirements:
    """Validated :class:`ResourceRequirements` from keywords: ``resources(cpu=2, memory="4Gi")``."""
    return ResourceRequirements(
        cpu=cpu, memory=memory, storage=storage, gpu=gpu, node_affinity=node_affinity
    )


def _merge_gpus(gpus: list[GPUConfig]) -> GPUConfig | None:
    if not gpus:
        return None
    types = {g.gpu_type for g in gpus} - {"generic"}
    if len(types) > 1:
        raise ValueError(f"cannot merge different GPU types {sorted(types)} into one unit")
    memories = [g.memory for g in gpus if g.memory is not None]
    return GPUConfig(
        gpu_type=types.pop() if types else "generic",
        count=max(g.count for g in gpus),
        memory=max(memories, key=quantity_bytes) if memories else None,
    )


def _merge_labels(field: str, labels: list[dict[str, str]]) -> dict[str, str]:
    merged: dict[str, str] = {}
    for mapping in labels:
        for key, value in mapping.items():
            if merged.setdefault(key, value) != value:
                raise ValueError(
                    f"cannot merge node_affinity.{field}: label {key!r} is both "
                    f"{merged[key]!r} and {value!r}"
                )
    return merged


def _merge_affinities(affinities: list[NodeAffinity]) -> NodeAffinity | None:
    if not affinities:
        return None
    tolerations: list[dict[str, str]] = []
    for affinity in affinities:
        tolerations.extend(t for t in affinity.tolerations if t not in tolerations)
    return NodeAffinity(
        required=_merge_labels("required", [a.required for a in affinities]),
        preferred=_merge_labels("preferred", [a.preferred for a in affinities]),
        tolerations=tolerations,
    )


__all__ = [
    "GPUConfig",
    "NodeAffinity",
    "ResourceRequirements",
    "cpu_millicores",
    "kubernetes_quantity",
    "label_key",
    "label_value",
    "quantity_bytes",
    "resources",
]
