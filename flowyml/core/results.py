"""What a run returns: per-step results and the pipeline's outputs, whatever ran it.

The plain runner and ``flowyml_dagster.run`` both return these, so code that reads a result does
not care which orchestrator produced it.
"""

from __future__ import annotations

import traceback
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from flowyml.core.execution import StepStatus


@dataclass(frozen=True)
class ErrorInfo:
    """Why a step failed: the exception's type and message, and the full traceback text."""

    type: str
    message: str
    traceback: str

    @classmethod
    def from_exception(cls, exc: BaseException) -> ErrorInfo:
        return cls(
            type=type(exc).__qualname__,
            message=str(exc),
            traceback="".join(traceback.format_exception(exc)),
        )

    def __str__(self) -> str:
        return f"{self.type}: {self.message}"


@dataclass(frozen=True)
class StepResult:
    """How one step ended in a run."""

    step_name: str
    status: StepStatus
    outputs: Mapping[str, Any] = field(default_factory=dict)
    error: ErrorInfo | None = None
    cached: bool = False
    retries: int = 0
    duration_seconds: float = 0.0
    cache_key: str | None = None
    reason: str | None = None

    @property
    def success(self) -> bool:
        """True when the step produced its outputs (computed or from the cache)."""
        return self.status is StepStatus.SUCCESS

    @property
    def skipped(self) -> bool:
        """True when the step did not run: its condition was false, or an upstream one was."""
        return self.status is StepStatus.SKIPPED

    @property
    def attempts(self) -> int:
        return self.retries + 1 if self.status in (StepStatus.SUCCESS, StepStatus.FAILED) else 0

    @property
    def output(self) -> Any:
        """The value the step returned: its single output, all outputs by name, or ``None``."""
        if len(self.outputs) == 1:
            return next(iter(self.outputs.values()))
        return dict(self.outputs) if self.outputs else None


@dataclass(frozen=True)
class PipelineResult:
    """A finished run: ``result["model/trained"]`` reads an output by name."""

    pipeline_name: str
    run_id: str
    step_results: Mapping[str, StepResult]
    outputs: Mapping[str, Any]
    duration_seconds: float = 0.0

    @property
    def success(self) -> bool:
        return not any(r.status is StepStatus.FAILED for r in self.step_results.values())

    @property
    def state(self) -> str:
        return "completed" if self.success else "failed"

    @property
    def failed_steps(self) -> list[str]:
        return [n for n, r in self.step_results.items() if r.status is StepStatus.FAILED]

    def __getitem__(self, name: str) -> Any:
        try:
            return self.outputs[name]
        except KeyError:
            not_run = [n for n, r in self.step_results.items() if not r.success]
            raise KeyError(
                f"no output '{name}' in this run; steps that produced nothing: {not_run}"
            ) from None

    def __contains__(self, name: object) -> bool:
        return name in self.outputs
