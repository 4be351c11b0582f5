"""Reader for BIND master files (RFC 1035 section 5 plus BIND's $GENERATE and RFC 3597).

``read_bind_zone`` turns a zone file into a ``ZoneResult``: records in canonical form (see
``publisher.rdata``) and a finding for every syntax or data problem, with file and line, reading
on after each error so that a user sees everything at once.  Structural checks (CNAME and other
data, owners outside the zone, host-name syntax...) belong to ``publisher.zone.validate``.

Speed matters (a 1,000,000-record zone must lint in seconds), so the common line shape, with no
quotes, parentheses or escapes, is split with ``str.split``; only other lines go through the
regular-expression tokenizer, and rdata of the common types is canonicalised without dnspython.
"""

from __future__ import annotations

import os
import re
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Callable, Iterator, Sequence

import dns.exception
import dns.name
import dns.rdata
import dns.rdataclass

from publisher.model import ERROR, MAX_FINDINGS_PER_ZONE, WARNING, Finding, Record, Zone, ZoneResult, cyclic_gc_paused
from publisher.zone.repository import MAX_ZONE_FILE_BYTES, ReadLog, file_signature, size_text
from publisher.zone.sandbox import SandboxLimits
from publisher.rdata import (
    FAST_PATHS,
    RdataError,
    absolute_name,
    canonical_rdata_tokens,
    canonical_type,
    is_meta_type,
)

MAX_TTL = 2147483647
MAX_INCLUDE_DEPTH = 16
MAX_INCLUDES = 1000  # $INCLUDE directives followed per zone (a fan-out of 10 files x 9 levels is 10^9)
MAX_GENERATE_WIDTH = 255  # no name or character-string is longer; BIND runs out of space too
MAX_RDATA_OCTETS = 65535  # the wire length field of a record's data
MAX_RECORD_FIELDS = MAX_RDATA_OCTETS  # each field of the data is at least one octet on the wire
MAX_RECORDS = SandboxLimits().max_records  # [sandbox] max_records: the same limit as Lua zones
CPU_SECONDS = SandboxLimits().cpu_seconds  # [sandbox] cpu_seconds, as for Lua zones
_CHECK_EVERY = 0xFFFF  # lines between checks of the record count and CPU time (a mask)
KNOT_DEFAULT_TTL = 3600  # Knot's default-ttl: what it gives a record with no TTL and no $TTL

__all__ = ["read_bind_zone", "parse_ttl", "absolute_name", "TTLError", "ReadLog"]


class TTLError(ValueError):
    """A TTL that is not a number of seconds (optionally with w/d/h/m/s units) or out of range."""

    def __init__(self, message: str, code: str = "bad-ttl") -> None:
        super().__init__(message)
        self.code = code


_TTL_UNITS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}
_TTL_PART = re.compile(r"(\d+)([wdhmsWDHMS])")
_TTL_FULL = re.compile(r"(?:\d+[wdhmsWDHMS])+\Z")
_TTL_CACHE: dict[str, int] = {}


def parse_ttl(text: str) -> int:
    """Seconds in a BIND TTL: ``3600``, ``1h30m``, ``1W``.  Raises TTLError (code ``bad-ttl`` or
    ``ttl-out-of-range``) with a message fit for a user."""
    cached = _TTL_CACHE.get(text)
    if cached is not None:
        return cached
    if text.isdigit() and text.isascii():
        value = int(text)
    elif text.isascii() and _TTL_FULL.match(text):
        value = sum(int(n) * _TTL_UNITS[u.lower()] for n, u in _TTL_PART.findall(text))
    else:
        raise TTLError(
            f"bad TTL {text!r}: write seconds (3600) or a duration with units w, d, h, m, s (1h30m)"
        )
    if value > MAX_TTL:
        raise TTLError(
            f"TTL {text!r} is out of range: the maximum is {MAX_TTL} seconds", "ttl-out-of-range"
        )
    if len(_TTL_CACHE) < 10000:
        _TTL_CACHE[text] = value
    return value


# ---------------------------------------------------------------------------------------------
# Tokenizer

# Lines that contain none of these can be tokenized with str.split, or, when they have quoted
# strings, with one findall (quoted string | word with a glued quoted part | comment | stray quote).
_SPECIAL = re.compile(r"[()\\]")
_QUICK_QUOTED = re.compile(r'"[^"]*"|[^\s";]+(?:"[^"]*")?|;.*|"')
_TOKEN = re.compile(
    r"""[ \t\r\f\v]*(?:
        ("(?:[^"\\]|\\.)*")              # 1 quoted string (escapes kept)
      | ((?:[^\s"();\\]|\\.|\\\Z)+       # 2 bare word (escapes kept), with a quoted
         (?:"(?:[^"\\]|\\.)*")?)          #   part glued on (SVCB key="value")
      | (\()                              # 3
      | (\))                              # 4
      | (;.*)                             # 5 comment
      | (")                               # 6 unterminated quote
      | (\Z)                              # 7 end of line
    )""",
    re.VERBOSE | re.DOTALL,
)


