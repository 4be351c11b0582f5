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
* a running job is owned through a **lease** (``lease_until``) its worker renews while it runs; once
  the lease has run out the owner counts as dead, whatever its host or pid (in a container every
  worker is pid 1 or 2), and the job can be claimed again: its run starts over, which is safe since
  publishing is idempotent;
* a job that fails, crashes, or loses its lease is retried after a growing delay, at most
  ``max_attempts`` times, then marked failed: a poison job never blocks the queue.

On SQLite every write transaction holds the file's one write lock.  On PostgreSQL, shared by
several instances, each transaction that reads a repository's jobs to decide what to write takes
that repository's advisory lock (``Connection.lock``) first, and a claim picks its job with ``FOR
UPDATE SKIP LOCKED`` and takes the repository's lock without waiting (``try_lock``): two instances
never claim the same job nor two jobs of one repository, and a burst of pushes spread over the
instances still coalesces into one waiting job.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

from publisher.config import JobsConfig
from publisher.outcome import BRANCH_DELETED, FAILED
from publisher.database import (ID, INTEGER, REAL, TEXT, Column, Connection, DatabaseError, Index,
                                        PerThreadStore, Table, transaction)

# Job states (a job's lifecycle); FAILED is the outcome vocabulary's word, not a second definition.
QUEUED, RUNNING, DONE, SUPERSEDED = "queued", "running", "done", "superseded"
# Job kinds; a BRANCH_DELETED job records a run of status BRANCH_DELETED.
PUSH, POLL = "push", "poll"
FINISHED_STATES = (DONE, FAILED, SUPERSEDED)

log = logging.getLogger(__name__)

TABLES = (
    Table("jobs", (
        Column("id", ID), Column("repository", TEXT, True), Column("kind", TEXT, True),
        Column("sender", TEXT, True, "''"), Column("ref", TEXT), Column("commit_sha", TEXT),
        Column("state", TEXT, True), Column("deliveries", INTEGER, True, "1"), Column("created", REAL, True),
        Column("updated", REAL, True), Column("started", REAL), Column("finished", REAL), Column("claimed_by", TEXT),
        Column("run_id", INTEGER), Column("error", TEXT),
        # added since the first version (an older state file gets them in place)
        Column("lease_until", REAL), Column("attempts", INTEGER, True, "0"), Column("not_before", REAL)),
        indexes=(Index("jobs_state", "state, repository"), Index("jobs_repository", "repository, id"),
                  Index("jobs_repository_started", "repository, started"))),
    Table("job_deliveries", (Column("delivery_key", TEXT, True), Column("job_id", INTEGER),
                             Column("received", REAL, True)),
          primary_key=("delivery_key",), indexes=(Index("job_deliveries_received", "received"),)),
    Table("published_commits", (Column("repository", TEXT, True), Column("commit_sha", TEXT, True),
                                Column("published", REAL, True)), primary_key=("repository",)),
)

# One definition of "a worker may take this job now" (parameters: now, now, now), shared by the
# cheap idle check and the claim: queued and due, or running under a lease that ran out; and no
# live lease on the same repository.  A lease of NULL (a job claimed before leases existed) is out.
_CLAIMABLE = ("((state = 'queued' AND COALESCE(not_before, 0) <= ?)"
              " OR (state = 'running' AND COALESCE(lease_until, 0) <= ?))"
              " AND repository NOT IN (SELECT repository FROM jobs WHERE state = 'running' AND lease_until > ?)")
# The claim order, across repositories: first a job whose worker lost its lease (it was running;
# it is closed, or merged into its repository's waiting job, before that one runs); then the job of
# the repository served least recently (its newest claim is oldest, or it never ran), so a repository
# that always has work goes to the back of the line after each run and cannot starve the others,
# and a push to a quiet repository waits only for the runs in progress; then the job waiting
# longest since it became claimable (queued, or a retry's delay over).
_CLAIM_ORDER = ("CASE WHEN state = 'running' THEN 0 ELSE 1 END,"
                " COALESCE((SELECT MAX(served.started) FROM jobs served WHERE served.repository = jobs.repository), 0),"
                " COALESCE(not_before, created), id")


# A pull request's plan is queued (and its run filed) under its repository's key, this, and the
# request's number (``forge_events.request_queue_key``): it belongs to that repository.
REQUEST_SEPARATOR = "#request/"


def owner_key(queue_key: str) -> str:
    """The repository a job or run filed under ``queue_key`` belongs to: the key without a request's
    suffix.  ``repository_clause`` is the same rule in SQL."""
    return queue_key.split(REQUEST_SEPARATOR, 1)[0]


