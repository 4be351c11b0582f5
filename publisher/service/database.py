"""The service's SQLite state database: one file (``[state] path``) shared by the job queue, the
run records and the mail outbox, each with its own tables and module."""

from __future__ import annotations

import sqlite3
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


def connect(path: Path | str) -> sqlite3.Connection:
    """A connection to the state database with the settings every service module relies on:
    WAL (readers never block the writer), a busy timeout instead of 'database is locked' errors,
    autocommit so transactions are explicit."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
    connection.row_factory = sqlite3.Row
    connection.execute("PRAGMA busy_timeout = 30000")
    _enable_wal(connection)
    connection.execute("PRAGMA synchronous = NORMAL")
    return connection


def _enable_wal(connection: sqlite3.Connection, attempts: int = 300) -> None:
    """Switch a new database to WAL.  SQLite answers SQLITE_BUSY at once, without its busy handler,
    when several processes make this switch on a fresh file at the same moment (the gunicorn workers
    and the job worker at start-up), so retry briefly; a database already in WAL needs no lock."""
    for attempt in range(attempts):
        try:
            if connection.execute("PRAGMA journal_mode").fetchone()[0].lower() == "wal":
                return
            connection.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or attempt == attempts - 1:
                raise
            time.sleep(0.1)


@contextmanager
def transaction(connection: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE ... COMMIT: take the write lock up front so check-then-insert is atomic."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        yield connection
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")


class PerThreadStore:
    """Base of the stores on the state database: one connection per thread (sqlite3 transactions
    are per connection), the subclass's ``SCHEMA`` created on first use."""

    SCHEMA = ""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._local = threading.local()
        self._connection.executescript(self.SCHEMA)

    @property
    def _connection(self) -> sqlite3.Connection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = self._local.connection = connect(self.path)
        return connection

    def close(self) -> None:
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()
            self._local.connection = None