class _Stop(Exception):
    """Reading ends here: a limit was reached (its finding is already reported)."""


class _OutOfTime(Exception):
    """The CPU time of the zone is used up (raised where a long logical line is being read)."""


class _LexError(Exception):
    def __init__(self, message: str, line: int, extra: int = 0) -> None:
        super().__init__(message)
        self.line = line
        self.extra = extra  # continuation lines consumed


def _lex_special(first: str, lineno: int, lines: Iterator[str], deadline: float = float("inf")
                 ) -> tuple[list[str], int]:
    """Tokens of a logical line starting with ``first`` that has quotes, parentheses or
    escapes; reads continuation lines from ``lines`` while parentheses are open.  Returns the
    tokens and the number of extra physical lines consumed."""
    tokens: list[str] = []
    depth = 0
    extra = 0
    text = first
    overflow = False  # past MAX_RECORD_FIELDS: scanned on to the closing parenthesis, not kept
    while True:
        position = 0
        while True:
            match = _TOKEN.match(text, position)
            if match is None:  # cannot happen: alternative 7 matches at the end
                raise _LexError("unreadable input", lineno + extra)
            position = match.end()
            kind = match.lastindex
            if kind == 1 or kind == 2:
                if len(tokens) < MAX_RECORD_FIELDS:
                    tokens.append(match.group(kind))
                else:
                    overflow = True
            elif kind == 3:
                depth += 1
            elif kind == 4:
                if depth == 0:
                    raise _LexError("')' without a matching '('", lineno + extra)
                depth -= 1
            elif kind == 6:
                raise _LexError(
                    "unterminated quoted string: close it with '\"' on the same line",
                    lineno + extra,
                )
            else:  # comment or end of line
                break
        if depth == 0:
            if overflow:
                raise _LexError(_TOO_MANY_FIELDS, lineno, extra)
            return tokens, extra
        try:
            text = next(lines).rstrip("\n")
        except StopIteration:
            raise _LexError(
                "'(' is never closed: add the matching ')'", lineno
            ) from None
        extra += 1
        if not extra & _CHECK_EVERY and time.thread_time() > deadline:
            raise _OutOfTime


_TOO_MANY_FIELDS = (f"more than {MAX_RECORD_FIELDS} fields in one record: its data cannot fit in "
                    f"{MAX_RDATA_OCTETS} octets")


def _unquote(token: str) -> str:
    if len(token) >= 2 and token[0] == '"' and token[-1] == '"':
        return token[1:-1]
    return token


# ---------------------------------------------------------------------------------------------
# Reader

_CLASSES = frozenset({"IN", "CH", "CHAOS", "HS", "HESIOD", "NONE", "ANY", "CS", "CSNET"})
_CLASS_NUMBER = re.compile(r"CLASS\d+\Z", re.IGNORECASE)


def _is_class(token: str) -> bool:
    upper = token.upper()
    return upper in _CLASSES or bool(_CLASS_NUMBER.match(token))


_BAD_OWNER = "\0bad owner"


@dataclass(slots=True)
class _State:
    """What carries from line to line (and into $INCLUDEd files)."""

    origin: str
    owner: str | None = None
    owner_token: str | None = None
    default_ttl: int | None = None  # $TTL, or the caller's default
    last_ttl: int | None = None  # last explicit TTL (RFC 1035: used when there is no $TTL)
    origin_changed: bool = False  # for BIND's "inherited owner after $ORIGIN" warning
    warned_1035: bool = False  # the previous-record TTL warning is given once, as BIND does


