"""Retries: how many attempts a step gets, how they are counted, and the waits between them."""

from __future__ import annotations

import random
import time

import pytest
from core_support import CallLog

from flowyml import Backoff, Jitter, Pipeline, RetryPolicy, StepStatus, step


def test_an_int_retry_is_a_policy_with_that_many_retries_and_no_delay() -> None:
    @step(retry=3)
    def flaky() -> None:
        return None

    assert flaky.retry == 3
    assert flaky.retry_policy == RetryPolicy(max_retries=3)
    assert flaky.retry_policy.max_attempts == 4
    assert flaky.retry_policy.delay_before_retry(1) == 0.0


def test_a_dict_retry_becomes_a_policy_with_delay_backoff_and_jitter() -> None:
    @step(retry={"max_retries": 2, "delay": 1.5, "backoff": "exponential", "jitter": "full"})
    def flaky() -> None:
        return None

    assert flaky.retry == 2
    assert flaky.retry_policy == RetryPolicy(
        max_retries=2, delay=1.5, backoff=Backoff.EXPONENTIAL, jitter=Jitter.FULL
    )


def test_a_constant_backoff_waits_the_same_delay_before_every_retry() -> None:
    policy = RetryPolicy(max_retries=3, delay=2.0)

    assert [policy.delay_before_retry(n) for n in (1, 2, 3)] == [2.0, 2.0, 2.0]


def test_a_linear_backoff_grows_the_delay_by_the_retry_number() -> None:
    policy = RetryPolicy(max_retries=3, delay=2.0, backoff=Backoff.LINEAR)

    assert [policy.delay_before_retry(n) for n in (1, 2, 3)] == [2.0, 4.0, 6.0]


def test_an_exponential_backoff_waits_as_dagster_does() -> None:
    policy = RetryPolicy(max_retries=4, delay=0.5, backoff=Backoff.EXPONENTIAL)

    assert [policy.delay_before_retry(n) for n in (1, 2, 3, 4)] == [0.5, 1.5, 3.5, 7.5]


def test_every_backoff_and_jitter_waits_what_dagsters_retry_policy_computes() -> None:
    import dagster as dg

    for backoff, dagster_backoff in (
        (Backoff.CONSTANT, None),
        (Backoff.LINEAR, dg.Backoff.LINEAR),
        (Backoff.EXPONENTIAL, dg.Backoff.EXPONENTIAL),
    ):
        for jitter, dagster_jitter in (
            (Jitter.NONE, None),
            (Jitter.FULL, dg.Jitter.FULL),
            (Jitter.PLUS_MINUS, dg.Jitter.PLUS_MINUS),
        ):
            ours = RetryPolicy(max_retries=3, delay=1.5, backoff=backoff, jitter=jitter)
            theirs = dg.RetryPolicy(
                max_retries=3, delay=1.5, backoff=dagster_backoff, jitter=dagster_jitter
            )
            for n in (1, 2, 3):
                random.seed(n)
                expected = theirs.calculate_delay(n)
                assert ours.delay_before_retry(n, random.Random(n)) == pytest.approx(expected)


def test_full_jitter_draws_each_delay_between_zero_and_the_delay() -> None:
    policy = RetryPolicy(max_retries=1, delay=2.0, jitter=Jitter.FULL)
    rng = random.Random(7)
    draws = [policy.delay_before_retry(1, rng) for _ in range(500)]

    assert all(0.0 <= d <= 2.0 for d in draws)
    assert min(draws) < 0.5 and max(draws) > 1.5  # spread over the whole range
    assert policy.delay_before_retry(1, random.Random(7)) == 2.0 * random.Random(7).random()


def test_plus_minus_jitter_moves_each_delay_by_up_to_the_base_delay() -> None:
    policy = RetryPolicy(max_retries=1, delay=2.0, jitter=Jitter.PLUS_MINUS)
    rng = random.Random(11)
    draws = [policy.delay_before_retry(1, rng) for _ in range(500)]

    assert all(0.0 <= d <= 4.0 for d in draws)
    assert min(draws) < 0.5 and max(draws) > 3.5


def test_retry_numbers_start_at_one() -> None:
    with pytest.raises(ValueError, match="starts at 1"):
        RetryPolicy(max_retries=1).delay_before_retry(0)


def test_a_step_failing_twice_then_succeeding_with_two_retries_succeeds(calls: CallLog) -> None:
    @step(outputs=["value"], retry=2)
    def flaky() -> str:
        calls.record("flaky")
        if calls.count("flaky") < 3:
            raise ConnectionError("service unavailable")
        return "ok"

    result = Pipeline("retrying").add_step(flaky).run()

    assert result.success
    assert result["value"] == "ok"
    assert result.step_results["flaky"].retries == 2
    assert result.step_results["flaky"].status is StepStatus.SUCCESS
    assert calls.count("flaky") == 3


def test_a_step_that_keeps_failing_fails_after_its_retries(calls: CallLog) -> None:
    @step(retry=2)
    def broken() -> None:
        calls.record("broken")
        raise ConnectionError("service unavailable")

    result = Pipeline("retrying").add_step(broken).run()

    assert not result.success
    outcome = result.step_results["broken"]
    assert outcome.status is StepStatus.FAILED
    assert outcome.retries == 2
    assert calls.count("broken") == 3
    assert outcome.error is not None and "service unavailable" in outcome.error.message


def test_a_step_without_retries_is_attempted_once(calls: CallLog) -> None:
    @step
    def broken() -> None:
        calls.record("broken")
        raise ConnectionError("service unavailable")

    result = Pipeline("retrying").add_step(broken).run()

    assert result.step_results["broken"].retries == 0
    assert calls.count("broken") == 1


def test_the_runner_waits_the_policy_delay_between_attempts() -> None:
    stamps: list[float] = []

    @step(retry=RetryPolicy(max_retries=1, delay=0.3))
    def flaky() -> None:
        stamps.append(time.monotonic())
        if len(stamps) == 1:
            raise ConnectionError("first attempt fails")

    result = Pipeline("retrying").add_step(flaky).run()

    assert result.success
    assert len(stamps) == 2
    assert stamps[1] - stamps[0] >= 0.3
