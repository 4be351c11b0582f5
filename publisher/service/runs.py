"""Run records: what each publish run did (commit, author, per-zone outcome, changes, findings,
timings), kept in the state database for the status page, the API and the notifications."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from publisher.service.database import (ID, INTEGER, REAL, TEXT, Column, Connection, Index, PerThreadStore, Table,
                                        copy_rowid, transaction)
from publisher.model import Change, Finding

OK, PROBLEMS, FAILED, BRANCH_DELETED = "ok", "problems", "failed", "branch-deleted"

TABLES = (
    Table("runs", (
        Column("id", ID), Column("job_id", INTEGER), Column("repository", TEXT, True), Column("trigger", TEXT, True),
        Column("sender", TEXT, True, "''"), Column("commit_sha", TEXT), Column("author_name", TEXT, True, "''"),
        Column("author_email", TEXT, True, "''"), Column("subject", TEXT, True, "''"), Column("status", TEXT, True),
        Column("started", REAL, True), Column("finished", REAL, True), Column("timings", TEXT, True, "'{}'"),
        Column("findings", TEXT, True, "'[]'"), Column("error", TEXT, True, "''"),
        Column("plan_markdown", TEXT, True, "''"))),
    Table("run_zones", (
        Column("run_id", INTEGER, True), Column("zone", TEXT, True), Column("provider", TEXT, True),
        Column("status", TEXT, True), Column("changes", TEXT, True, "'[]'"), Column("findings", TEXT, True, "'[]'"),
        Column("error", TEXT, True, "''"),
        Column("position", INTEGER, True, "0")),  # the outcome's place in its run (older files: their rowid)
        indexes=(Index("run_zones_run", "run_id"), Index("run_zones_zone", "zone, provider, run_id"))),
)
MIGRATIONS = (copy_rowid("run_zones", "position"),)


@dataclass(frozen=True)
class ZoneOutcome:
    """One zone on one provider in one run.  ``status`` is the publish outcome ("unchanged",
    "applied", "blocked", "failed", "kept-last-good", ...)."""

    zone: str
    provider: str
    status: str
    changes: tuple[Change, ...] = ()
    findings: tuple[Finding, ...] = ()
    error: str = ""

    @property
    def has_problems(self) -> bool:
        return self.status in ("blocked", "failed", "kept-last-good") or bool(self.error) or any(
            f.is_error for f in self.findings)

    def to_dict(self, *, include_changes: bool = True) -> dict[str, Any]:
        data = {"zone": self.zone, "provider": self.provider, "status": self.status,
                "change_count": len(self.changes), "findings": [f.to_dict() for f in self.findings],
                "error": self.error}
        if include_changes:
            data["changes"] = [c.to_dict() for c in self.changes]
        return data


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
    return Change(data["action"], data["name"], data["type"], data["ttl"], tuple(data["old"]), tuple(data["new"]))


def _findings(text: str) -> tuple[Finding, ...]:
    return tuple(Finding(**item) for item in json.loads(text))


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
                "INSERT INTO run_zones (run_id, zone, provider, status, changes, findings, error, position)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [(run_id, z.zone, z.provider, z.status, json.dumps([c.to_dict() for c in z.changes]),
                  json.dumps([f.to_dict() for f in z.findings]), z.error, position)
                 for position, z in enumerate(run.zones)])
            if then is not None:
                then(db, run_id)
        return run_id

    def _zones(self, run_id: int) -> tuple[ZoneOutcome, ...]:
        rows = self._connection.execute("SELECT * FROM run_zones WHERE run_id = ? ORDER BY position", (run_id,))
        return tuple(ZoneOutcome(row["zone"], row["provider"], row["status"],
                                 tuple(_change(c) for c in json.loads(row["changes"])),
                                 _findings(row["findings"]), row["error"]) for row in rows.fetchall())

    def _from_row(self, row, with_zones: bool = True) -> RunRecord:
        return RunRecord(
            repository=row["repository"], trigger=row["trigger"], status=row["status"], started=row["started"],
            finished=row["finished"], commit=row["commit_sha"], sender=row["sender"], author_name=row["author_name"],
            author_email=row["author_email"], subject=row["subject"],
            zones=self._zones(row["id"]) if with_zones else (), findings=_findings(row["findings"]),
            timings=json.loads(row["timings"]), error=row["error"], plan_markdown=row["plan_markdown"],
            job_id=row["job_id"], id=row["id"])

    def get(self, run_id: int) -> RunRecord | None:
        row = self._connection.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        return self._from_row(row) if row else None

    def recent(self, limit: int = 50, *, with_zones: bool = True) -> list[RunRecord]:
        rows = self._connection.execute("SELECT * FROM runs ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
        return [self._from_row(row, with_zones) for row in rows]

    def zone_states(self) -> list[tuple[int, float, ZoneOutcome]]:
        """The latest outcome of every (zone, provider): (run id, finished, outcome), by zone.
        The outcomes carry no changes (the status page does not show them there)."""
        rows = self._connection.execute(
            "SELECT z.run_id, z.zone, z.provider, z.status, z.findings, z.error, r.finished FROM run_zones z JOIN runs r ON r.id = z.run_id"
            " WHERE z.run_id = (SELECT MAX(run_id) FROM run_zones x WHERE x.zone = z.zone AND x.provider = z.provider)"
            " ORDER BY z.zone, z.provider").fetchall()
        return [(row["run_id"], row["finished"],
                 ZoneOutcome(row["zone"], row["provider"], row["status"], (), _findings(row["findings"]),
                             row["error"])) for row in rows]

    def prune(self, before: float, keep_newest: int) -> int:
        """Delete runs finished before ``before`` that are not among the newest ``keep_newest`` and
        hold no zone's latest outcome (the status page shows it), with their zone rows.  Returns
        the number of runs deleted."""
        with transaction(self._connection) as db:
            doomed = [row["id"] for row in db.execute(
                "SELECT id FROM runs WHERE finished < ?"
                " AND id NOT IN (SELECT id FROM runs ORDER BY id DESC LIMIT ?)"
                " AND id NOT IN (SELECT MAX(run_id) FROM run_zones GROUP BY zone, provider)",
                (before, keep_newest)).fetchall()]
            for start in range(0, len(doomed), 500):
                chunk = doomed[start:start + 500]
                marks = ", ".join("?" * len(chunk))
                db.execute(f"DELETE FROM run_zones WHERE run_id IN ({marks})", chunk)
                db.execute(f"DELETE FROM runs WHERE id IN ({marks})", chunk)
        return len(doomed)

    def counts(self) -> dict[str, int]:
        rows = self._connection.execute("SELECT status, COUNT(*) AS n FROM runs GROUP BY status").fetchall()
        return {row["status"]: row["n"] for row in rows}

    def last_finished(self) -> float | None:
        row = self._connection.execute("SELECT MAX(finished) AS f FROM runs").fetchone()
        return row["f"] if row else None
