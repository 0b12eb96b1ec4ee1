"""A flowyml 2.x program: reading run results, a failing step, and retries.

A run returns a result whatever happens: ``success``, outputs by asset name, and per step
``success``, ``cached``, ``duration_seconds`` and ``error`` (read as text). A step with
``retry=`` that fails once then succeeds makes the run succeed; one that keeps failing fails it.
Attempts are counted in files of the working directory.
"""

from pathlib import Path

from flowyml import Pipeline, step

FLAKY_ATTEMPTS = Path("flaky_attempts.txt")
BROKEN_ATTEMPTS = Path("broken_attempts.txt")


def bump(counter):
    attempts = int(counter.read_text()) + 1 if counter.exists() else 1
    counter.write_text(str(attempts))
    return attempts


@step(outputs=["numbers"])
def numbers():
    return [3, 1, 2]


@step(inputs=["numbers"], outputs=["sorted_numbers"])
def sort_numbers(values):
    return sorted(values)


@step(inputs=["sorted_numbers"], outputs=["checked"])
def verify_checksum(values):
    raise ValueError(f"checksum mismatch in batch 7 ({len(values)} values)")


@step(outputs=["payload"], retry=2)
def flaky_fetch():
    attempt = bump(FLAKY_ATTEMPTS)
    if attempt == 1:
        raise ConnectionError("transient network glitch")
    return {"attempt": attempt, "rows": 42}


@step(inputs=["payload"], outputs=["row_count"])
def count_rows(payload):
    return payload["rows"]


@step(outputs=["never"], retry=1)
def broken_fetch():
    bump(BROKEN_ATTEMPTS)
    raise RuntimeError("upstream service still down")


def check_success():
    pipeline = Pipeline("results_ok")
    pipeline.add_step(numbers).add_step(sort_numbers)
    result = pipeline.run(auto_start_ui=False)
    assert result.success
    assert result["numbers"] == [3, 1, 2]
    assert result["sorted_numbers"] == [1, 2, 3]
    for name in ("numbers", "sort_numbers"):
        step_result = result.step_results[name]
        assert step_result.success, name
        assert not step_result.cached, name
        assert isinstance(step_result.duration_seconds, float), name
        assert step_result.duration_seconds >= 0, name
        assert step_result.error is None, name


def check_failure():
    pipeline = Pipeline("results_failing")
    pipeline.add_step(numbers).add_step(sort_numbers).add_step(verify_checksum)
    result = pipeline.run(auto_start_ui=False)  # a failing step does not raise
    assert not result.success
    assert result.step_results["numbers"].success
    assert result.step_results["sort_numbers"].success
    assert result["sorted_numbers"] == [1, 2, 3]
    failed = result.step_results["verify_checksum"]
    assert not failed.success
    assert not failed.cached
    assert failed.duration_seconds >= 0
    assert isinstance(failed.error, str)
    assert "checksum mismatch in batch 7 (3 values)" in failed.error
    assert "valueerror" in failed.error.lower()


def check_retries():
    pipeline = Pipeline("results_retry")
    pipeline.add_step(flaky_fetch).add_step(count_rows)
    result = pipeline.run(auto_start_ui=False)
    assert result.success
    assert result.step_results["flaky_fetch"].success
    assert result.step_results["flaky_fetch"].error is None
    assert result["payload"] == {"attempt": 2, "rows": 42}
    assert result["row_count"] == 42
    assert FLAKY_ATTEMPTS.read_text() == "2"  # failed once, succeeded on the first retry

    pipeline = Pipeline("results_retry_exhausted")
    pipeline.add_step(broken_fetch)
    result = pipeline.run(auto_start_ui=False)
    assert not result.success
    failed = result.step_results["broken_fetch"]
    assert not failed.success
    assert "upstream service still down" in failed.error
    assert "runtimeerror" in failed.error.lower()
    assert BROKEN_ATTEMPTS.read_text() == "2"  # the first attempt and one retry


def main():
    check_success()
    check_failure()
    check_retries()
    print("OK")


if __name__ == "__main__":
    main()
