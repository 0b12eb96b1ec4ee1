"""flowyml's core: steps, pipelines, context, resources and the step-execution core."""

from flowyml.core.context import Context, context
from flowyml.core.pipeline import Pipeline
from flowyml.core.step import Step, step

__all__ = ["Context", "Pipeline", "Step", "context", "step"]
