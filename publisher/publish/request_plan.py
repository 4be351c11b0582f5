"""The plan of a pull request: lint and plan its head against every provider, never applying.

``plan_request`` is ``publish(apply=False)`` and nothing more, so a request is judged by exactly
the rules a push is; what it adds is the words: the one-line summary a commit status carries and
the Markdown comment the forge shows on the request.  Both are built from the plan (records,
findings) only: no configuration, no provider address or credential is ever in them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping

from publisher.config import Config
from publisher.outcome import APPLIED, KEPT_LAST_GOOD, PLANNED, PROBLEM_STATUSES, is_problem_finding
from publisher.publish.orchestrator import PublishReport, publish
from publisher.publish.providers.base import Provider
from publisher.publish.state import StateStore
from publisher.redaction import redact


@dataclass(frozen=True)
class Outcomes:
    """What a status line needs to know about a run or a plan, whichever produced it."""

    changed: tuple[str, ...]  # zones that change (or would)
    kept: tuple[str, ...]  # zones kept at their last good version
    broken: bool  # an error finding, a failed or blocked zone, a run error
    first_error: str  # "file:line: message" of the first error, or the first zone/run error

    @classmethod
    def of(cls, zones: Iterable, findings: Iterable, error: str = "") -> "Outcomes":
        zones, findings = tuple(zones), tuple(findings)
        changed = tuple(dict.fromkeys(z.zone for z in zones if z.status in (APPLIED, PLANNED) and z.changes))
        kept = tuple(dict.fromkeys(z.zone for z in zones if z.status == KEPT_LAST_GOOD))
        broken = bool(error) or any(f.is_error for f in findings) or any(z.status in PROBLEM_STATUSES for z in zones)
        return cls(changed, kept, broken, _first_error(findings, zones, error))

    def summary(self, *, planned: bool = False) -> str:
        """``2 zones changed, 1 kept at last good version; first error zones/b.lua:3: …``."""
        def zones(n: int) -> str:
            return f"{n} zone{'s' if n != 1 else ''}"
        verb = "would change" if planned else "changed"
        parts = [f"{zones(len(self.changed))} {verb}" if self.changed else f"no zone {verb}"]
        if self.kept:
            parts.append(f"{len(self.kept)} kept at last good version")
        text = ", ".join(parts)
        if self.first_error:
            text += f"; first error {self.first_error}"
        return redact(" ".join(text.split()))


def _first_error(findings: Iterable, zones: Iterable, error: str) -> str:
    for finding in findings:
        if finding.is_error:
            where = f"{finding.file}:{finding.line}" if finding.line else (finding.file or finding.zone)
            return f"{where}: {finding.message}"
    for zone in zones:
        if zone.error:
            return zone.error
    return error


def plan_request(config: Config, repo_path: Path, *, state: StateStore | None = None,
                 providers: Mapping[str, Provider] | None = None) -> PublishReport:
    """Evaluate, lint and plan ``repo_path`` against every provider; nothing is applied and no
    state is written (``publish`` with ``apply=False``)."""
    return publish(config, repo_path, apply=False, state=state, providers=providers)


def request_outcomes(report: PublishReport) -> Outcomes:
    return Outcomes.of(report.outcomes, report.all_findings, report.error)


COMMENT_MARKER = "<!-- zone-publisher plan -->"


def request_comment(report: PublishReport, commit: str, *, run_url: str = "") -> str:
    """The request's comment: what merging would change, every problem at ``file:line``, and a
    reminder that nothing was applied.  Edited in place on every new head."""
    outcomes = request_outcomes(report)
    verdict = "❌ would not publish cleanly" if outcomes.broken else "✅ ready to publish"
    out = [COMMENT_MARKER, f"## DNS plan for `{commit[:12]}`: {verdict}", "",
           outcomes.summary(planned=True) + (f" · [run page]({run_url})" if run_url else ""), ""]
    problems = [f for f in report.all_findings if is_problem_finding(f)]
    if problems:
        out += ["### Problems", ""]
        out += [f"- `{_where(f)}` **{f.severity}** `{f.code}`: {_cell(f.message)}" for f in problems[:50]]
        if len(problems) > 50:
            out.append(f"- … and {len(problems) - 50} more (see the run page)")
        out.append("")
    failures = [o for o in report.outcomes if o.error]
    if failures:
        out += ["### Providers", ""]
        out += [f"- `{o.zone}` → {o.provider}: {_cell(redact(o.error))}" for o in failures]
        out.append("")
    plan = report.plan.to_markdown().split("\n", 1)[1].lstrip("\n")  # without its own "## DNS plan"
    out += ["### Changes", "", plan.rstrip(), "",
            "_Nothing was applied: this is the plan of the request's head against what each provider serves now. "
            "It is applied when the request is merged into the deploy branch._", ""]
    return redact("\n".join(out))


def _where(finding) -> str:
    return f"{finding.file}:{finding.line}" if finding.line else (finding.file or finding.zone)


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")
