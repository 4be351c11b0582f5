"""The service's SQLite state database: one file (``[state] path``) shared by the job queue, the
run records and the mail outbox, each with its own tables and module."""

from __future__ import annotations

import sqlite3
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Mapping


def connect(path: Path | str) -> sqlite3.Connection:
    """A connection to the state database with the settings every service module relies on:
    WAL (readers never block the writer), a busy timeout instead of 'database is locked' errors,
    autocommit so transactions are explicit."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
    connection.row_factory = sqlite3.Row
    # Takes effect on a new file (before its first table); an older file is converted by compact().
    connection.execute("PRAGMA auto_vacuum = INCREMENTAL")
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


def add_missing_columns(connection: sqlite3.Connection, table: str, columns: Mapping[str, str]) -> None:
    """``ALTER TABLE ... ADD COLUMN`` for each of ``columns`` (name -> SQL type) the table lacks: a
    state file written by an older version keeps working."""
    present = {row["name"] for row in connection.execute(f"PRAGMA table_info({table})")}
    for name, declaration in columns.items():
        if name not in present:
            try:
                connection.execute(f"ALTER TABLE {table} ADD COLUMN {name} {declaration}")
            except sqlite3.OperationalError as error:  # another process added it first
                if "duplicate column" not in str(error):
                    raise


def write_problem(path: Path | str, timeout: float = 5.0) -> str | None:
    """Why the state database cannot take a write now (locked past ``timeout``, read-only, disk
    full, missing directory), or None when a real write commits."""
    try:
        connection = sqlite3.connect(Path(path), timeout=timeout, isolation_level=None)
    except sqlite3.Error as error:
        return str(error)
    try:
        connection.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
        connection.execute("PRAGMA synchronous = NORMAL")  # as the service writes: no fsync per commit in WAL
        connection.execute("CREATE TABLE IF NOT EXISTS health_probe (id INTEGER PRIMARY KEY, written REAL NOT NULL)")
        connection.execute("INSERT INTO health_probe (id, written) VALUES (1, julianday('now'))"
                           " ON CONFLICT(id) DO UPDATE SET written = excluded.written")
        return None
    except sqlite3.Error as error:
        return str(error)
    finally:
        connection.close()


def compact(connection: sqlite3.Connection) -> None:
    """Give the pages freed by deletions back to the file system: incremental auto-vacuum (a file
    made before it was the default is converted once, by a full VACUUM), then a WAL checkpoint that
    truncates the write-ahead log."""
    if connection.execute("PRAGMA auto_vacuum").fetchone()[0] != 2:
        connection.execute("PRAGMA auto_vacuum = INCREMENTAL")
        connection.execute("VACUUM")
    # executescript steps the pragma to the end; execute() would free a single page
    connection.executescript("PRAGMA incremental_vacuum;")
    connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()


class PerThreadStore:
    """Base of the stores on the state database: one connection per thread (sqlite3 transactions
    are per connection), the subclass's ``SCHEMA`` created on first use, and ``COLUMNS`` (table ->
    {column: type}) added to tables an older version created."""

    SCHEMA = ""
    COLUMNS: Mapping[str, Mapping[str, str]] = {}

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._local = threading.local()
        self._connection.executescript(self.SCHEMA)
        for table, columns in self.COLUMNS.items():
            add_missing_columns(self._connection, table, columns)

    @property
    def _connection(self) -> sqlite3.Connection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = self._local.connection = connect(self.path)
        return connection

    def compact(self) -> None:
        """See ``compact()``: after a prune, give the freed pages back."""
        compact(self._connection)

    def close(self) -> None:
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()
            self._local.connection = None
