"""A Redis server for a test session: Celery's broker and result backend.

Nothing is persisted (no RDB snapshot, no append-only file): a broker that outlived its session
would hand the next session's workers stale tasks.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from e2e.e2e_support import (
    READY_TIMEOUT,
    ServerProcess,
    free_port,
    start_server,
    stopped_cleanly,
    wait_until,
)

from servers.binaries import require_binary
from servers.environment import server_environment

DEBIAN_PACKAGE = "redis-server"


@dataclass(frozen=True)
class RedisServer:
    server: ServerProcess
    port: int

    def url(self, db: int = 0) -> str:
        """``redis://`` URL of database ``db`` (the broker and the results keep apart by db)."""
        return f"redis://127.0.0.1:{self.port}/{db}"


def answers_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2.0) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@contextlib.contextmanager
def redis_server(root: Path, *, name: str = "redis") -> Iterator[RedisServer]:
    """``redis-server`` on a free port of 127.0.0.1, its working directory ``root``."""
    binary = require_binary("redis-server", DEBIAN_PACKAGE)
    root.mkdir(parents=True, exist_ok=True)
    port = free_port()
    argv = [
        binary,
        "--bind", "127.0.0.1",
        "--port", str(port),
        "--dir", str(root),
        "--save", "",
        "--appendonly", "no",
    ]  # fmt: skip
    server = start_server(name, argv, env=server_environment(), cwd=root, port=port)
    with stopped_cleanly(server):

        def ready() -> bool | None:
            server.check_running()
            return True if answers_ping(port) else None

        wait_until(ready, timeout=READY_TIMEOUT, what=f"redis on port {port}")
        yield RedisServer(server, port)
