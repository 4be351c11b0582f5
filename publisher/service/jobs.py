"""The durable job queue: pushes waiting to be published, in SQLite beside the publish state.

Why SQLite rather than memory: a queued push must survive a restart or a ``kill -9``.  The request
handler only inserts (one short transaction), so a webhook is answered in milliseconds.

Rules the queue enforces:

* a delivery id seen before is acknowledged and not queued again, and so is a signed delivery seen
  before under another delivery id (``replay_key``: a key on what the sender signed);
* a commit that is already published is not run again;
* at most one *queued* job per repository: a burst of pushes coalesces into that job, and since the
  worker always publishes the branch head, it runs the newest commit once;
* at most one *running* job per repository;
* a job left ``running`` by a worker that died is requeued when the next worker starts.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import time
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Callable

from publisher.service.database import PerThreadStore, transaction

QUEUED, RUNNING, DONE, FAILED, SUPERSEDED = "queued", "running", "done", "failed", "superseded"
PUSH, POLL, BRANCH_DELETED = "push", "poll", "branch-deleted"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    repository TEXT NOT NULL,
    kind TEXT NOT NULL,
    sender TEXT NOT NULL DEFAULT '',
    ref TEXT,
    commit_sha TEXT,
    state TEXT NOT NULL,
    deliveries INTEGER NOT NULL DEFAULT 1,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    started REAL,
    finished REAL,
    claimed_by TEXT,
    run_id INTEGER,
    error TEXT
);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs(state, repository);
CREATE TABLE IF NOT EXISTS job_deliveries (
    delivery_key TEXT PRIMARY KEY,
    job_id INTEGER,
    received REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS published_commits (
    repository TEXT PRIMARY KEY,
    commit_sha TEXT NOT NULL,
    published REAL NOT NULL
);
"""


def source_key(source) -> str:
    """The queue's name for a ``[source]``: its git URL without credentials (and branch), else its
    directory.  It is stored with every job and run, and shown: never with a password in it."""
    if getattr(source, "url", None):
        return f"{source.display_url}#{source.branch}"
    return str(source.path)


@dataclass(frozen=True)
class Job:
    id: int
    repository: str
    kind: str
    sender: str
    ref: str | None
    commit: str | None
    state: str
    deliveries: int
    created: float
    started: float | None
    finished: float | None
    run_id: int | None
    error: str | None

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> "Job":
        return cls(row["id"], row["repository"], row["kind"], row["sender"], row["ref"], row["commit_sha"],
                   row["state"], row["deliveries"], row["created"], row["started"], row["finished"],
                   row["run_id"], row["error"])


@dataclass(frozen=True)
class Enqueued:
    """What ``enqueue`` did: ``status`` is "queued" (new job), "coalesced" (merged into the waiting
    job), "duplicate" (delivery seen before) or "published" (commit already published)."""

    status: str
    job_id: int | None


def worker_identity() -> str:
    """``host:pid``: lets a new worker tell a dead owner's claims from a live one's."""
    return f"{socket.gethostname()}:{os.getpid()}"


