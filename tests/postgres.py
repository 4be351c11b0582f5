"""A real PostgreSQL for tests: Debian's ``postgresql`` binaries, ``initdb`` in a temporary folder,
``postgres`` on a free 127.0.0.1 port, as the ``postgres`` system user (PostgreSQL refuses to
run as root), password authentication over TCP only.  Session-scoped; each test gets a database
of its own (``new_database()``), so tests never see each other's rows.

Fixtures (registered through ``pytest_plugins`` in ``tests/conftest.py``):

* ``postgres_server``: the running server (``url(name)``, ``new_database()``, ``password``);
* ``state_location``: parametrised over both databases, an SQLite path or a fresh PostgreSQL URL,
  what every store takes (``JobQueue(state_location)``): the store tests run on both.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import pytest

from tests.servers import LOOPBACK, START_TIMEOUT, _Daemon, free_port

USER = "publisher"
_databases = itertools.count(1)


def postgres_bin() -> Path | None:
    """The directory of Debian's server binaries (``/usr/lib/postgresql/<major>/bin``), newest major."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"), key=lambda p: int(Path(p).parts[-3]))
    return Path(found[-1]).parent if found else None


def _as_postgres_user() -> list[str]:
    """Prefix that runs a command as the ``postgres`` system user when we are root (``setpriv``
    execs it directly: no extra process between us and the server)."""
    if os.geteuid() != 0:
        return []
    entry = pwd.getpwnam("postgres")
    return ["setpriv", f"--reuid={entry.pw_uid}", f"--regid={entry.pw_gid}", "--init-groups", "--"]


@dataclass
class PostgresServer:
    directory: Path
    port: int
    password: str
    daemon: _Daemon | None = None
    names: list[str] = field(default_factory=list)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{USER}:{self.password}@{LOOPBACK}:{self.port}/{database}"

    def ready(self) -> bool:
        import psycopg
        try:
            with psycopg.connect(self.url(), connect_timeout=2):
                return True
        except psycopg.OperationalError:
            return False

    def admin(self, sql: str) -> None:
        import psycopg
        with psycopg.connect(self.url(), autocommit=True) as connection:
            connection.execute(sql)

    def new_database(self, prefix: str = "t") -> str:
        """A new empty database; its URL."""
        name = f"{prefix}_{os.getpid()}_{next(_databases)}"
        self.admin(f"CREATE DATABASE {name}")
        self.names.append(name)
        return self.url(name)

    def start(self) -> None:
        self.daemon.start()
        deadline = time.monotonic() + START_TIMEOUT
        while not self.ready():
            self.daemon.check_alive("postgres")
            if time.monotonic() > deadline:
                raise RuntimeError(f"postgres did not answer within {START_TIMEOUT:.0f} s; log: {self.daemon.log}")
            time.sleep(0.1)

    def stop(self) -> None:
        self.daemon.stop()


def start_postgres(directory: Path) -> PostgresServer:
    """initdb + postgres in ``directory`` (made readable for the ``postgres`` user)."""
    binaries = postgres_bin()
    if binaries is None:
        raise RuntimeError("PostgreSQL server binaries not found (Debian package postgresql)")
    directory.mkdir(parents=True, exist_ok=True)
    server = PostgresServer(directory, free_port(), secrets.token_urlsafe(18))
    password_file = directory / "password"
    password_file.write_text(server.password + "\n")
    data = directory / "data"
    if os.geteuid() == 0:
        entry = pwd.getpwnam("postgres")
        os.chown(directory, entry.pw_uid, entry.pw_gid)
        os.chown(password_file, entry.pw_uid, entry.pw_gid)
    os.chmod(password_file, 0o600)
    subprocess.run(_as_postgres_user() + [str(binaries / "initdb"), "-D", str(data), "-U", USER,
                                          f"--pwfile={password_file}", "--auth=scram-sha-256", "-E", "UTF8",
                                          "--locale=C.UTF-8", "--no-sync"],
                   check=True, capture_output=True, cwd=directory)
    # Durability settings off: a test database need not survive a power cut, and fsyncs are slow.
    server.daemon = _Daemon(_as_postgres_user() + [
        str(binaries / "postgres"), "-D", str(data), "-p", str(server.port),
        "-c", f"listen_addresses={LOOPBACK}", "-c", f"unix_socket_directories={directory}",
        "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
        "-c", "max_connections=300", "-c", "shared_buffers=32MB", "-c", "log_min_messages=warning"],
        directory / "postgres.log")
    server.start()
    return server


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    if postgres_bin() is None or shutil.which("setpriv") is None:
        pytest.skip("PostgreSQL server binaries (Debian package postgresql) are not installed")
    # Not under pytest's tmp folder: it is private to root, and the server runs as postgres.
    directory = Path(tempfile.mkdtemp(prefix="publisher-postgres-"))
    server = start_postgres(directory)
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(params=["sqlite", "postgresql"])
def new_state_location(request, tmp_path) -> Callable[[str], str | Path]:
    """``make(name)``: a fresh state database for one test, an SQLite file ``tmp_path/name/state.db``
    or a new PostgreSQL database, by the parameter."""
    def make(name: str = "") -> str | Path:
        if request.param == "sqlite":
            return tmp_path / name / "state.db"
        return request.getfixturevalue("postgres_server").new_database()
    return make


@pytest.fixture
def state_location(new_state_location) -> str | Path:
    """Where the stores of one test keep their state: an SQLite file, or a fresh PostgreSQL database."""
    return new_state_location()
