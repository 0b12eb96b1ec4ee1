"""Exceptions raised by flowyml.

Every declaration error names the step (when there is one) and the field, so a user reading the
message knows what to change without opening a debugger. Exceptions keep their constructor
arguments in ``args`` so they survive pickling across a process boundary.
"""

from __future__ import annotations


class FlowymlError(Exception):
    """Base class of every error flowyml raises on purpose."""


class StepDefinitionError(FlowymlError, ValueError):
    """A ``@step`` declaration is invalid; raised at decoration time."""

    def __init__(self, step: str, field: str, problem: str) -> None:
        super().__init__(step, field, problem)
        self.step, self.field, self.problem = step, field, problem

    def __str__(self) -> str:
        return f"step '{self.step}': {self.field}: {self.problem}"


class PipelineDefinitionError(FlowymlError, ValueError):
    """A pipeline's graph is invalid (cycle, clash, missing value); raised at build time."""


class MissingPipelineInputError(PipelineDefinitionError):
    """A pipeline input needed by a step was not given to ``run(inputs=...)``."""


class StepExecutionError(FlowymlError):
    """A step failed while running for a reason of flowyml's own (not the user's exception)."""

    def __init__(self, step: str, message: str) -> None:
        super().__init__(step, message)
        self.step, self.message = step, message

    def __str__(self) -> str:
        return f"step '{self.step}': {self.message}"


class StepTimeoutError(StepExecutionError):
    """A step ran past its ``timeout`` and was killed."""

    def __init__(self, step: str, timeout: float) -> None:
        super().__init__(step, f"exceeded its timeout of {timeout:g}s and was killed")
        self.args = (step, timeout)
        self.timeout = timeout


class StepCrashedError(StepExecutionError):
    """A step's child process died without returning a result (``os._exit``, a signal, OOM)."""


class StepOutputError(StepExecutionError):
    """A step's return value does not match its declared ``outputs``, or cannot be pickled."""


class StepParamError(StepExecutionError):
    """A param's value does not fit its annotation; it would not fit on another attempt either."""


def exception_text(exc: BaseException) -> str:
    """``str(exc)``, or a stand-in when the exception's ``__str__`` raises or returns a non-string:
    a user's odd exception must cost its step, never the run that reports it."""
    try:
        text = str(exc)
    except Exception as problem:
        return f"<str() of the exception raised {type(problem).__name__}>"
    return text


class CacheLocationError(FlowymlError, ValueError):
    """A cache location flowyml cannot use safely (an unknown or uninstalled protocol, a URL with
    credentials in it, a remote cache without ``FLOWYML_CACHE_SECRET``); raised when the pipeline
    or the Dagster resource is built, so a typo never becomes a local folder named ``s3:``."""


class CacheEntryError(FlowymlError):
    """A cache entry a run holds open (its outputs let go of, to be loaded again) no longer
    verifies: the outputs it held are lost to this run, and the step that needed them fails."""