def repository_clause(repository: str, column: str = "repository") -> tuple[str, tuple]:
    """SQL matching the rows that belong to ``repository`` (its key, and its requests' keys), with its
    parameters.  Plain SQL (``substr``, not ``LIKE``: SQLite's LIKE ignores case, and ``_`` in a name
    is a wildcard), so PostgreSQL runs it unchanged."""
    prefix = repository + REQUEST_SEPARATOR
    return f"({column} = ? OR substr({column}, 1, ?) = ?)", (repository, len(prefix), prefix)


def _repository_lock(repository: str) -> str:
    """The lock that serialises the decisions about one repository's jobs across instances."""
    return f"jobs:{repository}"


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
    attempts: int = 0
    claimed_by: str | None = None
    lease_until: float | None = None
    not_before: float | None = None

    @classmethod
    def from_row(cls, row) -> "Job":
        return cls(row["id"], row["repository"], row["kind"], row["sender"], row["ref"], row["commit_sha"],
                   row["state"], row["deliveries"], row["created"], row["started"], row["finished"],
                   row["run_id"], row["error"], row["attempts"], row["claimed_by"], row["lease_until"],
                   row["not_before"])


@dataclass(frozen=True)
class Enqueued:
    """What ``enqueue`` did: ``status`` is "queued" (new job), "coalesced" (merged into the waiting
    job), "duplicate" (delivery seen before) or "published" (commit already published)."""

    status: str
    job_id: int | None


