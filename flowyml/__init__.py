"""flowyml: write ML pipelines as decorated Python functions; run them anywhere.

``import flowyml`` never imports Dagster: the plain runner needs nothing but this package, and the
Dagster translation lives in ``flowyml_dagster``. Nor does it import pydantic: the resource and
retry models below are imported when first used (the first ``@step`` makes a retry policy), so a
program that only imports flowyml starts fast (``bench/import_time.py``).
"""

from typing import TYPE_CHECKING, Any

from flowyml.core.cache_store import CacheStore
from flowyml.core.context import Context, context
from flowyml.core.errors import (
    CacheLocationError,
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
from flowyml.core.results import ErrorInfo, PipelineResult, StepResult
from flowyml.core.step import Step, StepRegistry, clear_step_registry, get_registered_steps, step

if TYPE_CHECKING:
    from flowyml.core.resources import GPUConfig, NodeAffinity, ResourceRequirements
    from flowyml.core.retry import Backoff, Jitter, RetryPolicy

# Public names whose modules import pydantic: loaded on first access (PEP 562).
_LAZY = {
    "GPUConfig": "flowyml.core.resources",
    "NodeAffinity": "flowyml.core.resources",
    "ResourceRequirements": "flowyml.core.resources",
    "Backoff": "flowyml.core.retry",
    "Jitter": "flowyml.core.retry",
    "RetryPolicy": "flowyml.core.retry",
}

__all__ = [
    "Backoff",
    "CacheLocationError",
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


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(module), name)
    globals()[name] = value  # later reads skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