def owner_alive(identity: str) -> bool:
    """True when ``identity`` names a live process on this host (a foreign host counts as alive)."""
    host, _, pid = identity.rpartition(":")
    if host != socket.gethostname():
        return True
    try:
        os.kill(int(pid), 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True


class JobQueue(PerThreadStore):
    """The queue on one state database.  Safe to use from several processes at once."""

    SCHEMA = _SCHEMA

    def enqueue(self, repository: str, *, kind: str = PUSH, sender: str = "", delivery_id: str | None = None,
                ref: str | None = None, commit: str | None = None, replay_key: str | None = None,
                now: float | None = None) -> Enqueued:
        """Queue work for ``repository`` unless it is a repeat; see the module rules."""
        now = time.time() if now is None else now
        keys = [key for key in (f"{sender}:{delivery_id}" if delivery_id else None,
                                f"signed:{replay_key}" if replay_key else None) if key is not None]
        db = self._connection
        with transaction(db):
            for key in keys:
                seen = db.execute("SELECT job_id FROM job_deliveries WHERE delivery_key = ?", (key,)).fetchone()
                if seen is not None:
                    return Enqueued("duplicate", seen["job_id"])
            if commit and kind == PUSH and commit == self._published(db, repository):
                self._remember(db, keys, None, now)
                return Enqueued("published", None)
            if kind == BRANCH_DELETED:
                waiting = None  # a report of its own, never merged into a publish
            else:
                waiting = db.execute(
                    "SELECT id FROM jobs WHERE repository = ? AND state = ? AND kind != ? ORDER BY id LIMIT 1",
                    (repository, QUEUED, BRANCH_DELETED)).fetchone()
            if waiting is not None:
                # The worker publishes the branch head, so the waiting job will already include
                # this push: remember the newest commit for the record and move on.
                db.execute("UPDATE jobs SET commit_sha = COALESCE(?, commit_sha), sender = ?, ref = COALESCE(?, ref),"
                           " kind = CASE WHEN kind = ? THEN ? ELSE kind END, deliveries = deliveries + 1,"
                           " updated = ? WHERE id = ?",
                           (commit, sender, ref, POLL, kind, now, waiting["id"]))
                self._remember(db, keys, waiting["id"], now)
                return Enqueued("coalesced", waiting["id"])
            cursor = db.execute(
                "INSERT INTO jobs (repository, kind, sender, ref, commit_sha, state, created, updated)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)", (repository, kind, sender, ref, commit, QUEUED, now, now))
            self._remember(db, keys, cursor.lastrowid, now)
            return Enqueued("queued", cursor.lastrowid)

    @staticmethod
    def _remember(db: sqlite3.Connection, keys: list[str], job_id: int | None, now: float) -> None:
        for key in keys:
            db.execute("INSERT OR IGNORE INTO job_deliveries (delivery_key, job_id, received) VALUES (?, ?, ?)",
                       (key, job_id, now))

    @staticmethod
    def _published(db: sqlite3.Connection, repository: str) -> str | None:
        row = db.execute("SELECT commit_sha FROM published_commits WHERE repository = ?", (repository,)).fetchone()
        return row["commit_sha"] if row else None

    def has_queued(self) -> bool:
        """A cheap read (no write lock), so an idle worker can look often."""
        return self._connection.execute("SELECT 1 FROM jobs WHERE state = ? LIMIT 1", (QUEUED,)).fetchone() is not None

    def claim(self, owner: str | None = None, *, now: float | None = None) -> Job | None:
        """Take the oldest queued job of a repository that has nothing running, or None."""
        owner = owner or worker_identity()
        now = time.time() if now is None else now
        db = self._connection
        with transaction(db):
            row = db.execute(
                "SELECT * FROM jobs WHERE state = ? AND repository NOT IN"
                " (SELECT repository FROM jobs WHERE state = ?) ORDER BY id LIMIT 1", (QUEUED, RUNNING)).fetchone()
            if row is None:
                return None
            db.execute("UPDATE jobs SET state = ?, started = ?, updated = ?, claimed_by = ? WHERE id = ?",
                       (RUNNING, now, now, owner, row["id"]))
        return self.get(row["id"])

    def finish(self, job_id: int, *, state: str = DONE, run_id: int | None = None, error: str | None = None,
               published_commit: str | None = None, now: float | None = None,
               db: sqlite3.Connection | None = None) -> None:
        """Close a running job; ``published_commit`` marks that commit as published.  With ``db``,
        run inside the caller's open transaction on that connection (same database file)."""
        now = time.time() if now is None else now
        own = db is None
        db = self._connection if own else db
        with transaction(db) if own else nullcontext():
            row = db.execute("SELECT repository FROM jobs WHERE id = ?", (job_id,)).fetchone()
            db.execute("UPDATE jobs SET state = ?, finished = ?, updated = ?, run_id = ?, error = ? WHERE id = ?",
                       (state, now, now, run_id, error, job_id))
            if published_commit and row is not None:
                db.execute("INSERT INTO published_commits (repository, commit_sha, published) VALUES (?, ?, ?)"
                           " ON CONFLICT(repository) DO UPDATE SET commit_sha = excluded.commit_sha,"
                           " published = excluded.published", (row["repository"], published_commit, now))

    def requeue_abandoned(self, alive: Callable[[str], bool] = owner_alive, *, now: float | None = None) -> list[int]:
        """Put jobs claimed by dead workers back in the queue (or merge them into the waiting job).
        Returns the ids requeued or superseded."""
        now = time.time() if now is None else now
        db = self._connection
        recovered = []
        with transaction(db):
            for row in db.execute("SELECT id, repository, claimed_by FROM jobs WHERE state = ?", (RUNNING,)).fetchall():
                if row["claimed_by"] and alive(row["claimed_by"]):
                    continue
                waiting = db.execute("SELECT id FROM jobs WHERE repository = ? AND state = ? AND kind != ?",
                                     (row["repository"], QUEUED, BRANCH_DELETED)).fetchone()
                if waiting is None:
                    db.execute("UPDATE jobs SET state = ?, claimed_by = NULL, started = NULL, updated = ? WHERE id = ?",
                               (QUEUED, now, row["id"]))
                else:
                    db.execute("UPDATE jobs SET state = ?, finished = ?, updated = ?, error = ? WHERE id = ?",
                               (SUPERSEDED, now, now, "worker died; merged into a later queued job", row["id"]))
                recovered.append(row["id"])
        return recovered

    def get(self, job_id: int) -> Job | None:
        row = self._connection.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return Job.from_row(row) if row else None

    def jobs(self, *, state: str | None = None, limit: int = 100) -> list[Job]:
        if state is None:
            rows = self._connection.execute("SELECT * FROM jobs ORDER BY id DESC LIMIT ?", (limit,))
        else:
            rows = self._connection.execute("SELECT * FROM jobs WHERE state = ? ORDER BY id DESC LIMIT ?", (state, limit))
        return [Job.from_row(row) for row in rows.fetchall()]

    def counts(self) -> dict[str, int]:
        """Number of jobs per state."""
        rows = self._connection.execute("SELECT state, COUNT(*) AS n FROM jobs GROUP BY state").fetchall()
        return {row["state"]: row["n"] for row in rows}

    def pending(self, repository: str) -> bool:
        """True when a job for ``repository`` is queued or running."""
        row = self._connection.execute("SELECT 1 FROM jobs WHERE repository = ? AND state IN (?, ?) LIMIT 1",
                                       (repository, QUEUED, RUNNING)).fetchone()
        return row is not None

    def published_commit(self, repository: str) -> str | None:
        return self._published(self._connection, repository)
