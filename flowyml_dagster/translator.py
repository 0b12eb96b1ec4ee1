"""``FlowymlTranslator``: every decision of how a flowyml step looks in Dagster, one method each.

The builder (``build_definitions``) asks the translator and decides nothing itself; to change one
decision (other asset keys, another group, extra tags), subclass and override that one method,
as with ``DagsterDbtTranslator``. ``get_asset_spec`` assembles the small asset methods into one
``dagster.AssetSpec`` per step output, so any attribute (owners, say, which no small method
decides) changes with one override: ``super().get_asset_spec(output).replace_attributes(...)``.

Planning asks each question once per asset, op or job and keeps the answers in the plan; the op
body asks only ``get_output_metadata``, the one question whose answer depends on a step's value.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import dagster as dg
from dagster._utils.tags import is_valid_strict_tag_value, is_valid_tag_key

from flowyml.core.code_fingerprint import UncachableCodeError
from flowyml.core.errors import PipelineDefinitionError
from flowyml.core.graph import ExecutionUnit
from flowyml.core.pipeline import Pipeline
from flowyml.core.resources import ResourceRequirements
from flowyml.core.retry import Backoff, Jitter
from flowyml.core.step import Step
from flowyml_dagster import kubernetes
from flowyml_dagster.constants import (
    CACHE_STRATEGY_METADATA_KEY,
    CELERY_QUEUE_TAG,
    EXECUTION_GROUP_METADATA_KEY,
    GPU_POOL,
    K8S_CONFIG_TAG,
    LOOSE_TAGS_METADATA_KEY,
    PIPELINES_METADATA_KEY,
    RESOURCES_METADATA_KEY,
    RETRY_METADATA_KEY,
    STEP_METADATA_KEY,
    TIMEOUT_METADATA_KEY,
)
from flowyml_dagster.names import dagster_name, key_path
from flowyml_dagster.tags import check_queue, unit_tags

_CODE_REFERENCES_KEY = "dagster/code_references"
# A dict with more entries is data (scores per row ...), not a set of metrics for the event log.
_MAX_METRICS = 50

_BACKOFF = {Backoff.LINEAR: dg.Backoff.LINEAR, Backoff.EXPONENTIAL: dg.Backoff.EXPONENTIAL}
_JITTER = {Jitter.FULL: dg.Jitter.FULL, Jitter.PLUS_MINUS: dg.Jitter.PLUS_MINUS}


@dataclass(frozen=True)
class StepOutput:
    """One output of a step, as ``get_asset_spec`` is asked about it.

    One record rather than positional arguments (as ``dagster-dlt`` does): context added later
    reaches overrides without breaking their signatures. ``deps`` are the asset keys of the
    step's inputs, as the specs of their producers (or ``get_input_asset_key``) decided them, so
    a key changed in one spec is the key its consumers depend on.
    """

    step: Step
    name: str
    deps: tuple[dg.AssetKey, ...]


class FlowymlTranslator:
    """Default mapping of flowyml steps and pipelines onto Dagster assets, ops and jobs."""

    def get_asset_spec(self, output: StepOutput) -> dg.AssetSpec:
        """The whole asset of one step output, from the small methods below.

        ``skippable``: a step whose condition is false yields nothing, and its consumers skip.
        The spec's deps must keep the step's inputs (they are loaded into the step); more deps
        (an asset the step reads by itself) are recorded as lineage.
        """
        step = output.step
        return dg.AssetSpec(
            key=self.get_asset_key(step, output.name),
            deps=output.deps,
            description=self.get_description(step),
            group_name=self.get_group_name(step),
            kinds=self.get_kinds(step),
            tags=self.get_asset_tags(step),
            metadata=self.get_metadata(step),
            code_version=self.get_code_version(step),
            skippable=True,
        )

    def get_asset_key(self, step: Step, output_name: str) -> dg.AssetKey:
        """``"data/train"`` → ``AssetKey(["data", "train"])``; a step's own name when no outputs."""
        path = key_path(output_name)
        if not path:
            raise PipelineDefinitionError(
                f"step '{step.name}': outputs: '{output_name}' has no segments for an asset key"
            )
        return dg.AssetKey(path)

    def get_input_asset_key(self, input_name: str) -> dg.AssetKey:
        """The asset key of a pipeline input nobody produces (an external asset)."""
        return dg.AssetKey(key_path(input_name))

    def get_op_name(self, unit: ExecutionUnit) -> str:
        """The op of a unit: the step's name, or the execution group's name."""
        return dagster_name(unit.group or unit.steps[0].name)

    def get_job_name(self, pipeline: Pipeline) -> str:
        return dagster_name(pipeline.name)

    def get_group_name(self, step: Step) -> str:
        """Asset group: the pipeline a step is scoped to; unscoped or shared steps → ``shared``."""
        return dagster_name(step.pipelines[0]) if len(step.pipelines) == 1 else "shared"

    def get_description(self, step: Step) -> str:
        return step.description or f"flowyml step '{step.name}'"

    def get_unit_description(self, unit: ExecutionUnit) -> str:
        """The op's description: the step's, or the list of an execution group's steps."""
        if unit.group is None:
            return self.get_description(unit.steps[0])
        return f"Execution group '{unit.group}': " + ", ".join(s.name for s in unit.steps)

    def get_kinds(self, step: Step) -> set[str]:
        return {"python"}

    def get_op_tags(self, unit: ExecutionUnit) -> dict[str, Any]:
        """Every user tag (op tags are lenient), plus the Kubernetes config of the unit: its
        resources' merged with the steps' own ``dagster-k8s/config`` tags (see ``kubernetes``);
        and its Celery queue, when ``get_celery_queue`` names one."""
        tags: dict[str, Any] = unit_tags(unit)  # two values of one tag in a group: an error
        config = kubernetes.unit_k8s_config(unit, self.get_k8s_config)
        if config:
            tags[K8S_CONFIG_TAG] = config
        queue = self.get_celery_queue(unit)
        if queue is not None:
            where = f"op '{self.get_op_name(unit)}': FlowymlTranslator.get_celery_queue"
            tags[CELERY_QUEUE_TAG] = check_queue(queue, where)
        return tags

    def get_asset_tags(self, step: Step) -> dict[str, str]:
        """The user tags that meet Dagster's strict asset-tag rules; the rest go to metadata."""
        return {k: v for k, v in step.tags.items() if _strict_tag(k, v)}

    def get_k8s_config(self, resources: ResourceRequirements) -> dict[str, Any]:
        """The ``dagster-k8s/config`` tag value: requests, limits, GPUs, placement."""
        return kubernetes.k8s_config(resources, node_selector=self.get_node_selector(resources))

    def get_node_selector(self, resources: ResourceRequirements) -> dict[str, str]:
        """Node labels for the GPU type; none by default, as the label is the cluster's.

        ``gpu_type`` is the user's spelling and each cluster labels GPU nodes its own way (GKE:
        ``cloud.google.com/gke-accelerator: nvidia-tesla-t4``; NVIDIA's GPU feature discovery:
        ``nvidia.com/gpu.product: Tesla-T4``), so a guessed label would leave pods pending on
        every other cluster. Override to map ``resources.gpu.gpu_type`` to your nodes' label;
        ``node_affinity.required`` is added to what this returns.
        """
        return {}

    def get_pool(self, unit: ExecutionUnit) -> str | None:
        """GPU units share the ``gpu`` pool; ``dagster instance concurrency set gpu N`` caps it."""
        if unit.resources is not None and unit.resources.gpu is not None:
            return GPU_POOL
        return None

    def get_celery_queue(self, unit: ExecutionUnit) -> str | None:
        """The Celery queue of the unit's task under ``celery_executor``; ``None``: the default
        queue (``dagster``). Nothing is routed by default, since a task on a queue no worker
        listens to waits forever; override to route by resources, e.g. GPU units to ``gpu``
        (``examples/celery_definitions.py``), and start a worker with ``-q gpu``."""
        return None

    def get_retry_policy(self, unit: ExecutionUnit) -> dg.RetryPolicy | None:
        """The step's policy as Dagster's. ``None`` for an execution group: retrying its op would
        re-run the group's successful steps and give a ``retry=0`` step more attempts, so the
        op body retries each step by its own policy instead."""
        if len(unit.steps) > 1:
            return None
        policy = unit.steps[0].retry_policy
        if policy.max_retries == 0:
            return None
        if policy.delay <= 0:
            return dg.RetryPolicy(max_retries=policy.max_retries)
        return dg.RetryPolicy(
            max_retries=policy.max_retries,
            delay=policy.delay,
            backoff=_BACKOFF.get(policy.backoff),
            jitter=_JITTER.get(policy.jitter),
        )

    def get_code_version(self, step: Step) -> str | None:
        """The step's code fingerprint, so the UI marks assets stale when the code changes;
        ``None`` when its code reads a global without a fingerprint (it is not cached either).
        A secret the code reads (a ``SecretStr`` default) enters as its type alone: the version
        is the same in every process (a process key would make it change with every code server
        restart) and tells a reader of the event log nothing of the secret; the cache key, keyed
        by the store's key, still changes with it."""
        try:
            return step.get_code_hash(redact_secrets=True)[:16]
        except UncachableCodeError:
            return None

    def get_metadata(self, step: Step) -> dict[str, Any]:
        """Definition metadata: the step, its options, tags Dagster's asset tags refuse, source."""
        metadata: dict[str, Any] = {
            STEP_METADATA_KEY: step.name,
            CACHE_STRATEGY_METADATA_KEY: _describe_cache(step),
        }
        if step.pipelines:
            metadata[PIPELINES_METADATA_KEY] = ", ".join(step.pipelines)
        if step.retry:
            metadata[RETRY_METADATA_KEY] = step.retry_policy.model_dump(mode="json")
        if step.timeout is not None:
            metadata[TIMEOUT_METADATA_KEY] = float(step.timeout)
        if step.requirements is not None:
            metadata[RESOURCES_METADATA_KEY] = kubernetes.describe(step.requirements)
        if step.execution_group:
            metadata[EXECUTION_GROUP_METADATA_KEY] = step.execution_group
        loose = {k: v for k, v in step.tags.items() if not _strict_tag(k, v)}
        if loose:
            metadata[LOOSE_TAGS_METADATA_KEY] = dg.MetadataValue.json(loose)
        if step.source_file:
            metadata[_CODE_REFERENCES_KEY] = _code_reference(step)
        return metadata

    def get_output_metadata(self, step: Step, output_name: str, value: Any) -> dict[str, Any]:
        """Metadata recorded with each materialization, read off the value.

        Shapes of frames and arrays, the length of sequences, and the numbers of a dict of
        metrics (``{"accuracy": 0.97}`` → ``accuracy: 0.97``) when it is small enough to be one.
        """
        shape = getattr(value, "shape", None)
        if isinstance(shape, tuple) and all(isinstance(n, int) for n in shape):
            metadata: dict[str, Any] = {"rows": shape[0]} if shape else {}
            if len(shape) > 1:
                metadata["columns"] = shape[1]
            return metadata
        if isinstance(value, Mapping) and len(value) <= _MAX_METRICS:
            return {str(k): number for k, v in value.items() if (number := _metric(v)) is not None}
        if isinstance(value, Sequence) and not isinstance(value, str | bytes):
            return {"length": len(value)}
        return {}


def _metric(value: Any) -> float | None:
    """``value`` as a metric, or ``None`` when it is not a number a float can hold (``10**400``)."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return None
    try:
        return float(value)
    except OverflowError:
        return None


def _code_reference(step: Step) -> dg.CodeReferencesMetadataValue:
    """A link from the asset to the step's source; the API is beta, its warning is noise here."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.BetaWarning)
        return dg.CodeReferencesMetadataValue(
            code_references=[
                dg.LocalFileCodeReference(
                    file_path=step.source_file or "",
                    line_number=step.source_line,
                    label=step.name,
                )
            ]
        )


def _strict_tag(key: str, value: str) -> bool:
    return is_valid_tag_key(key) and is_valid_strict_tag_value(value)


def _describe_cache(step: Step) -> str:
    strategy = step.cache_strategy
    if strategy is None:
        return "off"
    return strategy if isinstance(strategy, str) else f"callable {json.dumps(repr(strategy))}"
