"""Retry policy of a step: how many more attempts, and how long to wait between them."""

from __future__ import annotations

import random
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class Backoff(StrEnum):
    """How the delay grows from one retry to the next."""

    CONSTANT = "constant"
    LINEAR = "linear"
    EXPONENTIAL = "exponential"


class Jitter(StrEnum):
    """Randomness added to each delay, so retrying workers don't hit a service in lockstep."""

    NONE = "none"
    FULL = "full"
    PLUS_MINUS = "plus_minus"


class RetryPolicy(BaseModel):
    """Up to ``max_retries`` more attempts after a failure.

    The default delay is zero, so a plain ``retry=3`` never makes a run (or a test) sleep.
    ``delay`` is the wait before the first retry in seconds; ``backoff`` grows it (retry ``n``
    waits ``delay``, ``n * delay`` or ``(2**n - 1) * delay``), and ``jitter`` spreads it:
    ``full`` picks uniformly in ``[0, d]``, ``plus_minus`` adds up to ``delay`` either way. These
    are Dagster's own formulas: on Dagster the same values become a ``dagster.RetryPolicy``, so a
    step waits alike on both runners.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_retries: int = Field(default=0, ge=0, strict=True)
    delay: float = Field(default=0.0, ge=0)
    backoff: Backoff = Backoff.CONSTANT
    jitter: Jitter = Jitter.NONE

    @property
    def max_attempts(self) -> int:
        return self.max_retries + 1

    def delay_before_retry(self, retry_number: int, rng: random.Random | None = None) -> float:
        """Seconds to wait before retry ``retry_number`` (1 for the first retry)."""
        if retry_number < 1:
            raise ValueError(f"retry_number starts at 1, got {retry_number}")
        growth = {
            Backoff.CONSTANT: 1,
            Backoff.LINEAR: retry_number,
            Backoff.EXPONENTIAL: 2**retry_number - 1,
        }[self.backoff]
        delay = self.delay * growth
        draw = (rng or random).random()
        if self.jitter is Jitter.FULL:
            delay *= draw
        elif self.jitter is Jitter.PLUS_MINUS:
            delay += (2 * draw - 1) * self.delay
        return delay
