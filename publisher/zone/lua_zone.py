"""Evaluate LuaDNS-style Lua zone files into ``Zone`` records (see docs/lua-zone-language.md).

Each zone runs in the sandbox (``publisher.zone.sandbox``): the repository's ``templates.lua`` (legacy)
and ``templates/*.lua`` in file-name order, then the zone file, in one fresh environment.  The
record functions are Lua code (``lua/prelude.lua``) that already produce canonical data for the
common types; this module turns the columns they return into ``Record`` tuples, canonicalises the
rest through ``publisher.rdata``, and turns Lua errors into findings with helpful messages.

Record functions return ``{name=<the name as written>, type=, content=<canonical data>, ttl=}``.
Records carry the file and line of the zone or template line that called the record function
(a template helper's own line; for ``require("templates")`` methods, the zone line calling them).
Every zone runs in Lua 5.1, the version LuaDNS runs; the record functions exist only in the
prelude (there is no second implementation here).
"""

from __future__ import annotations

import difflib
import itertools
import os
import re
import threading
from pathlib import Path
from typing import Iterator, Mapping, Sequence
from urllib.parse import unquote

from publisher.model import (ERROR, Finding, IgnoreRule, Record, ServiceRecord, Zone, ZoneResult,
                             records_from_rows)
from publisher.zone.repository import Templates, read_templates
from publisher.rdata import RdataError, canonical_ipv6, canonical_rdata, canonical_type
from publisher.zone.sandbox import Chunk, LuaSandbox, SandboxLimits, SandboxResult

__all__ = ["evaluate_lua_zones", "evaluate_lua_zone", "read_templates", "Templates", "SandboxLimits"]

RECORD_FUNCTIONS = ("a", "aaaa", "cname", "ns", "ptr", "txt", "spf", "mx", "srv", "caa", "sshfp", "tlsa",
                    "ds", "alias", "redirect", "forward", "slave", "ignore", "https", "svcb", "dname", "rr")
KNOWN_FUNCTIONS = RECORD_FUNCTIONS + ("concat", "require", "pairs", "ipairs", "tostring", "tonumber",
                                      "unpack", "pcall", "error", "assert", "type", "select", "print")
TEMPLATE_METHODS = ("google_workspace", "github_pages", "netlify", "office365", "mailgun", "migadu",
                    "mailbox_org", "shopify", "wordpress")
# Names people reach for that mean something else here.
FUNCTION_HINTS = {
    "aname": "an ALIAS record is written alias(name, target)",
    "flatten": "an ALIAS record is written alias(name, target)",
    "soa": "the SOA record is generated from the configuration; remove this call",
    "txt_record": "TXT records are written txt(name, text)",
}


