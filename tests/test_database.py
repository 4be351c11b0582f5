"""The state database: SQLite's connection settings, and the one layer over SQLite and PostgreSQL
(schema declared once and migrated by the tool, one query text for both, no password shown)."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from publisher.config import ConfigError, load_config_text
from publisher.model import Record
from publisher.publish.state import StateStore
from publisher.database import PostgresError, connect, display_url, open_database, transaction, upgrade
from publisher.service.forge import ForgeStore
from publisher.service.jobs import QUEUED, JobQueue
from publisher.service.notify import Outbox
from publisher.service.runs import RunStore
from publisher.service.schema import tables


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


# -- one layer for SQLite and PostgreSQL -----------------------------------------------------------

OLD_STATE = Path(__file__).parent / "data" / "database" / "state-before-postgres.sql"
REPO = "example/dns#main"


def zone_publisher(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "publisher", *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent), **(env or {})})


def test_db_upgrade_keeps_every_row_of_a_state_file_written_before_postgresql(tmp_path):
    path = tmp_path / "state.db"
    old = sqlite3.connect(path)
    old.executescript(OLD_STATE.read_text())
    old.close()
    config = tmp_path / "config.toml"
    config.write_text(f'[state]\npath = "{path}"\n')
    first = zone_publisher("db", "upgrade", "--config", str(config))
    assert first.returncode == 0, first.stderr
    assert "added column outbox.lease_until" in first.stdout and "added column run_zones.position" in first.stdout
    assert "created table jobs" not in first.stdout
    again = zone_publisher("db", "upgrade", "--config", str(config))
    assert again.returncode == 0 and "nothing to do" in again.stdout

    runs, queue, outbox = RunStore(path), JobQueue(path), Outbox(path)
    run = runs.get(1)
    assert (run.subject, [z.zone for z in run.zones]) == ("first zones", ["zulu.example.", "alpha.example."])
    assert queue.get(2).state == QUEUED and queue.published_commit(REPO) == "a" * 40
    assert queue.enqueue(REPO, sender="github", delivery_id="d1").status == "duplicate"
    assert [item.payload for item in outbox.due()] == [b"Subject: x"]
    assert ForgeStore(path).pending_commits(2) == [("c" * 40, "dns"), ("b" * 40, "dns")]  # in the order queued
    assert StateStore(path).serial("primary", "zulu.example.") == 4294967295
    # New rows go after the old ones.
    assert outbox.add("mail", ["x@example.org"], b"later") == 2


def test_db_upgrade_on_postgresql_creates_the_schema_and_never_shows_the_password(postgres_server, tmp_path):
    url = postgres_server.new_database()
    config = tmp_path / "config.toml"
    config.write_text('[state]\nurl = "env:STATE_URL"\n')
    first = zone_publisher("db", "upgrade", "--config", str(config), env={"STATE_URL": url})
    assert first.returncode == 0, first.stderr
    assert {f"created table {table.name}" for table in tables()} <= set(line.strip() for line in first.stdout.splitlines())
    again = zone_publisher("db", "upgrade", "--config", str(config), env={"STATE_URL": url})
    assert "nothing to do" in again.stdout
    wrong = url.replace(postgres_server.password, "not-" + postgres_server.password)
    refused = zone_publisher("db", "upgrade", "--config", str(config), env={"STATE_URL": wrong})
    assert refused.returncode == 2 and "password authentication failed" in refused.stderr
    for output in (first.stdout, first.stderr, again.stdout, refused.stdout, refused.stderr):
        assert postgres_server.password not in output
    assert f"postgresql://publisher@127.0.0.1:{postgres_server.port}/" in first.stdout


def test_instances_starting_together_upgrade_the_schema_once(postgres_server):
    url = postgres_server.new_database()
    script = ("import sys; from publisher.service.schema import upgrade_all;"
              "print(len(upgrade_all(sys.argv[1])))")
    processes = [subprocess.Popen([sys.executable, "-c", script, url], stdout=subprocess.PIPE, text=True)
                 for _ in range(4)]
    changes = sorted(int(process.communicate(timeout=120)[0]) for process in processes)
    assert changes[:3] == [0, 0, 0] and changes[3] > 0  # one did the work, the others found it done


def test_an_instance_starting_beside_a_busy_one_takes_no_table_lock_on_a_current_schema(postgres_server):
    # A running instance's transaction holds a row lock on `jobs` (a claim, a finish, ...).  An
    # instance starting meanwhile upgrades a schema that is already current: it must not queue for
    # a table lock (CREATE INDEX takes SHARE even when the index exists), or it waits for every
    # write of the others and can deadlock with one (seen: `serve` refusing to start).
    import psycopg

    url = postgres_server.new_database()
    JobQueue(url).enqueue("repo")
    with psycopg.connect(url) as busy:
        busy.execute("UPDATE jobs SET updated = updated + 1")  # RowExclusiveLock until rollback
        finished = threading.Event()
        starting = threading.Thread(target=lambda: (upgrade(url, tables()), finished.set()), daemon=True)
        starting.start()
        try:
            assert finished.wait(10), "the upgrade of a current schema waited for the busy instance's lock"
        finally:
            busy.rollback()
        starting.join(30)


def test_serials_and_time_stamps_keep_their_precision(state_location):
    """PostgreSQL's INTEGER is 32-bit and its REAL single precision: a 32-bit SOA serial or a time
    stamp to the microsecond must come back as it went in."""
    when = 1796128284.123456
    queue = JobQueue(state_location)
    job = queue.get(queue.enqueue(REPO, now=when).job_id)
    assert job.created == when
    with StateStore(state_location) as state:
        state.put("primary", "example.com.", 4294967295, [Record("a.example.com.", "A", 2147483647, "192.0.2.1")])
        assert state.serial("primary", "example.com.") == 4294967295
        assert state.get("primary", "example.com.").records[0].ttl == 2147483647


def test_one_query_text_runs_on_both(state_location):
    """``?`` placeholders and a literal ``%`` mean the same on both databases; a transaction that
    fails leaves nothing behind."""
    connection = open_database(state_location).connection()
    assert connection.execute("SELECT '100%' || ?", ("!",)).fetchone()[0] == "100%!"
    JobQueue(state_location)
    with pytest.raises(RuntimeError):
        with transaction(connection):
            connection.execute("INSERT INTO published_commits (repository, commit_sha, published) VALUES (?, ?, ?)",
                               ("r", "c", 1.0))
            raise RuntimeError("abandoned")
    assert connection.execute("SELECT COUNT(*) FROM published_commits").fetchone()[0] == 0


def test_a_lost_postgresql_connection_is_opened_again(postgres_server):
    """A database restart (or a fail-over) ends every connection: the next use opens a new one."""
    url = postgres_server.new_database()
    queue = JobQueue(url)
    queue.enqueue(REPO)
    pid = queue._connection.execute("SELECT pg_backend_pid()").fetchone()[0]
    import psycopg
    with psycopg.connect(postgres_server.url(), autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
    with pytest.raises(PostgresError) as lost:  # the one call that met the break
        queue.counts()
    assert isinstance(lost.value.__cause__, psycopg.OperationalError)
    assert queue.counts() == {QUEUED: 1}


def test_the_password_of_the_url_is_never_shown(monkeypatch, tmp_path):
    assert display_url("postgresql://zp:hunter2@db.internal:5433/state") == "postgresql://zp@db.internal:5433/state"
    assert "hunter2" not in display_url("postgresql://db.internal/state?user=zp&password=hunter2")
    assert "hunter2" not in display_url("postgresql://zp:hunter2@[broken")
    monkeypatch.setenv("STATE_URL", "postgresql://zp:hunter2@127.0.0.1:1/state")
    config = load_config_text('[state]\nurl = "env:STATE_URL"\n', base=tmp_path)
    assert config.state.location == "postgresql://zp:hunter2@127.0.0.1:1/state"
    assert "hunter2" not in repr(config) and "hunter2" not in repr(open_database(config.state.location))
    from publisher.database import StateDatabaseError
    with pytest.raises(StateDatabaseError) as refused:
        open_database(config.state.location).connect(timeout=2)
    assert "hunter2" not in str(refused.value) and "127.0.0.1:1" in str(refused.value)
    from publisher.database import write_problem
    problem = write_problem(config.state.location, timeout=2)
    assert problem and "hunter2" not in problem


@pytest.mark.parametrize("table, message", [
    ('url = "env:NO_SUCH_STATE_URL"', "environment variable NO_SUCH_STATE_URL is not set"),
    ('url = "mysql://zp:hunter2@h/db"', "url must be a postgresql:// URL"),
    ("url = 5", "url must be str"),
])
def test_state_url_errors_name_the_key_never_the_value(tmp_path, table, message):
    with pytest.raises(ConfigError) as error:
        load_config_text("[state]\n" + table + "\n", base=tmp_path)
    assert message in str(error.value) and "hunter2" not in str(error.value)


def test_upgrade_adds_a_column_a_store_declares_later(state_location):
    """How a store grows: declare the column; existing rows get its default."""
    from publisher.database import INTEGER, TEXT, Column, Table
    before = Table("widgets", (Column("name", TEXT, True),), primary_key=("name",))
    after = Table("widgets", (Column("name", TEXT, True), Column("size", INTEGER, True, "3")), primary_key=("name",))
    assert upgrade(state_location, [before])[-1] == "created table widgets"
    connection = open_database(state_location).connection()
    connection.execute("INSERT INTO widgets (name) VALUES (?)", ("w",))
    assert upgrade(state_location, [after]) == ["added column widgets.size"]
    assert dict(connection.execute("SELECT * FROM widgets").fetchone()) == {"name": "w", "size": 3}
    assert upgrade(state_location, [after]) == []


def test_a_lock_held_by_a_lost_instance_is_freed_and_never_waited_for_forever(postgres_server, monkeypatch):
    """An instance whose host vanished mid-transaction sends no FIN: the server ends its idle
    transaction (freeing the repository's lock), and a waiter gives up instead of hanging."""
    from publisher.database import SESSION_LIMITS, Database

    monkeypatch.setitem(SESSION_LIMITS, "lock_wait", 1)
    database = Database(postgres_server.new_database())
    holder, waiter = database.connect(), database.connect()
    with transaction(holder):
        holder.lock("jobs:example")
        started = time.monotonic()
        with pytest.raises(PostgresError) as gave_up:
            with transaction(waiter):
                waiter.lock("jobs:example")
        assert gave_up.value.sqlstate == "55P03"  # lock_not_available
        waited = time.monotonic() - started
    assert 0.8 < waited < 5
    monkeypatch.setitem(SESSION_LIMITS, "idle_in_transaction", 1)
    lost = database.connect()
    lost.raw.execute("BEGIN")
    lost.lock("jobs:example")  # and then its host is gone: the transaction stays open, idle
    with transaction(waiter):
        assert not waiter.try_lock("jobs:example")
    time.sleep(2)
    with transaction(waiter):
        assert waiter.try_lock("jobs:example")


def test_a_command_on_sqlite_never_imports_the_postgresql_driver(tmp_path):
    """``plan``/``build``/``apply`` on the embedded default pay nothing for PostgreSQL."""
    script = ("import sys; from publisher.publish.state import StateStore; from publisher.service.jobs import JobQueue;"
              f"StateStore({str(tmp_path / 's.db')!r}).zones(); JobQueue({str(tmp_path / 's.db')!r}).counts();"
              "print('psycopg' in sys.modules)")
    answer = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                            env={**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)})
    assert answer.stdout.strip() == "False"
