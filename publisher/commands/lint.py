"""`zone-publisher lint [PATH] [--zone ORIGIN] [--server bind|knot] [--format text|json|github] [--cache DIR]`.

Exit 0 when no zone has an error (warnings allowed), 1 when any has, 2 on usage errors.
"""

from __future__ import annotations

import json
import sys
from argparse import Namespace
from pathlib import Path
from typing import TextIO

from publisher.zone.evaluate import EvaluationOptions, RepositoryResult, evaluate_file, evaluate_repository
from publisher.zone.evaluation_cache import EvaluationCache
from publisher.model import ZoneResult


def run(args: Namespace, out: TextIO = sys.stdout) -> int:
    path = Path(args.path)
    options = EvaluationOptions(server=getattr(args, "server", "bind"))
    if not path.exists():
        print(f"zone-publisher lint: {args.path}: no such file or directory", file=sys.stderr)
        return 2
    if path.is_dir():
        if args.zone:
            print("zone-publisher lint: --zone applies to a single zone file, not a repository", file=sys.stderr)
            return 2
        cache = EvaluationCache(Path(args.cache)) if getattr(args, "cache", None) else None
        result = evaluate_repository(path, options, cache=cache)
    else:
        zone = evaluate_file(path, args.zone, options, display_file=args.path)
        result = RepositoryResult(path.parent, (zone,), ())
    render = {"json": _json, "github": _github}.get(args.format, _text)
    render(result, out, verbose=getattr(args, "verbose", False))
    return 1 if result.error_count else 0


def _records(zone: ZoneResult) -> int:
    return len(zone.zone.records) if zone.zone is not None else 0


def _json(result: RepositoryResult, out: TextIO, verbose: bool = False) -> None:
    document = {
        "findings": [f.to_dict() for f in result.findings],
        "zones": [
            {"zone": z.origin, "file": z.file, "records": _records(z),
             "findings": [f.to_dict() for f in z.findings]}
            for z in result.zones
        ],
        "errors": result.error_count,
        "warnings": result.warning_count,
    }
    json.dump(document, out, indent=2)
    out.write("\n")


def _github(result: RepositoryResult, out: TextIO, verbose: bool = False) -> None:
    """GitHub Actions workflow commands: annotations on the pull request's files."""
    for zone in (ZoneResult("", "", None, result.findings), *result.zones):
        for finding in zone.findings:
            message = f"{finding.message} [{finding.code}]".replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
            location = f"file={finding.file or zone.file or '.'}"
            if finding.line:
                location += f",line={finding.line}"
            out.write(f"::{finding.severity} {location}::{message}\n")
    _summary(result, out)


def _text(result: RepositoryResult, out: TextIO, verbose: bool = False) -> None:
    for finding in result.findings:
        out.write(finding.to_text() + "\n")
    for zone in result.zones:
        for finding in zone.findings:
            out.write(finding.to_text() + "\n")
        if verbose and not zone.findings:
            out.write(f"{zone.file}: ok: {zone.origin} ({_records(zone)} records)\n")
    if verbose:
        for skipped in result.skipped:
            out.write(f"{skipped}: skipped (not a zone file)\n")
    _summary(result, out)


def _summary(result: RepositoryResult, out: TextIO) -> None:
    failed = sum(z.has_errors for z in result.zones)
    out.write(f"{len(result.zones)} zone(s), {failed} with errors; "
              f"{result.error_count} error(s), {result.warning_count} warning(s)\n")