def evaluate_lua_zones(repo: Path, zones: Sequence[tuple[Path, str]], *, default_ttl: int = 3600,
                       limits: SandboxLimits = SandboxLimits(), templates: Templates | None = None,
                       sources: Mapping[Path, bytes] | None = None) -> list[ZoneResult]:
    """Evaluate each ``(zone file, origin)`` of ``repo`` with one reused sandbox worker.

    A zone that fails (syntax, runtime error, a limit) has ``zone=None`` and an error finding;
    it never affects the others.  ``templates`` (``read_templates(repo)``) and ``sources`` (zone
    file bytes by path) are what the caller has read already, so that what it hashed is what runs.
    """
    repo = Path(repo)
    template_files, template_findings = templates if templates is not None else read_templates(repo)
    results: list[ZoneResult | None] = [None] * len(zones)
    pending = iter(range(len(zones)))
    taking = threading.Lock()

    def work() -> None:
        # Each thread owns one sandbox worker process and takes the next zone as it finishes one,
        # so a slow zone holds up one worker only.
        with LuaSandbox(limits) as sandbox:
            while True:
                with taking:
                    index = next(pending, None)
                if index is None:
                    return
                path, origin = zones[index]
                source = sources.get(Path(path)) if sources is not None else None
                results[index] = _evaluate(sandbox, repo, Path(path), origin, template_files, template_findings,
                                           default_ttl, source)

    workers = sandbox_workers(len(zones))
    if workers == 1:
        work()
    else:
        threads = [threading.Thread(target=work, name=f"lua-sandbox-{n}", daemon=True) for n in range(workers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    return results  # type: ignore[return-value]  # every index was filled


# Zones per extra sandbox worker: below this, starting another process costs more than it saves.
ZONES_PER_SANDBOX_WORKER = 32
MAX_SANDBOX_WORKERS = 4


def sandbox_workers(zone_count: int) -> int:
    """How many sandbox worker processes evaluate ``zone_count`` zones side by side: one per CPU
    this process may use (at most ``MAX_SANDBOX_WORKERS``), and one per ``ZONES_PER_SANDBOX_WORKER``
    zones.  Each zone still runs alone in its own fresh Lua runtime, under the same limits."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, MAX_SANDBOX_WORKERS, zone_count // ZONES_PER_SANDBOX_WORKER))


def evaluate_lua_zone(repo: Path, path: Path, origin: str, *, default_ttl: int = 3600,
                      limits: SandboxLimits = SandboxLimits()) -> ZoneResult:
    """Evaluate one Lua zone file of ``repo`` (templates included)."""
    return evaluate_lua_zones(repo, [(path, origin)], default_ttl=default_ttl, limits=limits)[0]


# --------------------------------------------------------------------------------------------


def _relative(repo: Path, path: Path) -> str:
    try:
        return path.resolve().relative_to(repo.resolve()).as_posix()
    except ValueError:
        return path.name


def _chunk_name(name: str) -> str:
    # Lua shortens chunk names to 59 characters in messages; keep them short and unique.
    return name if len(name) <= 55 else "..." + name[-52:]


def _evaluate(sandbox: LuaSandbox, repo: Path, path: Path, origin: str, templates: Sequence[tuple[str, bytes]],
              template_problems: Sequence[tuple[str, str]], default_ttl: int, source: bytes | None) -> ZoneResult:
    origin = origin.lower().rstrip(".") + "."
    file = _relative(repo, path)
    findings: list[Finding] = [Finding(ERROR, "template-not-regular-file", origin, name, 0, message)
                               for name, message in template_problems]
    try:
        resolved = path.resolve()
        if not resolved.is_file() or (path.is_symlink() and not resolved.is_relative_to(repo.resolve())):
            raise OSError("not a regular file inside the repository")
        if source is None:
            source = resolved.read_bytes()
    except OSError as error:
        findings.append(Finding(ERROR, "zone-file-unreadable", origin, file, 0, f"cannot read {file}: {error}"))
        return ZoneResult(origin, file, None, tuple(findings))
    files = [name for name, _ in templates] + [file]
    sources = [text for _, text in templates] + [source]
    chunks = [Chunk(_chunk_name(name), text) for name, text in zip(files, sources)]
    result = sandbox.evaluate(origin, chunks, default_ttl=default_ttl)
    return _zone_result(result, origin, file, files, chunks, sources, findings, sandbox.limits)


def _zone_result(result: SandboxResult, origin: str, file: str, files: list[str], chunks: list[Chunk],
                 sources: list[bytes], findings: list[Finding], limits: SandboxLimits) -> ZoneResult:
    columns = result.columns or {}
    # files[0] is used for position 0 (unknown): attribute it to the zone file.
    by_index = [file] + files
    findings += _lua_findings(columns.get("findings", b""), origin, by_index)
    if result.finding_count > 1000:
        findings.append(Finding(ERROR, "too-many-findings", origin, file, 0,
                                f"{result.finding_count - 1000} more problems not shown"))
    failure = _failure(result, origin, file, files, chunks, sources, limits)
    if failure is not None:
        findings.append(failure)
        return ZoneResult(origin, file, None, tuple(findings))
    records = _records(columns, result.count, origin, by_index, findings)
    services = tuple(_services(columns.get("services", b""), by_index))
    ignores = tuple(_ignores(columns.get("ignores", b""), origin, by_index, findings))
    secondaries = tuple(dict.fromkeys(_text(columns.get("secondaries", b"")).split("\n"))) if columns.get("secondaries") else ()
    secondary_ns = tuple(dict.fromkeys(_text(columns["secondary_ns"]).split("\n"))) if columns.get("secondary_ns") else ()
    zone = Zone(origin, records, file, secondaries=secondaries, ignores=ignores, services=services,
                secondary_nameservers=secondary_ns)
    findings.sort(key=lambda finding: (finding.file != file, finding.file, finding.line))  # zone file first
    return ZoneResult(origin, file, zone, tuple(findings))


def _text(data: bytes | memoryview) -> str:
    return str(data, "utf-8", "surrogateescape")


def _rows(data: bytes, width: int) -> list[list[str]]:
    if not data:
        return []
    return [[unquote(field, errors="surrogateescape") for field in line.split("\t")][:width]
            for line in _text(data).split("\n")]


def _lua_findings(data: bytes, origin: str, by_index: list[str]) -> list[Finding]:
    return [Finding(severity, code, origin, by_index[int(index)] if int(index) < len(by_index) else by_index[0],
                    int(line), message)
            for severity, code, index, line, message in _rows(data, 5)]


def _services(data: bytes, by_index: list[str]) -> list[ServiceRecord]:
    return [ServiceRecord(kind, name, target, int(mode), int(ttl), by_index[int(index)], int(line))
            for kind, name, target, mode, ttl, index, line in _rows(data, 7)]


def _ignores(data: bytes, origin: str, by_index: list[str], findings: list[Finding]) -> Iterator[IgnoreRule]:
    """The ignore() rules; a type no server knows (say "TXTT") is an error at its line."""
    for pattern, rtype, index, line in _rows(data, 4):
        if rtype not in ("*", "ALIAS"):
            try:
                rtype = canonical_type(rtype)
            except RdataError:
                findings.append(Finding(ERROR, "unknown-type", origin, by_index[int(index)], int(line),
                                        f"ignore: unknown record type {rtype!r}: check the spelling, "
                                        "e.g. \"TXT\", or write \"*\" for every type"))
                continue
        yield IgnoreRule(pattern, rtype)


class _IntCache(dict):
    """Maps each integer to one shared int object (a million TTLs of 3600 share one)."""

    def __missing__(self, key: int) -> int:
        self[key] = key
        return key


def _repeat(by_index: list[str], index: str, count: str) -> list[str]:
    return [by_index[int(index)]] * int(count)


def _integers(data: bytes) -> list[int]:
    """A newline-separated column of whole numbers (Lua 5.1 prints them as %.14g: digits only)."""
    return list(map(int, str(data, "ascii").split("\n"))) if data else []


def _records(columns: dict[str, bytes], count: int, origin: str, by_index: list[str],
             findings: list[Finding]) -> tuple[Record, ...]:
    if not count:
        return ()
    names = str(columns["names"], "ascii").split("\n")
    apex = "@." + origin  # how the prelude spells the apex (it sends names relative to the origin)
    if apex in names:
        names = [origin if name == apex else name for name in names]
    types = str(columns["types"], "ascii").split("\n")
    ttls = list(map(_IntCache().__getitem__, _integers(columns["ttls"])))
    datas = _text(columns["datas"]).split("\n")
    files = [file for run in str(columns["files"], "ascii").split("\n")
             for file in _repeat(by_index, *run.split(" "))]
    lines = list(itertools.accumulate(_integers(columns["lines"])))
    interned: dict[str, str] = {}
    types = [interned.setdefault(t, t) for t in types]
    dropped = False
    for position in (int(n) - 1 for n in bytes(columns["fix"]).split(b"\n") if n):
        written = types[position]  # "AAAA", or "?CAA" from caa() etc., or "!CAA" from rr()
        function = "rr" if written[0] == "!" else written.lstrip("?").lower()
        try:
            if written == "AAAA":
                datas[position] = _canonical_ipv6(datas[position])
                continue
            rtype = canonical_type(written[1:])
            if rtype in _NOT_IN_ZONES:
                raise RdataError(f"{rtype} records cannot be written in a zone file")
            types[position] = interned.setdefault(rtype, rtype)
            datas[position] = canonical_rdata(rtype, unquote(datas[position], errors="surrogateescape"), origin)
        except RdataError as error:
            findings.append(Finding(ERROR, "invalid-rdata", origin, files[position], lines[position],
                                    f"{function}: {error}"))
            names[position] = None  # type: ignore[call-overload]
            dropped = True
    rows = zip(names, types, ttls, datas, files, lines)
    return records_from_rows((row for row in rows if row[0] is not None) if dropped else rows)


_NOT_IN_ZONES = frozenset({"SOA", "ANY", "AXFR", "IXFR", "OPT", "TSIG", "TKEY", "MAILA", "MAILB", "NONE"})


_canonical_ipv6 = canonical_ipv6  # AAAA data exactly as dnspython prints it


# --------------------------------------------------------------------------------------------
# Errors that stop a zone, explained
# --------------------------------------------------------------------------------------------

_LIMIT_CODES = {"cpu": "lua-cpu-limit", "memory": "lua-memory-limit", "records": "lua-record-limit",
                "wall": "lua-time-limit", "process": "lua-process-limit"}


def _limit_message(result: SandboxResult, limits: SandboxLimits) -> str:
    if result.limit == "cpu":
        return f"CPU time limit of {limits.cpu_seconds:g} s exceeded: look for an endless loop"
    if result.limit == "memory":
        return (f"memory limit of {limits.memory_bytes / 2**20:g} MiB exceeded: "
                "look for a runaway string or table")
    if result.limit == "records":
        return f"more than {limits.max_records} records, the configured maximum"
    if result.limit == "wall":
        return (f"stopped after {limits.wall_seconds:g} s: a pathological string pattern "
                "or another library call that never finishes")
    return f"stopped: {result.error or result.limit_message}"


def _failure(result: SandboxResult, origin: str, file: str, files: list[str], chunks: list[Chunk],
             sources: list[bytes], limits: SandboxLimits) -> Finding | None:
    """The error finding for a zone that did not evaluate, or None when it did."""
    if result.limit:
        where_file, where_line = file, 0
        if 0 < result.limit_chunk <= len(files):
            where_file, where_line = files[result.limit_chunk - 1], result.limit_line
        return Finding(ERROR, _LIMIT_CODES.get(result.limit, "lua-limit"), origin, where_file, where_line,
                       _limit_message(result, limits))
    if result.status == "ok":
        return None
    if result.status == "syntax":
        number, _, message = result.error.partition("\t")
        index = int(number) - 1
        if message.startswith("not enough memory"):
            return Finding(ERROR, "lua-memory-limit", origin, files[index], 0,
                           _limit_message(SandboxResult("error", limit="memory"), limits))
        return _syntax_finding(origin, files[index], chunks[index].name, sources[index], message)
    if result.status == "error":
        return _runtime_finding(origin, file, files, chunks, sources, result.error)
    return Finding(ERROR, "lua-sandbox-failure", origin, file, 0, result.error or "evaluation failed")


def _split_position(message: str, chunks: list[Chunk]) -> tuple[int, int, str]:
    """(chunk index or -1, line, rest) from a Lua message 'name:12: text'."""
    if len(message) > 1000:  # error(string.rep("x", 1e8)) must not become a 100 MB finding
        message = message[:1000] + "..."
    for index, chunk in enumerate(chunks):
        prefix = chunk.name + ":"
        if message.startswith(prefix):
            line, _, rest = message[len(prefix):].partition(": ")
            if line.isdigit():
                return index, int(line), rest
    return -1, 0, message


def _source_line(source: bytes, line: int) -> str:
    lines = source.decode("utf-8", "replace").splitlines()
    return lines[line - 1] if 0 < line <= len(lines) else ""


_PYTHON_STYLE = re.compile(r"^\s*(def|function|if|elif|else|for|while|class)\b[^\n]*:\s*(#.*)?$")


def _syntax_finding(origin: str, file: str, chunk_name: str, source: bytes, message: str) -> Finding:
    if "binary chunk" in message:
        return Finding(ERROR, "lua-bytecode", origin, file, 1,
                       "precompiled Lua bytecode is not accepted; commit the Lua source instead")
    _, line, text = _split_position(message, [Chunk(chunk_name, b"")])
    lines = source.decode("utf-8", "replace").splitlines()
    for number, content in enumerate(lines[: max(line, 1)], start=1):
        if _PYTHON_STYLE.match(content) and "--" not in content.split(":")[0]:
            return Finding(ERROR, "lua-syntax-error", origin, file, number,
                           f"this looks like Python ({content.strip()!r}): Lua writes 'function f() ... end' "
                           "and 'if x then ... end', without a colon")
    current = _source_line(source, line)
    if "near '#'" in text:
        hint = "'#' does not start a comment in Lua; comments start with --"
    elif "unfinished string" in text:
        hint = (f"unterminated string ({text}): close it with the same quote on the same line "
                "(use [[...]] for text spanning lines)")
    elif "near ')'" in text and re.search(r",\s*\)", current):
        hint = "a trailing comma before ')': remove the last comma in the call"
    elif "malformed number" in text:
        hint = f"{text}: addresses and names must be quoted strings, e.g. \"192.0.2.1\""
    elif "constant table overflow" in text:
        hint = ("the file has more distinct constants than one Lua 5.1 function can hold (2^18), and is "
                "not made of plain record calls that could be split; split it into smaller files or loops")
    elif "unexpected symbol" in text and current.lstrip().startswith("//"):
        hint = "'//' does not start a comment in Lua; comments start with --"
    else:
        hint = f"syntax error: {text}"
    return Finding(ERROR, "lua-syntax-error", origin, file, line, hint)


# Lua 5.1 spells these "attempt to call global 'cnae' (a nil value)".
_CALL_NIL = re.compile(r"attempt to call (global|method|field|local|upvalue) '([^']+)' \(a nil value\)")
_INDEX_NIL = re.compile(r"attempt to index (global|local|upvalue|field) '([^']+)' \(a nil value\)")


def _runtime_finding(origin: str, file: str, files: list[str], chunks: list[Chunk], sources: list[bytes],
                     message: str) -> Finding:
    index, line, text = _split_position(message, chunks)
    where = files[index] if index >= 0 else file
    text, caller = _CALLED_FROM.sub("", text), "".join(_CALLED_FROM.findall(text))
    finding = _explained_runtime_error(origin, where, line, text, sources[index] if index >= 0 else b"")
    return finding._replace(message=finding.message + caller) if caller else finding


# The prelude's note on an error in a template: the zone line whose call led there.
_CALLED_FROM = re.compile(r" \(called from [^()]+:\d+\)$")


def _explained_runtime_error(origin: str, where: str, line: int, text: str, source: bytes) -> Finding:
    called = _CALL_NIL.search(text)
    if called:
        kind, name = called.groups()
        if name in FUNCTION_HINTS:
            hint = f"{name} is not a function: {FUNCTION_HINTS[name]}"
        else:
            choices = TEMPLATE_METHODS if kind == "method" else KNOWN_FUNCTIONS
            close = difflib.get_close_matches(name, choices, n=1, cutoff=0.6)
            hint = f"{name} is not defined" + (f"; did you mean {close[0]}?" if close else
                                               f" (the record functions are {', '.join(RECORD_FUNCTIONS)})")
        return Finding(ERROR, "lua-undefined-function", origin, where, line, hint)
    indexed = _INDEX_NIL.search(text)
    if indexed:
        name = indexed.group(2)
        current = _source_line(source, line)
        dotted = re.search(rf"(?<![\w\"'.]){re.escape(name)}((?:\.[\w-]+)+)", current)
        if dotted:
            written = name + dotted.group(1)
            return Finding(ERROR, "lua-unquoted-name", origin, where, line,
                           f"{written} is read as a variable, and {name} is not defined: "
                           f"names must be quoted strings, write \"{written}\"")
        return Finding(ERROR, "lua-runtime-error", origin, where, line,
                       f"{text} ({name} is not defined or is nil)")
    return Finding(ERROR, "lua-runtime-error", origin, where, line, text)