def worker_identity() -> str:
    """``host:pid:random``, for the record only: ownership is the lease, never this name (pids repeat
    across containers and restarts; the random part tells two claims apart)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class JobQueue(PerThreadStore):
    """The queue on one state database.  Safe to use from several processes at once."""

    TABLES = TABLES

    def __init__(self, path: Path | str, settings: JobsConfig = JobsConfig()) -> None:
        super().__init__(path)
        self.settings = settings

    def enqueue(self, repository: str, *, kind: str = PUSH, sender: str = "", delivery_id: str | None = None,
                ref: str | None = None, commit: str | None = None, replay_key: str | None = None,
                now: float | None = None) -> Enqueued:
        """Queue work for ``repository`` unless it is a repeat; see the module rules."""
        now = time.time() if now is None else now
        keys = [key for key in (f"{sender}:{delivery_id}" if delivery_id else None,
                                f"signed:{replay_key}" if replay_key else None) if key is not None]
        db = self._connection
        with transaction(db):
            db.lock(_repository_lock(repository))
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
            if waiting is not None and kind == PUSH:
                # A push is news: a job waiting out a retry delay runs at once, its attempts counted afresh.
                db.execute("UPDATE jobs SET not_before = NULL, attempts = 0 WHERE id = ?", (waiting["id"],))
            if waiting is not None:
                # The worker publishes the branch head, so the waiting job will already include
                # this push: remember the newest commit for the record and move on.
                db.execute("UPDATE jobs SET commit_sha = COALESCE(?, commit_sha), sender = ?, ref = COALESCE(?, ref),"
                           " kind = CASE WHEN kind = ? THEN ? ELSE kind END, deliveries = deliveries + 1,"
                           " updated = ? WHERE id = ?",
                           (commit, sender, ref, POLL, kind, now, waiting["id"]))
                self._remember(db, keys, waiting["id"], now)
                return Enqueued("coalesced", waiting["id"])
            job_id = db.execute(
                "INSERT INTO jobs (repository, kind, sender, ref, commit_sha, state, created, updated)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                (repository, kind, sender, ref, commit, QUEUED, now, now)).fetchone()[0]
            self._remember(db, keys, job_id, now)
            return Enqueued("queued", job_id)

    @staticmethod
    def _remember(db: Connection, keys: list[str], job_id: int | None, now: float) -> None:
        for key in keys:
            db.execute("INSERT INTO job_deliveries (delivery_key, job_id, received) VALUES (?, ?, ?)"
                       " ON CONFLICT (delivery_key) DO NOTHING", (key, job_id, now))

    @staticmethod
    def _published(db: Connection, repository: str) -> str | None:
        row = db.execute("SELECT commit_sha FROM published_commits WHERE repository = ?", (repository,)).fetchone()
        return row["commit_sha"] if row else None

    def has_claimable(self, now: float | None = None) -> bool:
        """A cheap read (no write lock), so an idle worker can look often."""
        now = time.time() if now is None else now
        return self._connection.execute(f"SELECT 1 FROM jobs WHERE {_CLAIMABLE} LIMIT 1",
                                        (now, now, now)).fetchone() is not None

    def claim(self, owner: str, *, now: float | None = None) -> Job | None:
        """Take the first claimable job (``_CLAIMABLE``, in ``_CLAIM_ORDER``) under a lease of
        ``settings.lease`` seconds, or None.  A job whose lease ran out is merged into the repository's
        waiting job when there is one, and failed once it has used up its attempts.

        Several instances claim at once: the candidate row is locked with ``FOR UPDATE SKIP
        LOCKED`` (another claimer's candidate is passed over, not waited for), then its
        repository's lock is tried; when another transaction holds it, or a live lease on the
        repository became visible meanwhile, the repository is passed over for this claim."""
        now = time.time() if now is None else now
        db = self._connection
        with transaction(db):
            passed: list[str] = []
            while True:
                others = f" AND repository NOT IN ({', '.join('?' * len(passed))})" if passed else ""
                row = db.execute(f"SELECT * FROM jobs WHERE {_CLAIMABLE}{others} ORDER BY {_CLAIM_ORDER} LIMIT 1"
                                 f"{db.skip_locked}", (now, now, now, *passed)).fetchone()
                if row is None:
                    return None
                if not db.try_lock(_repository_lock(row["repository"])) or db.execute(
                        "SELECT 1 FROM jobs WHERE repository = ? AND state = ? AND lease_until > ? AND id != ? LIMIT 1",
                        (row["repository"], RUNNING, now, row["id"])).fetchone() is not None:
                    passed.append(row["repository"])
                    continue
                if row["state"] == QUEUED or not self._give_up_lost(db, row, now):
                    break
            db.execute("UPDATE jobs SET state = ?, started = ?, updated = ?, claimed_by = ?, lease_until = ?,"
                       " attempts = attempts + 1, not_before = NULL WHERE id = ?",
                       (RUNNING, now, now, owner, now + self.settings.lease, row["id"]))
        return self.get(row["id"])

    def _give_up_lost(self, db: Connection, row, now: float) -> bool:
        """For a job whose worker lost the lease: True when it is closed instead of claimed again."""
        waiting = db.execute("SELECT id FROM jobs WHERE repository = ? AND state = ? AND kind != ? ORDER BY id LIMIT 1",
                             (row["repository"], QUEUED, BRANCH_DELETED)).fetchone()
        if waiting is not None and row["kind"] != BRANCH_DELETED:
            state, error = SUPERSEDED, f"its worker stopped renewing the lease; merged into job {waiting['id']}"
        elif row["attempts"] >= self.settings.max_attempts:
            state, error = FAILED, (f"gave up after {row['attempts']} attempts: the worker running it stopped "
                                    "(killed, crashed or hung) every time")
        else:
            return False
        db.execute("UPDATE jobs SET state = ?, finished = ?, updated = ?, error = ?, lease_until = NULL WHERE id = ?",
                   (state, now, now, error, row["id"]))
        return True

    def renew(self, job_id: int, owner: str, *, now: float | None = None) -> bool:
        """Extend ``owner``'s lease on a running job (the heartbeat); False when the lease was lost."""
        now = time.time() if now is None else now
        with transaction(self._connection) as db:
            cursor = db.execute("UPDATE jobs SET lease_until = ? WHERE id = ? AND state = ? AND claimed_by = ?",
                                (now + self.settings.lease, job_id, RUNNING, owner))
            return cursor.rowcount == 1

    def finish(self, job_id: int, *, state: str = DONE, run_id: int | None = None, error: str | None = None,
               published_commit: str | None = None, now: float | None = None,
               db: Connection | None = None) -> None:
        """Close a job; ``published_commit`` marks that commit as published.  With ``db``, run inside
        the caller's open transaction on that connection (same database)."""
        now = time.time() if now is None else now
        own = db is None
        db = self._connection if own else db
        with transaction(db) if own else nullcontext():
            row = db.execute("SELECT repository FROM jobs WHERE id = ?", (job_id,)).fetchone()
            db.execute("UPDATE jobs SET state = ?, finished = ?, updated = ?, run_id = ?, error = ?,"
                       " lease_until = NULL WHERE id = ?", (state, now, now, run_id, error, job_id))
            if published_commit and row is not None:
                db.execute("INSERT INTO published_commits (repository, commit_sha, published) VALUES (?, ?, ?)"
                           " ON CONFLICT(repository) DO UPDATE SET commit_sha = excluded.commit_sha,"
                           " published = excluded.published", (row["repository"], published_commit, now))

    def retry(self, job_id: int, *, error: str, run_id: int | None = None, now: float | None = None,
              db: Connection | None = None) -> str:
        """A run of the job failed: queue it again after ``settings.retry_after(attempts)`` seconds,
        merge it into the repository's waiting job, or fail it once its attempts are used up.
        Returns the job's new state (QUEUED, SUPERSEDED or FAILED)."""
        now = time.time() if now is None else now
        own = db is None
        db = self._connection if own else db
        with transaction(db) if own else nullcontext():
            row = db.execute("SELECT repository, attempts, kind FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None:
                return FAILED
            db.lock(_repository_lock(row["repository"]))
            waiting = db.execute("SELECT id FROM jobs WHERE repository = ? AND state = ? AND kind != ? AND id != ?"
                                 " ORDER BY id LIMIT 1", (row["repository"], QUEUED, BRANCH_DELETED, job_id)).fetchone()
            if waiting is not None and row["kind"] != BRANCH_DELETED:
                state, error = SUPERSEDED, f"{error} (a later job will run the branch head: {waiting['id']})"
            elif row["attempts"] >= self.settings.max_attempts:
                state, error = FAILED, f"{error} (gave up after {row['attempts']} attempts)"
            else:
                delay = self.settings.retry_after(row["attempts"])
                db.execute("UPDATE jobs SET state = ?, updated = ?, run_id = ?, error = ?, claimed_by = NULL,"
                           " lease_until = NULL, not_before = ? WHERE id = ?",
                           (QUEUED, now, run_id, error, now + delay, job_id))
                return QUEUED
            db.execute("UPDATE jobs SET state = ?, finished = ?, updated = ?, run_id = ?, error = ?,"
                       " lease_until = NULL WHERE id = ?", (state, now, now, run_id, error, job_id))
            return state

    def release(self, owner: str, *, now: float | None = None) -> list[int]:
        """A worker stopping on purpose hands its running jobs back at once (no waiting for the lease,
        no attempt counted): queued again, or merged into the repository's waiting job."""
        now = time.time() if now is None else now
        released = []
        with transaction(self._connection) as db:
            for row in db.execute("SELECT id, repository, kind FROM jobs WHERE state = ? AND claimed_by = ?",
                                  (RUNNING, owner)).fetchall():
                db.lock(_repository_lock(row["repository"]))
                waiting = db.execute("SELECT id FROM jobs WHERE repository = ? AND state = ? AND kind != ?"
                                     " ORDER BY id LIMIT 1", (row["repository"], QUEUED, BRANCH_DELETED)).fetchone()
                if waiting is not None and row["kind"] != BRANCH_DELETED:
                    db.execute("UPDATE jobs SET state = ?, finished = ?, updated = ?, error = ?, lease_until = NULL"
                               " WHERE id = ?", (SUPERSEDED, now, now, f"worker stopped; merged into job {waiting['id']}",
                                                 row["id"]))
                else:
                    db.execute("UPDATE jobs SET state = ?, updated = ?, claimed_by = NULL, lease_until = NULL,"
                               " started = NULL, not_before = NULL, attempts = attempts - 1 WHERE id = ?",
                               (QUEUED, now, row["id"]))
                released.append(row["id"])
        return released

    def stuck_since(self, now: float | None = None, *, workers: int = 1) -> float | None:
        """Since when the queue has stood still: the time the longest-waiting claimable job became
        claimable, while fewer than ``workers`` leases are live (a worker was free to take it: the
        workers are dead or wedged); else None.  With one worker: while no lease is live."""
        now = time.time() if now is None else now
        if self.live_leases(now) >= max(1, workers):
            return None
        row = self._connection.execute(
            "SELECT MIN(CASE WHEN state = ? THEN COALESCE(not_before, created) ELSE COALESCE(lease_until, started)"
            f" END) AS since FROM jobs WHERE {_CLAIMABLE}", (QUEUED, now, now, now)).fetchone()
        return row["since"]

    def live_leases(self, now: float | None = None) -> int:
        """How many jobs a worker is running now (under a lease that has not run out)."""
        now = time.time() if now is None else now
        return self._connection.execute("SELECT COUNT(*) AS n FROM jobs WHERE state = ? AND lease_until > ?",
                                        (RUNNING, now)).fetchone()["n"]

    def prune(self, before: float, keep_newest: int) -> int:
        """Delete finished jobs and delivery ids older than ``before`` that are not among the newest
        ``keep_newest`` of their table; queued and running jobs are never touched.  Returns the
        number of rows deleted."""
        with transaction(self._connection) as db:
            placeholders = ", ".join("?" * len(FINISHED_STATES))
            jobs = db.execute(
                f"DELETE FROM jobs WHERE state IN ({placeholders}) AND updated < ? AND id NOT IN"
                f" (SELECT id FROM jobs WHERE state IN ({placeholders}) ORDER BY id DESC LIMIT ?)",
                (*FINISHED_STATES, before, *FINISHED_STATES, keep_newest)).rowcount
            deliveries = db.execute(
                "DELETE FROM job_deliveries WHERE received < ? AND delivery_key NOT IN"
                " (SELECT delivery_key FROM job_deliveries ORDER BY received DESC LIMIT ?)",
                (before, keep_newest)).rowcount
        return jobs + deliveries

    def get(self, job_id: int, *, repository: str | None = None) -> Job | None:
        """The job, or None; with ``repository``, None too when the job is another repository's."""
        where, parameters = where_repository("id = ?", (job_id,), repository)
        row = self._connection.execute(f"SELECT * FROM jobs WHERE {where}", parameters).fetchone()
        return Job.from_row(row) if row else None

    def jobs(self, *, state: str | None = None, limit: int = 100, repository: str | None = None) -> list[Job]:
        """The newest ``limit`` jobs, of one ``state`` and of one ``repository`` when given."""
        where, parameters = where_repository("state = ?" if state is not None else "1 = 1",
                                             (state,) if state is not None else (), repository)
        rows = self._connection.execute(f"SELECT * FROM jobs WHERE {where} ORDER BY id DESC LIMIT ?",
                                        (*parameters, limit))
        return [Job.from_row(row) for row in rows.fetchall()]

    def active(self, repository: str | None = None) -> list[Job]:
        """The queued and running jobs (of ``repository`` when given), oldest first: a few per repository."""
        where, parameters = where_repository("state IN (?, ?)", (QUEUED, RUNNING), repository)
        rows = self._connection.execute(f"SELECT * FROM jobs WHERE {where} ORDER BY id", parameters)
        return [Job.from_row(row) for row in rows.fetchall()]

    def counts(self, repository: str | None = None) -> dict[str, int]:
        """Number of jobs per state (of ``repository`` when given)."""
        where, parameters = where_repository("1 = 1", (), repository)
        rows = self._connection.execute(f"SELECT state, COUNT(*) AS n FROM jobs WHERE {where} GROUP BY state",
                                        parameters).fetchall()
        return {row["state"]: row["n"] for row in rows}

    def counts_by_repository(self) -> dict[str, dict[str, int]]:
        """Number of jobs per state, per key they are filed under (a request's key apart: fold them
        with ``owner_key``)."""
        counts: dict[str, dict[str, int]] = {}
        for row in self._connection.execute(
                "SELECT repository, state, COUNT(*) AS n FROM jobs GROUP BY repository, state").fetchall():
            counts.setdefault(row["repository"], {})[row["state"]] = row["n"]
        return counts

    def pending(self, repository: str) -> bool:
        """True when a job for ``repository`` is queued or running."""
        row = self._connection.execute("SELECT 1 FROM jobs WHERE repository = ? AND state IN (?, ?) LIMIT 1",
                                       (repository, QUEUED, RUNNING)).fetchone()
        return row is not None

    def published_commit(self, repository: str) -> str | None:
        return self._published(self._connection, repository)


def where_repository(where: str, parameters: tuple, repository: str | None) -> tuple[str, tuple]:
    """``where`` narrowed to the rows of ``repository`` (None: every repository's)."""
    if repository is None:
        return where, parameters
    clause, more = repository_clause(repository)
    return f"{where} AND {clause}", (*parameters, *more)


class Heartbeat:
    """While a job runs, renew its lease every third of the lease time from a thread of its own, so
    a slow run (a long fetch, a provider timing out) keeps its job and a dead worker loses it."""

    def __init__(self, queue: JobQueue, job_id: int, owner: str) -> None:
        self.queue, self.job_id, self.owner = queue, job_id, owner
        self.lost = False  # the lease ran out and someone else may have the job
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"lease-{job_id}", daemon=True)

    def __enter__(self) -> "Heartbeat":
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join()

    def _beat(self) -> None:
        try:
            while not self._stop.wait(self.queue.settings.lease / 3):
                try:
                    if not self.queue.renew(self.job_id, self.owner):
                        self.lost = True
                        log.warning("job %d: lease lost (it ran out before it could be renewed)", self.job_id)
                        return
                except DatabaseError as error:  # try again at the next beat, the lease has time left
                    log.warning("job %d: cannot renew the lease yet: %s", self.job_id, error)
        finally:
            self.queue.close()  # this thread's connection
