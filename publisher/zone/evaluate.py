"""Evaluate a zone repository: every zone file read (Lua sandbox or BIND reader), validated, cloned.

This is the pure part of the pipeline that ``lint``, ``build`` and publishing share: it reads files
and returns immutable ``ZoneResult``s; it never talks to a server.
"""

from __future__ import annotations

import os
from dataclasses import astuple, dataclass, field, replace
from pathlib import Path
from typing import Mapping, Sequence

from publisher.zone.evaluation_cache import (EvaluationCache, ZoneEvaluation, content_digest, entry_key,
                                             read_with_signature)
from publisher.model import ERROR, Finding, IgnoreRule, Record, ZoneResult, cap_findings, records_from_rows
from publisher.zone.repository import (BIND, LUA, MAX_ZONE_FILE_BYTES, Layout, ReadLog, RefusedFile, Templates,
                                       ZoneSource, confined_file, discover, origin_from_file_name, read_templates,
                                       zone_name_problem)
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
                        layout: Layout | None = None, cache: EvaluationCache | None = None) -> RepositoryResult:
    """Evaluate and validate every zone of the repository at ``path``; one bad zone never stops
    the others.  ``layout`` is ``discover(path)`` when the caller has listed the repository already.
    With ``cache``, a zone whose files and options are as when it was last evaluated is taken
    from it (see ``evaluation_cache``), and only the others are evaluated."""
    repo = Path(path).resolve()
    if layout is None:
        layout = discover(repo, options.max_file_bytes)

    # Layout mistakes (a bad .clones line, a second file for the same zone) belong to that zone.
    layout_findings: dict[str, list[Finding]] = {}
    for finding in layout.findings:
        layout_findings.setdefault(finding.zone, []).append(finding)
    repository_findings = layout_findings.pop("", [])
    origins = {source.origin for source in layout.sources}
    own_findings = {source.origin: tuple(layout_findings.pop(source.origin, ())) for source in layout.sources}
    evaluations = _evaluate_sources(repo, layout.sources, options, own_findings, origins, cache)

    zones: list[ZoneResult] = []
    for source in layout.sources:
        evaluation = evaluations[source.origin]
        zones.append(evaluation.result)
        cloned = iter(evaluation.clones)
        for clone, _line in _cloned(source, origins):
            zones.append(next(cloned).with_findings(layout_findings.pop(clone, ())))
    zones.extend(ZoneResult(origin, found[0].file, None, tuple(found)) for origin, found in layout_findings.items())
    zones.sort(key=lambda z: z.origin)
    if not zones:
        repository_findings.append(Finding(ERROR, "no-zones", "", "", 0,
                                           "no zone files found: a zone file is named after its zone, "
                                           "e.g. example.com.lua, example.com.bind or example.com.zone, at the "
                                           "top level of the repository"))
    return RepositoryResult(repo, tuple(_capped(z) for z in zones), layout.skipped,
                            cap_findings(repository_findings))


def _cloned(source: ZoneSource, origins: set[str]) -> tuple[tuple[str, int], ...]:
    """The ``.clones`` entries that make a zone: one that is also a zone file is not (the
    duplicate-zone finding already blocks the real zone)."""
    return tuple((clone, line) for clone, line in source.clones if clone not in origins)


def _evaluate_sources(repo: Path, sources: Sequence[ZoneSource], options: EvaluationOptions,
                      own_findings: Mapping[str, tuple[Finding, ...]], origins: set[str],
                      cache: EvaluationCache | None) -> dict[str, ZoneEvaluation]:
    """Each source's ``ZoneEvaluation``: from ``cache`` when it holds one for exactly these
    inputs, else evaluated (Lua zones in one sandbox batch per default TTL) and stored there."""
    templates = read_templates(repo) if any(s.kind == LUA for s in sources) else ((), ())
    keys = _keys(repo, sources, options, own_findings, origins, templates) if cache is not None else {}
    evaluations: dict[str, ZoneEvaluation] = {}
    for origin, (key, _) in keys.items():
        hit = cache.load(key, repo)
        if hit is not None:
            evaluations[origin] = hit
    missing = [s for s in sources if s.origin not in evaluations]
    results, logs = _read_zones(repo, missing, options, templates,
                                {s.path: keys[s.origin][1][0] for s in missing if s.origin in keys})
    for source in missing:
        result = _finish(source, results[source.origin], options)
        result = result.with_findings(own_findings[source.origin])
        result = result.with_findings(_clone_budget(source, result, options.lua_limits.max_records))
        clones = tuple(_clone(source, result, clone, line, options) for clone, line in _cloned(source, origins))
        evaluations[source.origin] = evaluation = ZoneEvaluation(result, clones)
        if source.origin in keys:
            key, (_, resolved, signature) = keys[source.origin]
            cache.store(key, evaluation, repo, read=((resolved, signature),), log=logs.get(source.origin))
    if cache is not None:
        cache.prune()
    return evaluations


