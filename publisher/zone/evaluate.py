"""Evaluate a zone repository: every zone file read (Lua sandbox or BIND reader), validated, cloned.

This is the pure part of the pipeline that ``lint``, ``build`` and publishing share: it reads files
and returns immutable ``ZoneResult``s; it never talks to a server.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from publisher.zone.bind_zone import read_bind_zone
from publisher.zone.lua_zone import evaluate_lua_zones
from publisher.model import ERROR, Finding, IgnoreRule, Record, ZoneResult, cap_findings, records_from_rows
from publisher.zone.repository import (BIND, LUA, MAX_ZONE_FILE_BYTES, Layout, RefusedFile, ZoneSource, confined_file,
                                       discover, origin_from_file_name, zone_name_problem)
from publisher.zone.sandbox import SandboxLimits
from publisher.zone.validate import validate_zone


@dataclass(frozen=True)
class EvaluationOptions:
    """Knobs of evaluation; the publisher fills them from configuration."""

    default_ttl: int = 3600
    max_ttl: int = 604800
    lua_limits: SandboxLimits = field(default_factory=SandboxLimits)
    ttl_overrides: tuple[tuple[str, int], ...] = ()  # (zone origin, default TTL) pairs from configuration
    max_file_bytes: int = MAX_ZONE_FILE_BYTES  # a zone file with everything it includes
    server: str = "bind"  # whose verdict makes a finding an error: "bind" or "knot" (validate.SERVERS)

    def ttl_for(self, origin: str) -> int:
        return dict(self.ttl_overrides).get(origin, self.default_ttl)


@dataclass(frozen=True)
class RepositoryResult:
    """Every zone of a repository, evaluated and validated, plus the files that are not zones."""

    path: Path
    zones: tuple[ZoneResult, ...]
    skipped: tuple[str, ...] = ()
    findings: tuple[Finding, ...] = ()  # about the repository as a whole (zone ""), e.g. no zones

    @property
    def error_count(self) -> int:
        return sum(f.is_error for f in self.all_findings())

    @property
    def warning_count(self) -> int:
        return sum(not f.is_error for f in self.all_findings())

    def all_findings(self) -> list[Finding]:
        return [*self.findings, *(f for z in self.zones for f in z.findings)]


def evaluate_repository(path: Path, options: EvaluationOptions = EvaluationOptions(),
                        layout: Layout | None = None) -> RepositoryResult:
    """Evaluate and validate every zone of the repository at ``path``; one bad zone never stops
    the others.  ``layout`` is ``discover(path)`` when the caller has listed the repository already."""
    repo = Path(path).resolve()
    if layout is None:
        layout = discover(repo, options.max_file_bytes)
    results: dict[str, ZoneResult] = {}

    # Lua zones go to the sandbox in batches, one per default TTL (usually a single batch).
    lua_batches: dict[int, list[ZoneSource]] = {}
    for source in layout.sources:
        if source.kind == LUA:
            lua_batches.setdefault(options.ttl_for(source.origin), []).append(source)
    for ttl, batch in lua_batches.items():
        evaluated = evaluate_lua_zones(repo, [(s.path, s.origin) for s in batch],
                                       default_ttl=ttl, limits=options.lua_limits)
        for source, result in zip(batch, evaluated):
            results[source.origin] = result
    for source in layout.sources:
        if source.kind == BIND:
            results[source.origin] = read_bind_zone(source.path, source.origin, repo=repo, display_file=source.file,
                                                    default_ttl=options.ttl_for(source.origin),
                                                    max_records=options.lua_limits.max_records,
                                                    max_bytes=options.max_file_bytes,
                                                    cpu_seconds=options.lua_limits.cpu_seconds, server=options.server)

    # Layout mistakes (a bad .clones line, a second file for the same zone) belong to that zone.
    layout_findings: dict[str, list[Finding]] = {}
    for finding in layout.findings:
        layout_findings.setdefault(finding.zone, []).append(finding)

    repository_findings = layout_findings.pop("", [])
    zones: list[ZoneResult] = []
    for source in layout.sources:
        result = _finish(source, results[source.origin], options)
        result = result.with_findings(layout_findings.pop(source.origin, ()))
        result = result.with_findings(_clone_budget(source, result, options.lua_limits.max_records))
        zones.append(result)
        for clone, line in source.clones:
            if clone in results:
                continue  # the duplicate-zone finding already blocks the real zone
            cloned = _clone(source, result, clone, line, options)
            zones.append(cloned.with_findings(layout_findings.pop(clone, ())))
    zones.extend(ZoneResult(origin, found[0].file, None, tuple(found)) for origin, found in layout_findings.items())
    zones.sort(key=lambda z: z.origin)
    if not zones:
        repository_findings.append(Finding(ERROR, "no-zones", "", "", 0,
                                           "no zone files found: a zone file is named after its zone, "
                                           "e.g. example.com.lua, example.com.bind or example.com.zone, at the "
                                           "top level of the repository"))
    return RepositoryResult(repo, tuple(_capped(z) for z in zones), layout.skipped,
                            cap_findings(repository_findings))


def _capped(result: ZoneResult) -> ZoneResult:
    """What a zone reports is bounded, whatever its files hold."""
    return replace(result, findings=cap_findings(result.findings))


def _clone_budget(source: ZoneSource, result: ZoneResult, max_records: int) -> list[Finding]:
    """Clones are copies of the zone's records and count against its record limit."""
    if not source.clones or result.zone is None:
        return []
    records = len(result.zone.records)
    total = records * (1 + len(source.clones))
    if total <= max_records:
        return []
    return [Finding(ERROR, "zone-record-limit", source.origin, source.clones_file, 0,
                    f"more than {max_records} records, the configured maximum: {records} records cloned "
                    f"{len(source.clones)} times make {total}; remove clones or records")]


