"""flowyml: write ML pipelines as decorated Python functions; run them anywhere.

``import flowyml`` never imports Dagster: the plain runner needs nothing but this package, and the
Dagster translation lives in ``flowyml_dagster``.
"""

from flowyml.core.cache_store import CacheStore
from flowyml.core.context import Context, context
from flowyml.core.errors import (
    FlowymlError,
    MissingPipelineInputError,
    PipelineDefinitionError,
    StepCrashedError,
    StepDefinitionError,
    StepExecutionError,
    StepOutputError,
    StepTimeoutError,
)
from flowyml.core.execution import StepStatus
from flowyml.core.pipeline import Pipeline
from flowyml.core.resources import GPUConfig, NodeAffinity, ResourceRequirements
from flowyml.core.results import ErrorInfo, PipelineResult, StepResult
from flowyml.core.retry import Backoff, Jitter, RetryPolicy
from flowyml.core.step import Step, StepRegistry, clear_step_registry, get_registered_steps, step

__all__ = [
    "Backoff",
    "CacheStore",
    "Context",
    "ErrorInfo",
    "FlowymlError",
    "GPUConfig",
    "Jitter",
    "MissingPipelineInputError",
    "NodeAffinity",
    "Pipeline",
    "PipelineDefinitionError",
    "PipelineResult",
    "ResourceRequirements",
    "RetryPolicy",
    "Step",
    "StepCrashedError",
    "StepDefinitionError",
    "StepExecutionError",
    "StepOutputError",
    "StepRegistry",
    "StepResult",
    "StepStatus",
    "StepTimeoutError",
    "clear_step_registry",
    "context",
    "get_registered_steps",
    "step",
]
