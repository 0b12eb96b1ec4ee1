"""What a run returns: per-step results and the pipeline's outputs, whatever ran it.

The plain runner and ``flowyml_dagster.run`` both return these, so code that reads a result does
not care which orchestrator produced it.
"""

from __future__ import annotations

import traceback
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from flowyml.core.errors import exception_text
from flowyml.core.execution import StepStatus


class ErrorInfo(str):
    """Why a step failed: reads as ``"<type>: <message>"`` and keeps the parts apart.

    A ``str`` because flowyml 2.x programs treat ``StepResult.error`` as one
    (``"timeout" in r.error``, ``r.error.lower()``); the exception's type name, message and full
    traceback text stay readable as attributes.
    """

    __slots__ = ("message", "traceback", "type")

    type: str
    message: str
    traceback: str

    def __new__(cls, type: str, message: str, traceback: str) -> ErrorInfo:
        text = super().__new__(cls, f"{type}: {message}" if message else type)
        for name, value in (("type", type), ("message", message), ("traceback", traceback)):
            object.__setattr__(text, name, value)
        return text

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("ErrorInfo is read-only")

    @classmethod
    def from_exception(cls, exc: BaseException) -> ErrorInfo:
        """The error of ``exc``, even when its ``__str__`` raises or returns a non-string."""
        try:
            text = "".join(traceback.format_exception(exc))
        except Exception as problem:
            text = f"(traceback unavailable: {type(problem).__name__})"
        return cls(type=type(exc).__qualname__, message=exception_text(exc), traceback=text)

    def __reduce__(self) -> tuple[Any, ...]:
        return (ErrorInfo, (self.type, self.message, self.traceback))

    def __repr__(self) -> str:
        return f"ErrorInfo(type={self.type!r}, message={self.message!r})"


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
    started_at: datetime | None = None

    @property
    def success(self) -> bool:
        return not any(r.status is StepStatus.FAILED for r in self.step_results.values())

    @property
    def state(self) -> str:
        return "completed" if self.success else "failed"

    @property
    def failed_steps(self) -> list[str]:
        return [n for n, r in self.step_results.items() if r.status is StepStatus.FAILED]

    def to_dict(self) -> dict[str, Any]:
        """The run as JSON-ready data: how each step ended, never the values it produced."""
        return {
            "run_id": self.run_id,
            "pipeline": self.pipeline_name,
            "status": self.state,
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "duration_seconds": round(self.duration_seconds, 6),
            "steps": {
                name: {
                    "status": r.status.value,
                    "duration_seconds": round(r.duration_seconds, 6),
                    "cached": r.cached,
                    "retries": r.retries,
                    "cache_key": r.cache_key,
                    "reason": r.reason,
                    "error": str(r.error) if r.error is not None else None,
                }
                for name, r in self.step_results.items()
            },
        }

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