@dataclass
class _Reader:
    zone: str
    root: Path  # confinement root for $INCLUDE (the repository, or the zone file's directory)
    repo: Path | None
    max_generate: int
    display: str
    max_records: int = MAX_RECORDS
    cpu_seconds: float = CPU_SECONDS
    deadline: float = float("inf")  # time.thread_time() at which reading stops
    max_bytes: int = MAX_ZONE_FILE_BYTES
    bytes_left: int = MAX_ZONE_FILE_BYTES
    includes_left: int = MAX_INCLUDES
    server: str = "bind"  # whose verdict on a missing TTL applies (see validate.SERVERS)
    records: list[Record] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    stack: list[Path] = field(default_factory=list)
    log: ReadLog | None = None
    errors: int = 0
    hidden: int = 0
    hidden_errors: int = 0

    # -- findings -----------------------------------------------------------------------------

    def error(self, code: str, file: str, line: int, message: str) -> None:
        self._add(Finding(ERROR, code, self.zone, file, line, message))

    def warning(self, code: str, file: str, line: int, message: str) -> None:
        self._add(Finding(WARNING, code, self.zone, file, line, message))

    def _add(self, finding: Finding) -> None:
        """Keep at most MAX_FINDINGS_PER_ZONE findings (the last a summary); stop reading at
        that many errors: a file that bad is not a zone file, and reading on costs time."""
        if finding.is_error:
            self.errors += 1
        if len(self.findings) < MAX_FINDINGS_PER_ZONE - 1:
            self.findings.append(finding)
        else:
            self.hidden += 1
            self.hidden_errors += finding.is_error
        if self.errors >= MAX_FINDINGS_PER_ZONE:
            self.findings.append(
                Finding(ERROR, "too-many-findings", self.zone, finding.file, finding.line,
                        f"{MAX_FINDINGS_PER_ZONE} errors or more; is this a zone file? Reading "
                        "stopped here")
            )
            raise _Stop

    def summary(self) -> list[Finding]:
        """Findings in report order, with a note of those left out."""
        if not self.hidden or self.errors >= MAX_FINDINGS_PER_ZONE:
            return self.findings
        return self.findings + [
            Finding(ERROR if self.hidden_errors else WARNING, "too-many-findings", self.zone, self.display, 0,
                    f"{self.hidden} more findings not shown ({self.hidden_errors} of them errors)")]

    def check_record_count(self, file: str, line: int) -> None:
        """The record and CPU-time limits Lua zones have too, checked every so many lines."""
        if len(self.records) > self.max_records:
            self.error("zone-record-limit", file, line,
                       f"more than {self.max_records} records, the configured maximum")
            raise _Stop
        if time.thread_time() > self.deadline:
            self.out_of_time(file, line)

    def out_of_time(self, file: str, line: int) -> None:
        self.error("zone-cpu-limit", file, line,
                   f"CPU time limit of {self.cpu_seconds:g} s exceeded while reading; is this a zone file?")
        raise _Stop

    # -- files --------------------------------------------------------------------------------

    def read_file(self, path: Path, display: str, state: _State, file: str = "", line: int = 0) -> None:
        """Read ``path`` (already confined by the caller); ``file``/``line`` is the $INCLUDE that
        asked for it.  The descriptor is checked again: a regular file within the byte budget."""
        self.stack.append(path)
        try:
            descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
            with open(descriptor, encoding="utf-8", errors="surrogateescape", newline=None) as handle:
                status = os.fstat(descriptor)
                if self.log is not None:
                    self.log.opened.append((path, file_signature(status)))
                if not stat.S_ISREG(status.st_mode):
                    self.error("zone-file-not-a-file", file or display, line, f"{display} is not a regular file")
                    return
                self.bytes_left -= status.st_size
                if self.bytes_left < 0:
                    self.error("file-too-large", file or display, line,
                               f"{self.display} with the files it includes is larger than the limit "
                               f"of {size_text(self.max_bytes)}")
                    raise _Stop
                self._read_lines(handle, display, state)
                self.check_record_count(display, 0)
        except OSError as error:
            self.error("zone-file-unreadable", display, 0,
                       f"cannot read {display}: {error.strerror or type(error).__name__}")
        finally:
            self.stack.pop()

    def _read_lines(self, handle: Iterator[str], display: str, state: _State) -> None:
        lines = iter(handle)
        lineno = 0
        quoted = _QUICK_QUOTED.findall
        records = self.records
        append = records.append
        for raw in lines:
            lineno += 1
            start = lineno
            if not lineno & _CHECK_EVERY:
                self.check_record_count(display, lineno)
            if "(" not in raw and ")" not in raw and "\\" not in raw:  # faster than a regex
                if '"' in raw:
                    tokens = quoted(raw)
                    if tokens and tokens[-1][0] == ";":
                        tokens.pop()
                    if '"' in tokens:
                        self.error("syntax-error", display, lineno,
                                   "unterminated quoted string: close it with '\"' on the "
                                   "same line")
                        continue
                elif ";" in raw:
                    tokens = raw[: raw.index(";")].split()
                else:
                    tokens = raw.split()
                if not tokens:
                    continue
            else:
                try:
                    tokens, extra = _lex_special(raw.rstrip("\n"), lineno, lines, self.deadline)
                except _OutOfTime:
                    self.out_of_time(display, lineno)
                except _LexError as error:
                    self.error("syntax-error", display, error.line, str(error))
                    lineno += error.extra
                    continue
                lineno += extra
                if not tokens:
                    continue
            if len(tokens) > MAX_RECORD_FIELDS:
                self.error("syntax-error", display, start, _TOO_MANY_FIELDS)
                continue
            inherit = raw[0] in " \t"
            if not inherit and tokens[0][0] == "$":
                self._directive(tokens, display, start, state)
                continue
            record = _fast_record(tokens, inherit, display, start, state)
            if record is None:
                # Anything unusual, including every error, takes the careful path.
                record = self._record(tokens, inherit, display, start, state)
            if record is not None and (len(record[3]) < _LONG_DATA or self.fits_on_wire(record)):
                append(record)

    def fits_on_wire(self, record: Record) -> bool:
        """Whether long record data fits in the 65535 octets of the wire (BIND: "ran out of
        space"); a finding when it does not."""
        try:
            wire = len(dns.rdata.from_text(dns.rdataclass.IN, record.type, record.data,
                                           origin=dns.name.root).to_wire())
        except (dns.exception.DNSException, ValueError):
            return True  # our canonical text is not dnspython's: nothing to measure
        if wire <= MAX_RDATA_OCTETS:
            return True
        self.error("rdata-too-long", record.file, record.line,
                   f"the {record.type} data is {wire} octets on the wire, more than {MAX_RDATA_OCTETS}; "
                   "BIND refuses it (ran out of space)")
        return False

    # -- records ------------------------------------------------------------------------------

    def _record(
        self, tokens: list[str], inherit: bool, file: str, line: int, state: _State
    ) -> Record | None:
        """One record from its tokens; None (with a finding) when it is not valid."""
        origin = state.origin
        if inherit:
            owner = state.owner
            if owner is None:
                if state.owner_token is _BAD_OWNER:
                    return None
                self.error("missing-owner", file, line,
                           "the first record has no owner name (the line starts with a blank); "
                           "write the owner, or '@' for the zone apex")
                return None
            if state.origin_changed:
                self.warning("inherited-owner-after-origin", file, line,
                             f"this record inherits the owner {owner} from before the last "
                             f"$ORIGIN/$INCLUDE (now {origin}); write the owner explicitly")
            index = 0
        else:
            token = tokens[0]
            if token == state.owner_token and state.owner is not None and not state.origin_changed:
                owner = state.owner
            else:
                try:
                    owner = origin if token == "@" else absolute_name(token, origin)
                except RdataError as error:
                    self.error(error.code, file, line, f"owner {error}")
                    # Records that inherit this owner are skipped without another finding.
                    state.owner, state.owner_token = None, _BAD_OWNER
                    return None
                state.owner, state.owner_token = owner, token
            state.origin_changed = False
            index = 1

        ttl = None
        rclass = None
        count = len(tokens)
        while index < count:
            token = tokens[index]
            if ttl is None and token[0].isdigit():
                try:
                    ttl = parse_ttl(token)
                except TTLError as error:
                    self.error(error.code, file, line, str(error))
                    return None
            elif rclass is None and _is_class(token):
                rclass = token.upper()
                if rclass != "IN":
                    self.error("class-not-in", file, line,
                               f"class {token} is not supported: zones hold class IN only; "
                               "write IN or leave the class out")
                    return None
            else:
                break
            index += 1
        if index >= count:
            self.error("missing-type", file, line,
                       "the record has no type; write owner [TTL] [IN] TYPE DATA")
            return None

        type_token = tokens[index]
        try:
            rtype = canonical_type(type_token)
        except RdataError as error:
            self.error(error.code, file, line, str(error))
            return None
        if rtype in _META or (rtype not in _KNOWN_DATA_TYPES and is_meta_type(rtype)):
            self.error("meta-type", file, line,
                       f"{rtype} is a query or meta type and cannot be stored in a zone; remove "
                       "this record")
            return None

        rdata_tokens = tokens[index + 1:]
        try:
            data = canonical_rdata_tokens(rtype, rdata_tokens, origin)
        except RdataError as error:
            if rdata_tokens:
                self.error(error.code, file, line, str(error))
            else:
                self.error("missing-rdata", file, line,
                           f"the {rtype} record has no data; write owner [TTL] [IN] {rtype} DATA")
            return None

        if ttl is None:
            ttl = self._implicit_ttl(rtype, data, file, line, state)
            if ttl is None:
                return None
        else:
            state.last_ttl = ttl
        return Record(owner, rtype, ttl, data, file, line)

    def _implicit_ttl(self, rtype: str, data: str, file: str, line: int, state: _State) -> int | None:
        """TTL of a record written without one: $TTL, else the previous record's (RFC 1035),
        else for the SOA its minimum field with a warning (as BIND does), else an error."""
        if state.default_ttl is not None:
            return state.default_ttl
        if state.last_ttl is not None:
            if not state.warned_1035:
                state.warned_1035 = True
                self.warning("ttl-from-previous-record", file, line,
                             f"no TTL and no $TTL: using the previous record's TTL "
                             f"({state.last_ttl}) as RFC 1035 and BIND do; add '$TTL <seconds>' "
                             "at the top of the file")
            return state.last_ttl
        if rtype == "SOA":
            ttl = min(int(data.split()[6]), MAX_TTL)
            self.warning("ttl-from-soa-minimum", file, line,
                         f"no TTL and no $TTL: using the SOA minimum ({ttl}) as BIND does; "
                         "add '$TTL <seconds>' at the top of the file")
            # BIND then takes it as the default TTL, not merely as the previous record's.
            state.default_ttl = state.last_ttl = ttl
            return ttl
        if self.server == "knot":  # Knot loads it with its default-ttl
            self.warning("missing-ttl", file, line,
                         f"the record has no TTL and no $TTL is in effect: Knot uses its default "
                         f"({KNOT_DEFAULT_TTL}), BIND refuses the zone; add '$TTL <seconds>' at "
                         "the top of the file or give the record a TTL")
            return KNOT_DEFAULT_TTL
        self.error("missing-ttl", file, line,
                   "the record has no TTL and no $TTL is in effect: BIND refuses the zone (no TTL "
                   "specified); add '$TTL <seconds>' at the top of the file or give the record a TTL")
        return None

    # -- directives ---------------------------------------------------------------------------

    def _directive(self, tokens: list[str], file: str, line: int, state: _State) -> None:
        name = tokens[0].upper()
        if name == "$TTL":
            if len(tokens) < 2:
                self.error("bad-ttl", file, line, "$TTL needs a value, e.g. '$TTL 3600'")
                state.default_ttl = None
                return
            try:
                state.default_ttl = parse_ttl(tokens[1])
            except TTLError as error:
                self.error(error.code, file, line, f"$TTL: {error}")
                return
            if len(tokens) > 2:
                self.error("syntax-error", file, line,
                           f"extra text after $TTL {tokens[1]}: {' '.join(tokens[2:])!r}")
        elif name == "$ORIGIN":
            if len(tokens) != 2:
                self.error("syntax-error", file, line,
                           "$ORIGIN takes exactly one name, e.g. '$ORIGIN example.com.'")
                return
            try:
                state.origin = absolute_name(tokens[1], state.origin)
            except RdataError as error:
                self.error(error.code, file, line, f"$ORIGIN {error}")
                return
            state.origin_changed = True
        elif name == "$INCLUDE":
            self._include(tokens, file, line, state)
        elif name == "$GENERATE":
            self._generate(tokens, file, line, state)
        else:
            self.error("unknown-directive", file, line,
                       f"unknown directive {tokens[0]}: BIND files know $ORIGIN, $TTL, $INCLUDE "
                       "and $GENERATE")

    def _include(self, tokens: list[str], file: str, line: int, state: _State) -> None:
        if len(tokens) < 2 or len(tokens) > 3:
            self.error("syntax-error", file, line, "write '$INCLUDE file [origin]'")
            return
        target = _unquote(tokens[1])
        self.includes_left -= 1
        if self.includes_left < 0:
            self.error("include-limit", file, line,
                       f"more than {MAX_INCLUDES} $INCLUDEs in this zone; include fewer files")
            raise _Stop
        if len(self.stack) >= MAX_INCLUDE_DEPTH:
            self.error("include-loop", file, line,
                       f"$INCLUDE nested more than {MAX_INCLUDE_DEPTH} deep; is a file including itself?")
            return
        resolved = self._resolve_include(target, file, line)
        if resolved is None:
            return
        if resolved in self.stack:
            self.error("include-loop", file, line,
                       f"$INCLUDE {target} includes a file that is already being read (a loop)")
            return
        origin = state.origin
        if len(tokens) == 3:
            try:
                origin = absolute_name(tokens[2], state.origin)
            except RdataError as error:
                self.error(error.code, file, line, f"$INCLUDE origin {error}")
                return
        child = _State(
            origin=origin,
            owner=state.owner,
            owner_token=None,
            default_ttl=state.default_ttl,
            last_ttl=state.last_ttl,
            origin_changed=len(tokens) == 3,
            warned_1035=state.warned_1035,
        )
        display = resolved.relative_to(self.root).as_posix()
        if self.repo is None:  # single-file lint: relative to the zone file as it was given
            display = (PurePosixPath(self.display).parent / display).as_posix()
        self.read_file(resolved, display, child, file, line)
        # RFC 1035: the origin and owner of the including file are unchanged; the TTL state
        # carries on as BIND's does.
        state.default_ttl = child.default_ttl
        state.last_ttl = child.last_ttl
        state.warned_1035 = child.warned_1035

    def _resolve_include(self, target: str, file: str, line: int) -> Path | None:
        """The included file, confined to the repository (or the zone's directory)."""
        if not target or os.path.isabs(target):
            self.error("include-outside-repository", file, line,
                       f"$INCLUDE {target!r}: absolute paths are not allowed; give a path "
                       "relative to the repository")
            return None
        root = self.root.resolve()
        current = self.stack[-1].parent
        bases = [self.repo, current] if self.repo is not None else [current]
        candidates = []
        for base in bases:
            if base is None:
                continue
            if self.log is not None:
                self.log.probed.append(base / target)
            candidate = (base / target).resolve()
            if candidate not in candidates:
                candidates.append(candidate)
        for candidate in candidates:
            if not candidate.is_relative_to(root):
                continue
            try:
                mode = candidate.stat().st_mode
            except OSError:
                continue
            if not stat.S_ISREG(mode):
                self.error("include-not-a-file", file, line,
                           f"$INCLUDE {target!r} is not a regular file (a directory or device); "
                           "include a zone file")
                return None
            return candidate
        if any(not c.is_relative_to(root) for c in candidates) and not any(
            c.is_relative_to(root) and c.exists() for c in candidates
        ):
            where = "the repository" if self.repo is not None else "the zone file's directory"
            self.error("include-outside-repository", file, line,
                       f"$INCLUDE {target!r} points outside {where} (after resolving '..' and "
                       "links); include only files inside it")
            return None
        self.error("include-not-found", file, line,
                   f"$INCLUDE {target!r}: no such file (paths are relative to the repository "
                   "root or to the including file)")
        return None

    def _generate(self, tokens: list[str], file: str, line: int, state: _State) -> None:
        """$GENERATE range lhs [ttl] [class] type rhs."""
        if len(tokens) < 5:
            self.error("generate-syntax", file, line,
                       "write '$GENERATE start-stop[/step] lhs [ttl] [class] type rhs'")
            return
        match = _RANGE.match(tokens[1])
        if match is None:
            self.error("generate-range", file, line,
                       f"$GENERATE: invalid range {tokens[1]!r}; write start-stop or "
                       "start-stop/step with start <= stop and step >= 1")
            return
        start, stop = int(match.group(1)), int(match.group(2))
        step = int(match.group(3)) if match.group(3) is not None else 1
        if start > stop or step < 1 or stop > MAX_TTL:
            self.error("generate-range", file, line,
                       f"$GENERATE: invalid range {tokens[1]!r}; start must not exceed stop, "
                       "step must be at least 1, and values must fit in 31 bits")
            return
        count = (stop - start) // step + 1
        if count > self.max_generate:
            self.error("generate-too-many", file, line,
                       f"$GENERATE would create {count} records, more than the limit of "
                       f"{self.max_generate}; split the range or write the records out")
            return
        if len(self.records) + count > self.max_records:
            self.error("zone-record-limit", file, line,
                       f"more than {self.max_records} records, the configured maximum")
            raise _Stop
        lhs = tokens[2]
        index = 3
        middle: list[str] = []
        while index < len(tokens) - 1 and (tokens[index][0].isdigit() or _is_class(tokens[index])):
            middle.append(tokens[index])
            index += 1
        type_token = tokens[index]
        rhs_tokens = tokens[index + 1:]
        if not rhs_tokens:
            self.error("generate-syntax", file, line, "$GENERATE: the right-hand side is missing")
            return
        try:
            rtype = canonical_type(type_token)
        except RdataError as error:
            self.error(error.code, file, line, f"$GENERATE: {error}")
            return
        if rtype in _META or (rtype not in _KNOWN_DATA_TYPES and is_meta_type(rtype)):
            self.error("generate-meta-type", file, line,
                       f"$GENERATE: {rtype} is a meta type and cannot be generated")
            return
        if len(rhs_tokens) == 1 and rhs_tokens[0][0] == '"':
            # BIND's lexer unquotes the right-hand side, turning \" into " and keeping other
            # escapes for the rdata parser.
            rhs = _QUOTE_ESCAPE.sub(_unescape_quote, rhs_tokens[0][1:-1])
        else:
            rhs = " ".join(rhs_tokens)
        try:
            lhs_parts = _generate_template(lhs)
            rhs_parts = _generate_template(rhs)
        except ValueError as error:
            self.error("generate-syntax", file, line, f"$GENERATE: {error}")
            return
        prefix = " ".join(middle + [type_token])
        saved_owner = (state.owner, state.owner_token)
        for value in range(start, stop + 1, step):
            try:
                owner_text = _expand(lhs_parts, value)
                rdata_text = _expand(rhs_parts, value)
            except ValueError as error:
                self.error("generate-range", file, line, f"$GENERATE: {error}")
                return
            text = f"{owner_text} {prefix} {rdata_text}"
            try:
                if _SPECIAL.search(text) is None:
                    generated = text.split()
                else:
                    generated, _ = _lex_special(text, line, iter(()))
            except _LexError as error:
                self.error("generate-syntax", file, line, f"$GENERATE: {error}")
                return
            before = len(self.findings)
            record = _fast_record(generated, False, file, line, state)
            if record is None:
                record = self._record(generated, False, file, line, state)
            if record is not None and (len(record[3]) < _LONG_DATA or self.fits_on_wire(record)):
                self.records.append(record)
            elif len(self.findings) > before:
                break  # one finding per $GENERATE line, not one per iteration
        state.owner, state.owner_token = saved_owner
        self.check_record_count(file, line)