def evaluate_file(path: Path, origin: str | None = None, options: EvaluationOptions = EvaluationOptions(),
                  display_file: str | None = None) -> ZoneResult:
    """Evaluate one zone file on its own, as ``named-checkzone`` does.

    A BIND file must then carry its own SOA and apex NS; a Lua file gets them from configuration
    at publish time, as in a repository.  Templates next to a Lua file are used.
    """
    path = Path(path)
    display = display_file if display_file is not None else str(path)
    origin = (origin.lower().rstrip(".") + ".") if origin else origin_from_file_name(path.name)
    problem = zone_name_problem(origin)
    if problem:
        return ZoneResult(origin, display, None, (Finding(ERROR, "invalid-zone-name", origin, display, 0,
                                                          f"{problem}; pass the zone name with --zone"),))
    try:
        confined_file(path, Path(os.path.realpath(path)).parent, options.max_file_bytes, display)
    except RefusedFile as refused:
        return ZoneResult(origin, display, None, (Finding(ERROR, refused.code, origin, display, 0, str(refused)),))
    if path.suffix == ".lua":
        [result] = evaluate_lua_zones(path.resolve().parent, [(path.resolve(), origin)],
                                      default_ttl=options.default_ttl, limits=options.lua_limits)
        result = _relabel(result, display, path.name)
        standalone = False
    else:
        # On its own a master file gets no configured default TTL: $TTL, or BIND's fallbacks.
        result = read_bind_zone(path, origin, repo=None, display_file=display, default_ttl=None,
                                max_records=options.lua_limits.max_records, max_bytes=options.max_file_bytes,
                                cpu_seconds=options.lua_limits.cpu_seconds, server=options.server)
        standalone = True
    if result.zone is None:
        return _capped(result)
    return _capped(result.with_findings(validate_zone(result.zone, standalone=standalone, max_ttl=options.max_ttl,
                                                           server=options.server)))


def _finish(source: ZoneSource, result: ZoneResult, options: EvaluationOptions) -> ZoneResult:
    """Merge ``<zone>.yml`` settings and validate."""
    if result.zone is None:
        return result
    zone = result.zone
    if source.secondaries:
        merged = tuple(dict.fromkeys(zone.secondaries + source.secondaries))
        zone = replace(zone, secondaries=merged)
    zone = replace(zone, file=source.file, kind=source.kind)
    validated = validate_zone(zone, standalone=False, max_ttl=options.max_ttl, server=options.server)
    return ZoneResult(result.origin, source.file, zone, result.findings + validated)


def _clone(source: ZoneSource, result: ZoneResult, clone: str, line: int,
           options: EvaluationOptions) -> ZoneResult:
    """A ``.clones`` entry: the same records with owner names moved under ``clone``.

    LuaDNS copies the records rather than re-running the Lua, so record contents stay as they are.
    A clone of a zone with errors carries one error pointing at the source zone.
    """
    if result.has_errors or result.zone is None:
        finding = Finding(ERROR, "clone-source-has-errors", clone, source.clones_file, line,
                          f"not published: it clones {source.origin}, which has errors (see {source.file})")
        return ZoneResult(clone, source.clones_file, None, (finding,))
    zone = result.zone
    old_suffix = zone.origin
    cut = len(old_suffix)

    def move(name: str) -> str:
        return name[:-cut] + clone if name.endswith(old_suffix) else name

    records = tuple(Record(move(r.name), r.type, r.ttl, r.data, r.file, r.line) for r in zone.records)
    ignores = tuple(IgnoreRule(move(i.pattern), i.type) for i in zone.ignores)
    services = tuple(s._replace(name=move(s.name)) if s.kind == "redirect" else s for s in zone.services)
    cloned = replace(zone, origin=clone, records=records, ignores=ignores, services=services, clone_of=zone.origin)
    validated = validate_zone(cloned, standalone=False, max_ttl=options.max_ttl, server=options.server)
    warnings = tuple(f._replace(zone=clone) for f in result.findings)
    return ZoneResult(clone, source.file, cloned, warnings + validated)


def _relabel(result: ZoneResult, display: str, file_name: str) -> ZoneResult:
    """Show the zone file as the user named it on the command line."""
    def fix(file: str) -> str:
        return display if file == file_name else file

    findings = tuple(f._replace(file=fix(f.file)) for f in result.findings)
    zone = result.zone
    if zone is not None:
        # A million records: rebuilt as rows, a fifth of the cost of NamedTuple._replace each.
        records = records_from_rows((name, rtype, ttl, data, display if file == file_name else file, line)
                                    for name, rtype, ttl, data, file, line in zone.records)
        zone = replace(zone, file=display, records=records)
    return ZoneResult(result.origin, display, zone, findings)

