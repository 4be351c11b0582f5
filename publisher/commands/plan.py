"""`zone-publisher plan --config FILE [--repository NAME] [--format text|json|markdown]`: what would
change; exit 0.  With ``[[repository]]`` tables, ``--repository`` names the repository to plan.

Exit 2 when the configuration cannot be loaded.  Problems that keep a zone out of the plan (a zone
with errors, a provider that cannot be reached) go to stderr, so ``--format json`` stays pure JSON;
the JSON document carries them too (``plan_document``): whatever the text shows, JSON holds.
"""

from __future__ import annotations

import argparse
import json
import sys

from publisher.commands.apply import load_for_command
from publisher.outcome import BLOCKED, PROBLEM_STATUSES
from publisher.publish.orchestrator import PublishReport, publish


def plan_document(report: PublishReport) -> dict:
    """The JSON plan: every zone plan (changes, zone creation and deletion, serials, SOA, findings,
    blocked), every (zone, provider) outcome (a zone kept at its last good version has no plan, a
    provider that failed has its error), the run's findings, error, status and counts."""
    plan = report.plan
    return {
        **plan.to_json(),
        "change_count": plan.change_count,
        "changed_zones": sum(1 for p in plan.zone_plans if p.has_changes),
        "status": report.status, "has_problems": report.has_problems, "error": report.error,
        "counts": report.counts(),
        "outcomes": [o.to_dict(include_changes=False) for o in report.outcomes],
        "findings": [f.to_dict() for f in report.findings],
    }


def run(args: argparse.Namespace) -> int:
    loaded = load_for_command(args.config, getattr(args, "repository", None))
    if loaded is None:
        return 2
    config, repo = loaded
    report = publish(config, repo, apply=False)
    if args.format == "json":
        sys.stdout.write(json.dumps(plan_document(report), indent=2, ensure_ascii=False) + "\n")
    elif args.format == "markdown":
        sys.stdout.write(report.plan.to_markdown())
    else:
        sys.stdout.write(report.plan.to_text())
    for outcome in report.outcomes:
        if outcome.status in PROBLEM_STATUSES and outcome.status != BLOCKED:
            print(f"{outcome.zone} -> {outcome.provider}: {outcome.status}", file=sys.stderr)
            for finding in outcome.findings:
                if finding.is_error:
                    print(f"  {finding.to_text()}", file=sys.stderr)
            if outcome.error:
                print(f"  error: {outcome.error}", file=sys.stderr)
    for finding in report.findings:
        print(finding.to_text(), file=sys.stderr)
    if report.error:
        print(f"error: {report.error}", file=sys.stderr)
    return 0
