"""A real PostgreSQL server for the tests: Debian's binaries, one server per test session in a
temporary directory on a free loopback port, one fresh database per test.

PostgreSQL refuses to run as root (CI runs as root): the server then runs as ``nobody``, which
owns its data directory. Shared by every test that needs a database (``postgres_dsn``).
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest

from tests.conftest import require_tool


def postgres_binary(name: str) -> str:
    """Debian keeps the server's binaries off PATH, in /usr/lib/postgresql/<major>/bin."""
    found = shutil.which(name)
    if found is not None:
        return found
    candidates = sorted(
        glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
    )
    return candidates[-1] if candidates else require_tool(name)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class PostgresServer:
    data_dir: Path
    port: int
    as_user: list[str]
    _names: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def dsn(self, database: str = "postgres") -> str:
        return f"host=127.0.0.1 port={self.port} user=postgres dbname={database}"

    def pg_ctl(self, *args: str) -> None:
        subprocess.run(
            [*self.as_user, postgres_binary("pg_ctl"), "-D", str(self.data_dir), *args],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=60,
        )

    durable: bool = False  # fsync on (benchmarks); tests trade it for speed

    def start(self) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories='' "
            "-c max_connections=200"
        )
        if not self.durable:
            options += " -c fsync=off -c full_page_writes=off"
        log = self.data_dir / "server.log"
        self.pg_ctl("start", "-w", "-t", "60", "-l", str(log), "-o", options)

    def stop(self) -> None:
        self.pg_ctl("stop", "-m", "immediate", "-w")

    def new_database(self) -> str:
        name = f"t{os.getpid()}_{next(self._names)}"
        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return name

    def drop_database(self, name: str) -> None:
        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def running_postgres(*, durable: bool = False) -> Iterator[PostgresServer]:
    """A fresh server in a temporary directory, stopped and removed on exit."""
    initdb = postgres_binary("initdb")
    root = Path(tempfile.mkdtemp(prefix="fluxwatch-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:  # the server refuses root; run it as an unprivileged user
        shutil.chown(root, "nobody")
        as_user = ["runuser", "-u", "nobody", "--"]
    data = root / "data"
    subprocess.run(
        [
            *as_user,
            initdb,
            "-D",
            str(data),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
        timeout=120,
    )
    server = PostgresServer(data, _free_port(), as_user, durable=durable)
    server.start()
    try:
        yield server
    finally:
        try:
            server.stop()
        finally:
            shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    with running_postgres() as server:
        yield server


@pytest.fixture
def postgres_dsn(postgres_server: PostgresServer) -> Iterator[str]:
    """A DSN of a fresh, empty database on the session's server."""
    name = postgres_server.new_database()
    try:
        yield postgres_server.dsn(name)
    finally:
        postgres_server.drop_database(name)
