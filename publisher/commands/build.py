"""`zone-publisher build [PATH] --out DIR [--config FILE [--repository NAME]]`: canonical BIND text
for every zone without errors, with the SOA and apex NS that ``apply`` publishes (with
``[[repository]]`` tables, those of ``--repository``, and none of the zones it may not publish).
With ``--config`` zones come from its ``[cache]`` of evaluations where their files did not change,
as for ``plan``.

The SOA and the apex NS come from configuration, as at publish time, through the orchestrator's
own definition (``managed_records``, ``soa.zone_soa``): ``--config FILE``, or else the embedded
default configuration (``publisher/default.toml``, the one ``make run`` uses), whose name servers
are under ``nameservers.example.``.  Each file's header says which.  The serial is the one
``apply`` gives a zone it creates today (``YYYYMMDD00``); later serials are managed per provider.
"""

from __future__ import annotations

import os
import sys
import tempfile
from argparse import Namespace
from dataclasses import replace
from pathlib import Path

from publisher.commands.apply import select_repository
from publisher.config import Config, ConfigError, load_config
from publisher.publish.orchestrator import evaluate_configured, managed_records, ownership_refusal
from publisher.publish.ownership import OwnershipStore
from publisher.publish.soa import next_serial, zone_soa
from publisher.zone.render import zone_to_text


def run(args: Namespace) -> int:
    repo = Path(args.path)
    if not repo.is_dir():
        print(f"zone-publisher build: {args.path}: not a directory", file=sys.stderr)
        return 2
    config_file = getattr(args, "config", None)
    try:
        config = load_config(config_file) if config_file else Config.default(repo)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if not config_file:
        # The embedded default's paths are under the repository: no evaluation cache inside it.
        config = replace(config, cache=replace(config.cache, enabled=False))
    for warning in config.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    config = select_repository(config, getattr(args, "repository", None))
    if config is None:
        return 2
    source = (f"configuration {config_file}" if config_file else
              "the embedded default configuration (publisher/default.toml); pass --config FILE for yours")
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    result = evaluate_configured(config, repo)
    serial = next_serial(None)
    written = errors = 0
    owners: dict[str, str] = {}
    # A repository of an instance: never another's zones (a fresh SQLite file has no owners yet).
    if config.name and (config.state.url or Path(config.state.path).exists()):
        with OwnershipStore(config.state.location) as ownership:
            owners = ownership.owners()
    for zone_result in result.zones:
        findings = zone_result.findings
        zone = zone_result.zone
        refusal = ownership_refusal(config, zone_result.origin, zone_result.file, owners)
        if refusal is not None:
            findings += (refusal,)
        if zone is not None and not zone_result.has_errors:
            records, managed = managed_records(config, zone)
            findings += managed
        for finding in findings:
            print(finding.to_text(), file=sys.stderr)
        if zone is None or any(f.is_error for f in findings):
            print(f"{zone_result.origin}: not built (errors above)", file=sys.stderr)
            errors += 1
            continue
        soa = zone_soa(config, zone.origin, serial, records)
        header = (f"; SOA and apex NS as `apply` publishes them, from {source}\n"
                  f"; serial {serial}: a new zone's first; apply manages it per provider\n")
        target = out_dir / f"{zone_result.origin.rstrip('.')}.zone"
        write_atomically(target, zone_to_text(replace(zone, records=records), soa, header=header))
        print(f"{target} ({len(records) + 1} records)")
        written += 1
    print(f"built {written} of {len(result.zones)} zone(s) into {out_dir}")
    return 1 if errors else 0


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