_new_tuple = tuple.__new__
_FAST_TYPES: dict[str, tuple[str, Callable[[Sequence[str], str], str | None]]] = {}
for _type, _function in FAST_PATHS.items():
    _FAST_TYPES[_type] = _FAST_TYPES[_type.lower()] = (_type, _function)


def _fast_record(
    tokens: list[str],
    inherit: bool,
    file: str,
    line: int,
    state: _State,
    *,
    _digits: frozenset[str] = frozenset("0123456789"),
    _ttls: dict[str, int] = _TTL_CACHE,
    _types: dict = _FAST_TYPES,
    _new: Callable = _new_tuple,
    _record: type = Record,
) -> Record | None:
    """The record of a common, valid line without any detour, or None to take ``_record``.

    It reports nothing and changes ``state`` only on success, so that ``_record`` can redo a
    line from scratch and word its findings."""
    origin = state.origin
    if inherit:
        owner = state.owner
        if owner is None or state.origin_changed:
            return None
        index = 0
    else:
        token = tokens[0]
        if token == state.owner_token and not state.origin_changed:
            owner = state.owner
        elif token.isalnum() and token.isascii() and len(token) <= 63 and origin != ".":
            owner = f"{token.lower()}.{origin}"
            if len(owner) > 254:
                return None
        else:
            try:
                owner = origin if token == "@" else absolute_name(token, origin)
            except RdataError:
                return None
        index = 1
    count = len(tokens)
    if index >= count:
        return None
    token = tokens[index]
    ttl = None
    if token[0] in _digits:
        ttl = _ttls.get(token)
        if ttl is None:
            try:
                ttl = parse_ttl(token)
            except TTLError:
                return None
        index += 1
        if index >= count:
            return None
        token = tokens[index]
    if token == "IN" or token == "in":
        index += 1
        if index >= count:
            return None
        token = tokens[index]
        if ttl is None and token[0] in _digits:
            ttl = _ttls.get(token)
            if ttl is None:
                return None
            index += 1
            if index >= count:
                return None
            token = tokens[index]
    fast = _types.get(token)
    if fast is None:
        return None
    rtype, function = fast
    try:
        data = function(tokens[index + 1:], origin)
    except RdataError:
        return None
    if data is None:
        return None
    if ttl is None:
        ttl = state.default_ttl
        if ttl is None and not state.warned_1035:
            return None  # _implicit_ttl warns once
        if ttl is None:
            ttl = state.last_ttl
            if ttl is None:
                return None
    else:
        state.last_ttl = ttl
    if not inherit:
        state.owner = owner
        state.owner_token = tokens[0]
        state.origin_changed = False
    return _new(_record, (owner, rtype, ttl, data, file, line))


