"""An object-store cache whose server stops answering costs a run a bounded wait, never the run:
each read or write gives up within ``S3_DEAD_SERVER_SECONDS`` and is a miss, or an entry not
written, with a warning; a read of an entry the server sends too slowly gives up within that
bound plus the entry's size at the slowest rate worth waiting for.

The silent server is a real socket on 127.0.0.1 that listens and never accepts: the kernel
completes every TCP handshake (up to the backlog) and takes the request bytes, and no answer ever
comes, as from a server whose process hangs. The trickling one answers, a byte at a time. Before
the bounds, one request to the silent server could wait 5 s3fs retries x 5 botocore attempts x
the read timeout, and a trickled read had no bound at all.

The read timeout is set to 2 s here (the bound follows from it, ``S3_ATTEMPTS`` x the timeout
plus botocore's backoff), so the test shows the mechanism in seconds rather than the ~48 s a
silent server costs with the shipped 15 s.
"""

from __future__ import annotations

import logging
import pickle
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path

import pytest

from flowyml.core import object_cache_store
from flowyml.core.object_cache_store import S3_ATTEMPTS, ObjectCacheStore

SECRET = b"a-test-secret-of-more-than-thirty-two-characters"
# Allowance above the bound for a loaded, shared machine (scheduling, botocore's own work).
SLACK_SECONDS = 20.0
READ_TIMEOUT_SECONDS = 2
DEAD_SERVER_SECONDS = S3_ATTEMPTS * READ_TIMEOUT_SECONDS + 3
# The trickling server's objects, and its pace: one byte per half second, within the read timeout
# (the 88-byte header alone would take 44 s).
TRICKLED_SIZE = 4096
TRICKLE_SECONDS = 0.5
MIN_RATE = object_cache_store._MIN_TRANSFER_BYTES_PER_SECOND


def point_aws_at(endpoint: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The test's AWS variables point at ``endpoint`` (no profile or config file of the user's),
    with the short read timeout of the module docstring."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "flowyml-test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "flowyml-test-secret")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", endpoint)
    monkeypatch.setattr(object_cache_store, "S3_READ_TIMEOUT_SECONDS", READ_TIMEOUT_SECONDS)
    monkeypatch.setattr(object_cache_store, "S3_DEAD_SERVER_SECONDS", DEAD_SERVER_SECONDS)


@pytest.fixture
def silent_endpoint(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[str]:
    """An S3 endpoint that takes connections and requests and never answers."""
    with socket.create_server(("127.0.0.1", 0), backlog=128) as listener:
        endpoint = f"http://127.0.0.1:{listener.getsockname()[1]}"
        point_aws_at(endpoint, monkeypatch, tmp_path)
        yield endpoint


@pytest.fixture
def trickling_endpoint(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[str]:
    """An S3 endpoint that says every object exists (``TRICKLED_SIZE`` bytes) and sends an
    object's bytes one at a time, each well within the read timeout, so no read ever times out.
    """
    stop = threading.Event()

    def answer(connection: socket.socket) -> None:
        with connection, suppress(OSError):
            while not stop.is_set():
                request = b""
                while b"\r\n\r\n" not in request:
                    received = connection.recv(65536)
                    if not received:
                        return
                    request += received
                head = request.startswith(b"HEAD ")
                status = b"200 OK" if head else b"206 Partial Content"
                connection.sendall(
                    b'HTTP/1.1 %s\r\nContent-Length: %d\r\nETag: "e"\r\n'
                    b"Content-Range: bytes 0-%d/%d\r\n\r\n"
                    % (status, TRICKLED_SIZE, TRICKLED_SIZE - 1, TRICKLED_SIZE)
                )
                if not head:
                    while not stop.wait(TRICKLE_SECONDS):
                        connection.sendall(b"F")

    def serve(listener: socket.socket) -> None:
        with suppress(OSError):  # the listener closed: the test is over
            while True:
                connection, _ = listener.accept()
                threading.Thread(target=answer, args=(connection,), daemon=True).start()

    with socket.create_server(("127.0.0.1", 0), backlog=128) as listener:
        threading.Thread(target=serve, args=(listener,), daemon=True).start()
        endpoint = f"http://127.0.0.1:{listener.getsockname()[1]}"
        point_aws_at(endpoint, monkeypatch, tmp_path)
        yield endpoint
        stop.set()


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


def test_a_server_that_trickles_an_entry_fails_the_read_within_the_bound(
    trickling_endpoint: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="flowyml")
    store = ObjectCacheStore("s3://flowyml-tests/trickling", SECRET)

    started = time.monotonic()
    assert store.get("step:abc") == (False, None)
    took = time.monotonic() - started

    assert "treated as a miss" in caplog.text
    assert took <= DEAD_SERVER_SECONDS + TRICKLED_SIZE / MIN_RATE + SLACK_SECONDS
