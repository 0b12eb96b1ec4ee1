"""A PostgreSQL server for a test session: a Dagster instance's runs, events and schedules.

``initdb`` refuses to run as root, so as root the cluster belongs to the ``postgres`` user
(Debian's package creates it): its directory is made outside pytest's temporary folders, whose
parents are root's alone, and handed to that user. The server listens on 127.0.0.1 only, with
``trust`` authentication (no password: nothing but this machine reaches it), its Unix socket in
its own directory, and durability off (``fsync``), since the cluster dies with the session.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg2
import pytest
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

DEBIAN_PACKAGE = "postgresql"
SERVER_USER = "postgres"  # the owner of the cluster when the tests run as root
SUPERUSER = "dagster"
DB_NAME = "dagster"
# Debian installs the server programs here, not on PATH.
PROGRAM_DIRS = tuple(sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True))


@dataclass(frozen=True)
class PostgresServer:
    server: ServerProcess
    port: int
    username: str = SUPERUSER
    db_name: str = DB_NAME

    def connect(self) -> Any:
        return psycopg2.connect(
            host="127.0.0.1", port=self.port, user=self.username, dbname=self.db_name
        )

    def dagster_storage(self) -> dict[str, Any]:
        """The ``storage:`` block of a ``dagster.yaml`` on this server.

        ``scheme`` names the driver: with SQLAlchemy 2.1 a bare ``postgresql`` means psycopg 3,
        which dagster-postgres does not install (it brings psycopg2).
        """
        return {
            "postgres": {
                "postgres_db": {
                    "username": self.username,
                    "hostname": "127.0.0.1",
                    "port": self.port,
                    "db_name": self.db_name,
                    "scheme": "postgresql+psycopg2",
                }
            }
        }


def _as_server_user() -> list[str]:
    """The prefix that runs a program as the cluster's owner: nothing unless we are root."""
    if os.geteuid() != 0:
        return []
    runuser = require_binary("runuser", "util-linux")
    try:
        pwd.getpwnam(SERVER_USER)
    except KeyError:
        pytest.fail(f"running as root, and there is no '{SERVER_USER}' user to own the cluster")
    return [runuser, "-u", SERVER_USER, "--"]


def _cluster_root() -> Path:
    root = Path(tempfile.mkdtemp(prefix="flowyml-postgres-"))
    if os.geteuid() == 0:
        user = pwd.getpwnam(SERVER_USER)
        os.chown(root, user.pw_uid, user.pw_gid)
    return root


def _accepts_connections(port: int) -> bool:
    try:
        psycopg2.connect(host="127.0.0.1", port=port, user=SUPERUSER, dbname="postgres").close()
    except psycopg2.OperationalError:
        return False
    return True


@contextlib.contextmanager
def postgres_server(*, name: str = "postgres") -> Iterator[PostgresServer]:
    """A new cluster with database ``dagster`` owned by superuser ``dagster``, on a free port."""
    initdb = require_binary("initdb", DEBIAN_PACKAGE, also_in=PROGRAM_DIRS)
    postgres = str(Path(initdb).with_name("postgres"))
    prefix = _as_server_user()
    root = _cluster_root()
    try:
        data = root / "data"
        subprocess.run(
            [*prefix, initdb, "-D", str(data), "-U", SUPERUSER, "-A", "trust", "-E", "UTF8",
             "--no-sync", "--no-instructions"],
            check=True, capture_output=True, cwd=root, env=server_environment(),
        )  # fmt: skip
        port = free_port()
        argv = [
            *prefix, postgres, "-D", str(data),
            "-h", "127.0.0.1", "-p", str(port), "-k", str(root),
            "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
            "-c", "max_connections=200",
        ]  # fmt: skip
        server = start_server(name, argv, env=server_environment(), cwd=root, port=port)
        with stopped_cleanly(server):

            def ready() -> bool | None:
                server.check_running()
                return True if _accepts_connections(port) else None

            wait_until(ready, timeout=READY_TIMEOUT, what=f"postgres on port {port}")
            admin = psycopg2.connect(host="127.0.0.1", port=port, user=SUPERUSER, dbname="postgres")
            admin.autocommit = True  # CREATE DATABASE refuses to run in a transaction
            try:
                with admin.cursor() as cursor:
                    cursor.execute(f"CREATE DATABASE {DB_NAME}")
            finally:
                admin.close()
            yield PostgresServer(server, port)
    finally:
        shutil.rmtree(root, ignore_errors=True)