_DIGITS = frozenset("0123456789")
_LONG_DATA = 16384  # presentation text shorter than this is never over 65535 octets on the wire
_QUOTE_ESCAPE = re.compile(r"\\(.)", re.DOTALL)


def _unescape_quote(match: re.Match[str]) -> str:
    return '"' if match.group(1) == '"' else match.group(0)


_META = frozenset({"ANY", "AXFR", "IXFR", "MAILA", "MAILB", "OPT", "TSIG", "TKEY", "NONE"})
_KNOWN_DATA_TYPES = frozenset(
    {"A", "AAAA", "NS", "CNAME", "PTR", "MX", "TXT", "SRV", "CAA", "DS", "SOA", "SPF", "TLSA",
     "SSHFP", "SVCB", "HTTPS", "NAPTR", "LOC", "DNAME", "DNSKEY", "RRSIG", "NSEC", "NSEC3"}
)
_RANGE = re.compile(r"(\d+)-(\d+)(?:/(\d+))?\Z")
_MODIFIER = re.compile(r"\{(-?\d+)(?:,(\d+)(?:,([doxXnN]))?)?\}")


def _generate_template(text: str) -> list[str | tuple[int, int, str]]:
    """Split a $GENERATE side into literal text and (offset, width, base) substitutions.

    ``$`` is the iterator, ``$$`` a literal dollar, ``\\x`` is kept as written (an escaped
    character for the name or rdata parser), ``${offset[,width[,base]]}`` a formatted value."""
    parts: list[str | tuple[int, int, str]] = []
    literal: list[str] = []
    position = 0
    length = len(text)
    while position < length:
        char = text[position]
        if char == "\\":
            literal.append(text[position:position + 2])
            position += 2
        elif char == "$":
            if text.startswith("$$", position):
                literal.append("$")
                position += 2
                continue
            if literal:
                parts.append("".join(literal))
                literal = []
            if position + 1 < length and text[position + 1] == "{":
                match = _MODIFIER.match(text, position + 1)
                if match is None:
                    raise ValueError(
                        f"bad modifier in {text!r}: write ${{offset}}, ${{offset,width}} or "
                        "${offset,width,base} with base one of d, o, x, X, n, N"
                    )
                offset = int(match.group(1))
                width = int(match.group(2) or 0)
                if width > MAX_GENERATE_WIDTH:
                    raise ValueError(f"width {match.group(2)} in ${match.group(0)} is more than "
                                     f"{MAX_GENERATE_WIDTH}, longer than any name or text field")
                parts.append((offset, width, match.group(3) or "d"))
                position = match.end()
            else:
                parts.append((0, 0, "d"))
                position += 1
        else:
            literal.append(char)
            position += 1
    if literal:
        parts.append("".join(literal))
    return parts


