"""The one vocabulary for what a run did: zone statuses, what counts as a problem, the zone
outcome, and the run status derived from them.

Publish (the orchestrator), the run records, the mail, ``/metrics``, the status page, forge
statuses and the CLI exit code all read these definitions, so a zone cannot be a problem in one
of them and healthy in another (a drift warning mailed while ``publisher_zone_ok`` says 1).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from publisher.model import Change, Finding

# -- zone statuses: what happened to one zone at one provider ----------------------------------
UNCHANGED = "unchanged"  # the provider already serves what the repository says
PLANNED = "planned"  # changes found; a plan run (or a reviewed checksum that no longer matched) left them
APPLIED = "applied"  # the provider confirmed the changes
BLOCKED = "blocked"  # an error finding (a safety threshold, a deletion without --force) stopped it
FAILED = "failed"  # the provider could not be read or written
KEPT_LAST_GOOD = "kept-last-good"  # the zone has errors; the provider keeps what it served
ZONE_STATUSES = frozenset({UNCHANGED, PLANNED, APPLIED, BLOCKED, FAILED, KEPT_LAST_GOOD})
# Statuses that mean what the repository asks for did not happen.
PROBLEM_STATUSES = frozenset({BLOCKED, FAILED, KEPT_LAST_GOOD})
# Warnings raised while publishing that someone should hear about (validation warnings are not).
PROBLEM_WARNINGS = frozenset({"zone-changed-outside", "alias-unresolved", "kept-last-good"})

# -- run statuses: what one run did as a whole --------------------------------------------------
OK = "ok"
PROBLEMS = "problems"  # findings or zones someone should look at; the rest was published
# FAILED (above) also names a run: the fetch, a provider or the publisher failed; try again later
BRANCH_DELETED = "branch-deleted"  # the deploy branch was deleted: reported, nothing published
RUN_STATUSES = frozenset({OK, PROBLEMS, FAILED, BRANCH_DELETED})


def is_problem_finding(finding: Finding) -> bool:
    """An error, or a warning of ``PROBLEM_WARNINGS``: what a person must hear about."""
    return finding.is_error or finding.code in PROBLEM_WARNINGS


@dataclass(frozen=True)
class ZoneOutcome:
    """What happened to one zone at one provider in one run."""

    zone: str
    provider: str
    status: str  # one of ZONE_STATUSES
    changes: tuple[Change, ...] = ()
    findings: tuple[Finding, ...] = ()  # the zone's evaluation findings, then planning findings
    error: str = ""
    serial_before: int | None = None
    serial_after: int | None = None
    file: str = ""
    timings: Mapping[str, float] = field(default_factory=dict)

    @property
    def has_problems(self) -> bool:
        return (self.status in PROBLEM_STATUSES or bool(self.error)
                or any(is_problem_finding(f) for f in self.findings))

    def to_dict(self, *, include_changes: bool = True) -> dict[str, Any]:
        """JSON form; lists of runs leave the changes out (a first publish can hold thousands)."""
        data: dict[str, Any] = {
            "zone": self.zone, "provider": self.provider, "status": self.status, "file": self.file,
            "has_problems": self.has_problems, "change_count": len(self.changes),
            "findings": [f.to_dict() for f in self.findings], "error": self.error,
            "serial_before": self.serial_before, "serial_after": self.serial_after,
            "timings": {k: round(v, 6) for k, v in self.timings.items()},
        }
        if include_changes:
            data["changes"] = [c.to_dict() for c in self.changes]
        return data


def run_has_problems(outcomes: Iterable[ZoneOutcome], error: str = "", findings: Iterable[Finding] = ()) -> bool:
    """True when a run-level error, a problem finding of the run or a zone with problems needs attention."""
    return (bool(error) or any(o.has_problems for o in outcomes)
            or any(is_problem_finding(f) for f in findings))


def run_status(outcomes: Iterable[ZoneOutcome], error: str = "", findings: Iterable[Finding] = ()) -> str:
    """FAILED (a run error or a failed zone: try again), PROBLEMS (``run_has_problems``) or OK."""
    outcomes = tuple(outcomes)
    if error or any(o.status == FAILED for o in outcomes):
        return FAILED
    return PROBLEMS if run_has_problems(outcomes, error, findings) else OK


__all__ = ["UNCHANGED", "PLANNED", "APPLIED", "BLOCKED", "FAILED", "KEPT_LAST_GOOD", "ZONE_STATUSES",
           "PROBLEM_STATUSES", "PROBLEM_WARNINGS", "OK", "PROBLEMS", "BRANCH_DELETED", "RUN_STATUSES",
           "ZoneOutcome", "is_problem_finding", "run_has_problems", "run_status"]