def _keys(repo: Path, sources: Sequence[ZoneSource], options: EvaluationOptions,
          own_findings: Mapping[str, tuple[Finding, ...]], origins: set[str],
          templates: Templates) -> dict[str, tuple[str, tuple[bytes, Path, tuple[int, ...]]]]:
    """Each zone's cache key, with the zone file as it was read for it (bytes, resolved path,
    signature).  A zone file that cannot be read so has no key: it is evaluated, and its finding
    says why it cannot be read."""
    templates_digest = _templates_digest(templates)
    keys = {}
    for source in sources:
        read = read_with_signature(source.path, options.max_file_bytes)
        if read is None:
            continue
        data, resolved, _ = read
        keys[source.origin] = (entry_key(content_digest(data), templates_digest if source.kind == LUA else "",
                                         _source_fingerprint(repo, source, resolved, origins),
                                         _options_fingerprint(source, options), own_findings[source.origin]),
                               read)
    return keys


def _read_zones(repo: Path, sources: Sequence[ZoneSource], options: EvaluationOptions, templates: Templates,
                contents: Mapping[Path, bytes]) -> tuple[dict[str, ZoneResult], dict[str, ReadLog]]:
    """Each zone file read by its reader (``contents``: Lua zone files read already), and what each
    BIND read looked at."""
    results: dict[str, ZoneResult] = {}
    logs: dict[str, ReadLog] = {}
    # The readers are imported here: a plan whose zones all come from the cache starts without them.
    if any(s.kind == BIND for s in sources):
        from publisher.zone.bind_zone import read_bind_zone
    if any(s.kind == LUA for s in sources):
        from publisher.zone.lua_zone import evaluate_lua_zones
    lua_batches: dict[int, list[ZoneSource]] = {}
    for source in sources:
        if source.kind == LUA:
            lua_batches.setdefault(options.ttl_for(source.origin), []).append(source)
        elif source.kind == BIND:
            logs[source.origin] = log = ReadLog()
            results[source.origin] = read_bind_zone(source.path, source.origin, repo=repo, display_file=source.file,
                                                    default_ttl=options.ttl_for(source.origin),
                                                    max_records=options.lua_limits.max_records,
                                                    max_bytes=options.max_file_bytes,
                                                    cpu_seconds=options.lua_limits.cpu_seconds, server=options.server,
                                                    log=log)
    for ttl, batch in lua_batches.items():
        evaluated = evaluate_lua_zones(repo, [(s.path, s.origin) for s in batch], default_ttl=ttl,
                                       limits=options.lua_limits, templates=templates, sources=contents)
        results.update((s.origin, result) for s, result in zip(batch, evaluated))
    return results, logs


def _templates_digest(templates: Templates) -> str:
    files, problems = templates
    return entry_key([[name, content_digest(data)] for name, data in files], [list(p) for p in problems])


def _source_fingerprint(repo: Path, source: ZoneSource, resolved: Path, origins: set[str]) -> list:
    """What the repository listing says about the zone: its ``.clones`` (those that make zones)
    and ``<zone>.yml`` as read, and where its file resolves (the base of relative $INCLUDEs)."""
    try:
        where = resolved.relative_to(repo).as_posix()
    except ValueError:
        where = str(resolved)
    return [source.origin, source.file, source.kind, where, [list(c) for c in _cloned(source, origins)],
            source.clones_file, list(source.secondaries)]


def _options_fingerprint(source: ZoneSource, options: EvaluationOptions) -> list:
    """The options that shape this zone's result (only its own default TTL, so that another
    zone's TTL override does not invalidate it)."""
    return [options.ttl_for(source.origin), options.max_ttl, list(astuple(options.lua_limits)),
            options.max_file_bytes, options.server]


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
        from publisher.zone.lua_zone import evaluate_lua_zones

        [result] = evaluate_lua_zones(path.resolve().parent, [(path.resolve(), origin)],
                                      default_ttl=options.default_ttl, limits=options.lua_limits)
        result = _relabel(result, display, path.name)
        standalone = False
    else:
        from publisher.zone.bind_zone import read_bind_zone

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