def _expand(parts: list[str | tuple[int, int, str]], value: int) -> str:
    out = []
    for part in parts:
        if isinstance(part, str):
            out.append(part)
            continue
        offset, width, base = part
        number = value + offset
        if number > MAX_TTL:
            raise ValueError(f"{value} + {offset} is out of range (more than {MAX_TTL})")
        if base == "d":
            out.append(f"{number:0{width}d}")
        elif base in "nN":
            out.append(_nibbles(number, width, base == "N"))
        else:  # C printf of an int as unsigned
            out.append(f"{number & 0xFFFFFFFF:0{width}{base}}")
    return "".join(out)


def _nibbles(value: int, width: int, upper: bool) -> str:
    """BIND's nibble mode: hex digits, least significant first, dot-separated, ``width``
    counting digits and dots."""
    digits = "0123456789ABCDEF" if upper else "0123456789abcdef"
    value &= 0xFFFFFFFF
    out = []
    while True:
        out.append(digits[value & 15])
        value >>= 4
        if width > 0:
            width -= 1
        if width > 0 or value:
            out.append(".")
            if width > 0:
                width -= 1
        if not (value or width > 0):
            return "".join(out)


def read_bind_zone(
    path: Path,
    origin: str,
    *,
    repo: Path | None,
    display_file: str,
    default_ttl: int | None = None,
    max_generate: int = 65536,
    max_records: int = MAX_RECORDS,
    max_bytes: int = MAX_ZONE_FILE_BYTES,
    cpu_seconds: float = CPU_SECONDS,
    server: str = "bind",
    log: ReadLog | None = None,
) -> ZoneResult:
    """Read the BIND master file ``path`` as zone ``origin``.

    ``repo`` confines $INCLUDE (and the zone file itself, if it is a link) to the repository;
    with ``repo=None`` (single-file lint) includes must be beside or below the zone file.
    ``display_file`` is the name findings and records carry.  ``default_ttl`` acts as a $TTL at
    the top of the file (repositories have one from configuration).  A zone over ``max_records``
    records, ``max_bytes`` bytes with its includes, ``cpu_seconds`` of this thread's CPU time,
    ``MAX_INCLUDES`` includes or ``MAX_FINDINGS_PER_ZONE`` errors is not read on: it has a
    finding and no zone.
    ``server`` ("bind" or "knot") decides a record with no TTL at all: BIND refuses the zone,
    Knot loads it.  ``log``, when given, is filled with what the read looked at (see ``ReadLog``).
    """
    path = Path(path)
    try:
        zone_origin = absolute_name(origin, ".")
    except RdataError as error:
        finding = Finding(ERROR, error.code, origin, display_file, 0, f"zone name {error}")
        return ZoneResult(origin, display_file, None, (finding,))
    root = Path(repo) if repo is not None else path.parent
    reader = _Reader(zone=zone_origin, root=root.resolve(), repo=repo, max_generate=max_generate,
                     display=display_file, max_records=max_records, max_bytes=max_bytes,
                     bytes_left=max_bytes, cpu_seconds=cpu_seconds, server=server, log=log)

    resolved = path.resolve()
    problem = None
    if repo is not None and not resolved.is_relative_to(root.resolve()):
        problem = ("zone-file-outside-repository",
                   f"{display_file} resolves outside the repository (a link?); zone files must "
                   "be regular files inside it")
    else:
        try:
            mode = resolved.stat().st_mode
        except OSError as error:
            problem = ("zone-file-unreadable", f"cannot read {display_file}: {error.strerror}")
        else:
            if not stat.S_ISREG(mode):
                problem = ("zone-file-not-a-file", f"{display_file} is not a regular file")
    if problem is not None:
        finding = Finding(ERROR, problem[0], zone_origin, display_file, 0, problem[1])
        return ZoneResult(zone_origin, display_file, None, (finding,))

    state = _State(origin=zone_origin, default_ttl=default_ttl)
    reader.deadline = time.thread_time() + cpu_seconds
    try:
        with cyclic_gc_paused():
            reader.read_file(resolved, display_file, state)
    except _Stop:
        reader.records.clear()
        return ZoneResult(zone_origin, display_file, None, tuple(reader.summary()))
    zone = Zone(origin=zone_origin, records=tuple(reader.records), file=display_file)
    return ZoneResult(zone_origin, display_file, zone, tuple(reader.summary()))
