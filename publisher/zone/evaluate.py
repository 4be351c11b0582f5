"""Evaluate a zone repository: every zone file read (Lua sandbox or BIND reader), validated, cloned.

This is the pure part of the pipeline that ``lint``, ``build`` and publishing share: it reads files
and returns immutable ``ZoneResult``s; it never talks to a server.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from publisher.zone.bind_zone import read_bind_zone
from publisher.zone.lua_zone import evaluate_lua_zones
from publisher.model import ERROR, Finding, IgnoreRule, Record, ZoneResult
from publisher.zone.repository import BIND, LUA, ZoneSource, discover, origin_from_file_name, zone_name_problem
from publisher.zone.sandbox import SandboxLimits
from publisher.zone.validate import validate_zone


@dataclass(frozen=True)
class EvaluationOptions:
    """Knobs of evaluation; the publisher fills them from configuration."""

    default_ttl: int = 3600
    max_ttl: int = 604800
    lua_limits: SandboxLimits = field(default_factory=SandboxLimits)
    ttl_overrides: tuple[tuple[str, int], ...] = ()  # (zone origin, default TTL) pairs from configuration
    server: str = "bind"  # whose verdict makes a finding an error: "bind" or "knot" (validate.SERVERS)

    def ttl_for(self, origin: str) -> int:
        return dict(self.ttl_overrides).get(origin, self.default_ttl)


@dataclass(frozen=True)
class RepositoryResult:
    """Every zone of a repository, evaluated and validated, plus the files that are not zones."""

    path: Path
    zones: tuple[ZoneResult, ...]
    skipped: tuple[str, ...] = ()

    @property
    def error_count(self) -> int:
        return sum(f.is_error for z in self.zones for f in z.findings)

    @property
    def warning_count(self) -> int:
        return sum(not f.is_error for z in self.zones for f in z.findings)


def evaluate_repository(path: Path, options: EvaluationOptions = EvaluationOptions()) -> RepositoryResult:
    """Evaluate and validate every zone of the repository at ``path``; one bad zone never stops
    the others."""
    repo = Path(path).resolve()
    layout = discover(repo)
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
                                                    default_ttl=options.ttl_for(source.origin))

    # Layout mistakes (a bad .clones line, a second file for the same zone) belong to that zone.
    layout_findings: dict[str, list[Finding]] = {}
    for finding in layout.findings:
        layout_findings.setdefault(finding.zone, []).append(finding)

    zones: list[ZoneResult] = []
    for source in layout.sources:
        result = _finish(source, results[source.origin], options)
        result = result.with_findings(layout_findings.pop(source.origin, ()))
        zones.append(result)
        for clone, line in source.clones:
            if clone in results:
                continue  # the duplicate-zone finding already blocks the real zone
            cloned = _clone(source, result, clone, line, options)
            zones.append(cloned.with_findings(layout_findings.pop(clone, ())))
    zones.extend(ZoneResult(origin, found[0].file, None, tuple(found)) for origin, found in layout_findings.items())
    zones.sort(key=lambda z: z.origin)
    return RepositoryResult(repo, tuple(zones), layout.skipped)


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
    if path.suffix == ".lua":
        [result] = evaluate_lua_zones(path.resolve().parent, [(path.resolve(), origin)],
                                      default_ttl=options.default_ttl, limits=options.lua_limits)
        result = _relabel(result, display, path.name)
        standalone = False
    else:
        # On its own a master file gets no configured default TTL: $TTL, or BIND's fallbacks.
        result = read_bind_zone(path, origin, repo=None, display_file=display, default_ttl=None,
                                server=options.server)
        standalone = True
    if result.zone is None:
        return result
    return result.with_findings(validate_zone(result.zone, standalone=standalone, max_ttl=options.max_ttl,
                                              server=options.server))


def _finish(source: ZoneSource, result: ZoneResult, options: EvaluationOptions) -> ZoneResult:
    """Merge ``<zone>.yml`` settings and validate."""
    if result.zone is None:
        return result
    zone = result.zone
    if source.secondaries:
        merged = tuple(dict.fromkeys(zone.secondaries + source.secondaries))
        zone = replace(zone, secondaries=merged)
    zone = replace(zone, file=source.file)
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
        zone = replace(zone, file=display, records=tuple(r._replace(file=fix(r.file)) if r.file == file_name else r
                                                         for r in zone.records))
    return ZoneResult(result.origin, display, zone, findings)
