"""An object-store cache whose server stops answering costs a run a bounded wait, never the run:
each read or write gives up within ``S3_DEAD_SERVER_SECONDS`` and is a miss, or an entry not
written, with a warning.

The server is a real socket on 127.0.0.1 that listens and never accepts: the kernel completes
every TCP handshake (up to the backlog) and takes the request bytes, and no answer ever comes,
as from a server whose process hangs. Before the bounds, one such request could wait 5 s3fs
retries x 5 botocore attempts x the read timeout.

The read timeout is set to 2 s here (the bound follows from it, ``S3_ATTEMPTS`` x the timeout
plus botocore's backoff), so the test shows the mechanism in seconds rather than the ~48 s a
silent server costs with the shipped 15 s.
"""

from __future__ import annotations

import logging
import pickle
import socket
import time
from collections.abc import Iterator

import pytest

from flowyml.core import object_cache_store
from flowyml.core.object_cache_store import S3_ATTEMPTS, ObjectCacheStore

SECRET = b"a-test-secret-of-more-than-thirty-two-characters"
# Allowance above the bound for a loaded, shared machine (scheduling, botocore's own work).
SLACK_SECONDS = 20.0
READ_TIMEOUT_SECONDS = 2
DEAD_SERVER_SECONDS = S3_ATTEMPTS * READ_TIMEOUT_SECONDS + 3


@pytest.fixture
def silent_endpoint(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> Iterator[str]:
    """An S3 endpoint that takes connections and requests and never answers; the test's AWS
    variables point at it (no profile or config file of the user's)."""
    with socket.create_server(("127.0.0.1", 0), backlog=128) as listener:
        endpoint = f"http://127.0.0.1:{listener.getsockname()[1]}"
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("AWS_CONFIG_FILE", f"{tmp_path}/no-aws-config")
        monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", f"{tmp_path}/no-aws-config")
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "flowyml-test")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "flowyml-test-secret")
        monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
        monkeypatch.setenv("AWS_ENDPOINT_URL_S3", endpoint)
        monkeypatch.setattr(object_cache_store, "S3_READ_TIMEOUT_SECONDS", READ_TIMEOUT_SECONDS)
        monkeypatch.setattr(object_cache_store, "S3_DEAD_SERVER_SECONDS", DEAD_SERVER_SECONDS)
        yield endpoint


@pytest.mark.parametrize("operation", ["put", "get"])
def test_a_server_that_never_answers_fails_the_cache_operation_within_the_bound(
    silent_endpoint: str, operation: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="flowyml")
    store = ObjectCacheStore("s3://flowyml-tests/silent", SECRET)

    started = time.monotonic()
    if operation == "put":
        assert store.put("step:abc", pickle.dumps({"value": 42})) is False
        assert "result not cached" in caplog.text
    else:
        assert store.get("step:abc") == (False, None)
        assert "treated as a miss" in caplog.text
    took = time.monotonic() - started

    assert took <= DEAD_SERVER_SECONDS + SLACK_SECONDS
