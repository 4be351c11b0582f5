"""`zone-publisher plan --config FILE [--repository NAME] [--format text|json|markdown]`: what would
change; exit 0.  With ``[[repository]]`` tables, ``--repository`` names the repository to plan.

Exit 2 when the configuration cannot be loaded.  Problems that keep a zone out of the plan (a zone
with errors, a provider that cannot be reached) go to stderr, so ``--format json`` stays pure JSON.
"""

from __future__ import annotations

import argparse
import json
import sys

from publisher.commands.apply import load_for_command
from publisher.publish.orchestrator import PROBLEM_STATUSES, publish


def run(args: argparse.Namespace) -> int:
    loaded = load_for_command(args.config, getattr(args, "repository", None))
    if loaded is None:
        return 2
    config, repo = loaded
    report = publish(config, repo, apply=False)
    if args.format == "json":
        sys.stdout.write(json.dumps(report.plan.to_json(), indent=2, ensure_ascii=False) + "\n")
    elif args.format == "markdown":
        sys.stdout.write(report.plan.to_markdown())
    else:
        sys.stdout.write(report.plan.to_text())
    for outcome in report.outcomes:
        if outcome.status in PROBLEM_STATUSES and outcome.status != "blocked":
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
