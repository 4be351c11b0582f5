"""`zone-publisher build [PATH] --out DIR`: canonical BIND text for every zone without errors.

The SOA of a Lua zone comes from configuration at publish time; ``build`` has no configuration,
so it writes a placeholder SOA (serial 1) that makes each file load in ``named`` as it is.
"""

from __future__ import annotations

import os
import sys
import tempfile
from argparse import Namespace
from pathlib import Path

from publisher.zone.evaluate import evaluate_repository
from publisher.model import Record, Zone
from publisher.zone.render import zone_to_text

_PLACEHOLDER_NS = "ns1.invalid."


def run(args: Namespace) -> int:
    repo = Path(args.path)
    if not repo.is_dir():
        print(f"zone-publisher build: {args.path}: not a directory", file=sys.stderr)
        return 2
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    result = evaluate_repository(repo)
    written = 0
    for zone_result in result.zones:
        for finding in zone_result.findings:
            print(finding.to_text(), file=sys.stderr)
        if zone_result.has_errors or zone_result.zone is None:
            print(f"{zone_result.origin}: not built (errors above)", file=sys.stderr)
            continue
        target = out_dir / f"{zone_result.origin.rstrip('.')}.zone"
        write_atomically(target, zone_to_text(*_with_soa_and_ns(zone_result.zone)))
        print(f"{target} ({len(zone_result.zone.records)} records)")
        written += 1
    print(f"built {written} of {len(result.zones)} zone(s) into {out_dir}")
    return 1 if result.error_count else 0


def _with_soa_and_ns(zone: Zone) -> tuple[Zone, Record | None]:
    """Give a zone without SOA or apex NS placeholders, so the file stands alone."""
    has_soa = any(r.type == "SOA" for r in zone.records)
    has_ns = any(r.type == "NS" and r.name == zone.origin for r in zone.records)
    records = zone.records
    if not has_ns:
        records += (Record(zone.origin, "NS", 3600, _PLACEHOLDER_NS),)
    soa = None if has_soa else Record(zone.origin, "SOA", 3600,
                                      f"{_PLACEHOLDER_NS} hostmaster.{zone.origin} 1 3600 600 1209600 300")
    return Zone(zone.origin, records, zone.file), soa


def write_atomically(path: Path, text: str) -> None:
    """Write via a temporary file in the same directory and rename, so readers never see half a file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
