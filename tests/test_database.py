"""The state database's connection settings."""

from __future__ import annotations

import sqlite3
import threading

from publisher.service.database import connect


def test_wal_switch_waits_for_a_process_holding_the_fresh_database(tmp_path):
    """At start-up the gunicorn workers and the job worker open the fresh database at once; SQLite
    refuses the switch to WAL while another connection holds a lock, without calling its busy
    handler, which crashed a gunicorn worker ("database is locked") and with it the service."""
    path = tmp_path / "state.db"
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN IMMEDIATE")  # another process mid-way through its own switch to WAL
    release = threading.Timer(0.5, lambda: holder.execute("COMMIT"))
    release.start()
    try:
        connection = connect(path)
    finally:
        release.join()
    assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
