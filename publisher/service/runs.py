"""Run records: what each publish run did (commit, author, per-zone outcome, changes, findings,
timings), kept in the state database for the status page, the API and the notifications."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

from publisher.database import (ID, INTEGER, REAL, TEXT, Column, Connection, Index, PerThreadStore, Table,
                                        copy_rowid, transaction)
from publisher.service.jobs import where_repository
from publisher.model import Change, Finding
from publisher.outcome import BRANCH_DELETED, FAILED, OK, PROBLEMS, ZoneOutcome  # noqa: F401 (re-exported)

TABLES = (
    Table("runs", (
        Column("id", ID), Column("job_id", INTEGER), Column("repository", TEXT, True), Column("trigger", TEXT, True),
        Column("sender", TEXT, True, "''"), Column("commit_sha", TEXT), Column("author_name", TEXT, True, "''"),
        Column("author_email", TEXT, True, "''"), Column("subject", TEXT, True, "''"), Column("status", TEXT, True),
        Column("started", REAL, True), Column("finished", REAL, True), Column("timings", TEXT, True, "'{}'"),
        Column("findings", TEXT, True, "'[]'"), Column("error", TEXT, True, "''"),
        Column("plan_markdown", TEXT, True, "''")),
        indexes=(Index("runs_repository", "repository, id"),)),
    Table("run_zones", (
        Column("run_id", INTEGER, True), Column("zone", TEXT, True), Column("provider", TEXT, True),
        Column("status", TEXT, True), Column("changes", TEXT, True, "'[]'"), Column("findings", TEXT, True, "'[]'"),
        Column("error", TEXT, True, "''"),
        Column("position", INTEGER, True, "0"),  # the outcome's place in its run (older files: their rowid)
        # added with the one outcome type: a state file written before them reads with the defaults
        Column("serial_before", INTEGER), Column("serial_after", INTEGER), Column("file", TEXT, True, "''"),
        Column("timings", TEXT, True, "'{}'")),
        indexes=(Index("run_zones_run", "run_id"), Index("run_zones_zone", "zone, provider, run_id"))),
)
MIGRATIONS = (copy_rowid("run_zones", "position"),)




@dataclass(frozen=True)
class RunRecord:
    """One run.  ``findings`` are those not tied to a provider (e.g. a zone that failed to
    evaluate); ``status`` is OK, PROBLEMS (findings or blocked zones), FAILED (a provider or the
    fetch failed) or BRANCH_DELETED (reported, nothing published)."""

    repository: str
    trigger: str
    status: str
    started: float
    finished: float
    commit: str | None = None
    sender: str = ""
    author_name: str = ""
    author_email: str = ""
    subject: str = ""
    zones: tuple[ZoneOutcome, ...] = ()
    findings: tuple[Finding, ...] = ()
    timings: Mapping[str, float] = field(default_factory=dict)
    error: str = ""
    plan_markdown: str = ""
    job_id: int | None = None
    id: int | None = None

    @property
    def has_problems(self) -> bool:
        return self.status != OK

    @property
    def all_findings(self) -> tuple[Finding, ...]:
        """Every finding of the run, each once (a zone's findings repeat per provider)."""
        seen: dict[Finding, None] = dict.fromkeys(self.findings)
        for outcome in self.zones:
            seen.update(dict.fromkeys(outcome.findings))
        return tuple(seen)

    def to_dict(self, *, include_changes: bool = True) -> dict[str, Any]:
        """JSON form; lists leave the changes out (a first publish can hold thousands)."""
        return {"id": self.id, "job_id": self.job_id, "repository": self.repository, "trigger": self.trigger,
                "sender": self.sender, "commit": self.commit, "author": {"name": self.author_name,
                                                                         "email": self.author_email},
                "subject": self.subject, "status": self.status, "started": self.started,
                "finished": self.finished, "duration": round(self.finished - self.started, 6),
                "timings": dict(self.timings), "error": self.error,
                "findings": [f.to_dict() for f in self.findings],
                "zones": [z.to_dict(include_changes=include_changes) for z in self.zones]}


def _change(data: Mapping[str, Any]) -> Change:
    return Change(data["action"], data["name"], data["type"], data["ttl"], tuple(data["old"]), tuple(data["new"]),
                  data.get("old_ttl", 0))  # rows written before old_ttl was stored


def _findings(text: str) -> tuple[Finding, ...]:
    return tuple(Finding(**item) for item in json.loads(text))


def _outcome(row, changes: tuple[Change, ...]) -> ZoneOutcome:
    """A ``run_zones`` row read back into the one outcome type."""
    return ZoneOutcome(row["zone"], row["provider"], row["status"], changes, _findings(row["findings"]), row["error"],
                       serial_before=row["serial_before"], serial_after=row["serial_after"], file=row["file"],
                       timings=json.loads(row["timings"]))


class RunStore(PerThreadStore):
    """Run records on one state database (thread-safe: one connection per thread)."""

    TABLES = TABLES
    MIGRATIONS = MIGRATIONS

    def record(self, run: RunRecord, *, then: Callable[[Connection, int], None] | None = None) -> int:
        """Store ``run``; returns its id.  ``then(connection, run_id)`` runs inside the same
        transaction, so what it writes (the run's mail, the job's end) commits with the record or
        not at all."""
        db = self._connection
        with transaction(db):
            run_id = db.execute(
                "INSERT INTO runs (job_id, repository, trigger, sender, commit_sha, author_name, author_email, subject,"
                " status, started, finished, timings, findings, error, plan_markdown)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                (run.job_id, run.repository, run.trigger, run.sender, run.commit, run.author_name, run.author_email,
                 run.subject, run.status, run.started, run.finished, json.dumps(dict(run.timings)),
                 json.dumps([f.to_dict() for f in run.findings]), run.error, run.plan_markdown)).fetchone()[0]
            db.executemany(
                "INSERT INTO run_zones (run_id, zone, provider, status, changes, findings, error, serial_before,"
                " serial_after, file, timings, position) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(run_id, z.zone, z.provider, z.status, json.dumps([c.to_dict() for c in z.changes]),
                  json.dumps([f.to_dict() for f in z.findings]), z.error, z.serial_before, z.serial_after, z.file,
                  json.dumps(dict(z.timings)), position) for position, z in enumerate(run.zones)])
            if then is not None:
                then(db, run_id)
        return run_id

    def _zones(self, run_id: int) -> tuple[ZoneOutcome, ...]:
        rows = self._connection.execute("SELECT * FROM run_zones WHERE run_id = ? ORDER BY position", (run_id,))
        return tuple(_outcome(row, tuple(_change(c) for c in json.loads(row["changes"]))) for row in rows.fetchall())

    def _from_row(self, row, with_zones: bool = True) -> RunRecord:
        return RunRecord(
            repository=row["repository"], trigger=row["trigger"], status=row["status"], started=row["started"],
            finished=row["finished"], commit=row["commit_sha"], sender=row["sender"], author_name=row["author_name"],
            author_email=row["author_email"], subject=row["subject"],
            zones=self._zones(row["id"]) if with_zones else (), findings=_findings(row["findings"]),
            timings=json.loads(row["timings"]), error=row["error"], plan_markdown=row["plan_markdown"],
            job_id=row["job_id"], id=row["id"])

    def get(self, run_id: int, *, repository: str | None = None) -> RunRecord | None:
        """The run, or None; with ``repository``, None too when the run is another repository's."""
        where, parameters = where_repository("id = ?", (run_id,), repository)
        row = self._connection.execute(f"SELECT * FROM runs WHERE {where}", parameters).fetchone()
        return self._from_row(row) if row else None

    def recent(self, limit: int = 50, *, with_zones: bool = True, repository: str | None = None) -> list[RunRecord]:
        """The newest ``limit`` runs (of ``repository`` and its requests' plans when given)."""
        where, parameters = where_repository("1 = 1", (), repository)
        rows = self._connection.execute(f"SELECT * FROM runs WHERE {where} ORDER BY id DESC LIMIT ?",
                                        (*parameters, limit)).fetchall()
        return [self._from_row(row, with_zones) for row in rows]

    def last_runs(self, repositories: Iterable[str]) -> dict[str, RunRecord]:
        """The newest run filed under each of ``repositories`` exactly (a deploy run: push, poll or
        deleted branch; a request's plan is filed under a key of its own), without zones."""
        found: dict[str, RunRecord] = {}
        for chunk in _chunks(list(dict.fromkeys(repositories))):
            marks = ", ".join("?" * len(chunk))
            rows = self._connection.execute(
                f"SELECT * FROM runs WHERE id IN (SELECT MAX(id) FROM runs WHERE repository IN ({marks})"
                " GROUP BY repository)", chunk).fetchall()
            found.update((row["repository"], self._from_row(row, with_zones=False)) for row in rows)
        return found

    def zone_states(self, repository: str | None = None, *, limit: int | None = None,
                    offset: int = 0) -> list[tuple[int, float, ZoneOutcome]]:
        """The latest outcome of every (zone, provider): (run id, finished, outcome), by zone; with
        ``repository``, the latest of that repository's runs (another repository's refused attempt
        at one of its zones is not its zone's state); ``limit`` and ``offset`` page through them.
        The outcomes carry no changes (the status page does not show them there)."""
        if repository is not None:
            return [state for _, state in self._latest_zones([repository], limit, offset)]
        page = "" if limit is None else " LIMIT ? OFFSET ?"
        rows = self._connection.execute(
            "SELECT z.run_id, z.zone, z.provider, z.status, z.findings, z.error, z.serial_before, z.serial_after,"
            " z.file, z.timings, r.finished FROM run_zones z JOIN runs r ON r.id = z.run_id"
            " WHERE z.run_id = (SELECT MAX(run_id) FROM run_zones x WHERE x.zone = z.zone AND x.provider = z.provider)"
            " ORDER BY z.zone, z.provider" + page, () if limit is None else (limit, offset)).fetchall()
        return [(row["run_id"], row["finished"], _zone_state(row)) for row in rows]

    def zone_states_by_repository(self, repositories: Iterable[str]) -> dict[str, list[tuple[int, float, ZoneOutcome]]]:
        """``zone_states(repository)`` of each of ``repositories``, in one pass."""
        states: dict[str, list[tuple[int, float, ZoneOutcome]]] = {key: [] for key in repositories}
        for chunk in _chunks(list(states)):
            for repository, state in self._latest_zones(chunk, None, 0):
                states[repository].append(state)
        return states

    def _latest_zones(self, repositories: list[str], limit: int | None,
                      offset: int) -> list[tuple[str, tuple[int, float, ZoneOutcome]]]:
        """(repository, (run id, finished, outcome)) of the latest outcome per zone and provider among
        the runs filed under each of ``repositories`` exactly (zones are published by deploy runs)."""
        marks = ", ".join("?" * len(repositories))
        page = "" if limit is None else " LIMIT ? OFFSET ?"
        rows = self._connection.execute(
            "SELECT r.repository, z.run_id, z.zone, z.provider, z.status, z.findings, z.error, z.serial_before,"
            " z.serial_after, z.file, z.timings, r.finished"
            " FROM (SELECT y.repository AS repository, x.zone AS zone, x.provider AS provider,"
            " MAX(x.run_id) AS run_id FROM runs y JOIN run_zones x ON x.run_id = y.id"
            f" WHERE y.repository IN ({marks}) GROUP BY y.repository, x.zone, x.provider) latest"
            " JOIN run_zones z ON z.run_id = latest.run_id AND z.zone = latest.zone AND z.provider = latest.provider"
            " JOIN runs r ON r.id = z.run_id ORDER BY r.repository, z.zone, z.provider" + page,
            (*repositories, *(() if limit is None else (limit, offset)))).fetchall()
        return [(row["repository"], (row["run_id"], row["finished"], _zone_state(row))) for row in rows]

    def prune(self, before: float, keep_newest: int) -> int:
        """Delete runs finished before ``before`` that are not among the newest ``keep_newest`` and
        hold no repository's latest outcome of a zone (the status pages show it), with their zone rows.  Returns
        the number of runs deleted."""
        with transaction(self._connection) as db:
            doomed = [row["id"] for row in db.execute(
                "SELECT id FROM runs WHERE finished < ?"
                " AND id NOT IN (SELECT id FROM runs ORDER BY id DESC LIMIT ?)"
                # each repository's latest outcome of each of its zones (B's refused try at A's zone
                # is not A's latest outcome, and must not let A's be pruned)
                " AND id NOT IN (SELECT MAX(z.run_id) FROM run_zones z JOIN runs r ON r.id = z.run_id"
                " GROUP BY r.repository, z.zone, z.provider)",
                (before, keep_newest)).fetchall()]
            for start in range(0, len(doomed), 500):
                chunk = doomed[start:start + 500]
                marks = ", ".join("?" * len(chunk))
                db.execute(f"DELETE FROM run_zones WHERE run_id IN ({marks})", chunk)
                db.execute(f"DELETE FROM runs WHERE id IN ({marks})", chunk)
        return len(doomed)

    def counts(self, repository: str | None = None) -> dict[str, int]:
        """Number of runs per status (of ``repository`` when given)."""
        where, parameters = where_repository("1 = 1", (), repository)
        rows = self._connection.execute(f"SELECT status, COUNT(*) AS n FROM runs WHERE {where} GROUP BY status",
                                        parameters).fetchall()
        return {row["status"]: row["n"] for row in rows}

    def counts_by_repository(self) -> dict[str, dict[str, int]]:
        """Number of runs per status, per key they are filed under (fold requests' keys with
        ``jobs.owner_key``)."""
        counts: dict[str, dict[str, int]] = {}
        for row in self._connection.execute(
                "SELECT repository, status, COUNT(*) AS n FROM runs GROUP BY repository, status").fetchall():
            counts.setdefault(row["repository"], {})[row["status"]] = row["n"]
        return counts

    def last_finished(self, repository: str | None = None) -> float | None:
        """When the last run (of ``repository`` when given) finished, or None."""
        where, parameters = where_repository("1 = 1", (), repository)
        row = self._connection.execute(f"SELECT MAX(finished) AS f FROM runs WHERE {where}", parameters).fetchone()
        return row["f"] if row else None

    def last_finished_by_repository(self) -> dict[str, float]:
        """When the last run filed under each key finished."""
        rows = self._connection.execute("SELECT repository, MAX(finished) AS f FROM runs GROUP BY repository")
        return {row["repository"]: row["f"] for row in rows.fetchall()}


def _zone_state(row) -> ZoneOutcome:
    """A zone's latest outcome as the status page lists it: without its changes."""
    return _outcome(row, ())


def _chunks(items: list[str], size: int = 500) -> Iterable[list[str]]:
    """``items`` in lists small enough for one statement's parameters (SQLite's limit was 999)."""
    for start in range(0, len(items), size):
        yield items[start:start + size]
