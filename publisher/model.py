"""The zone model shared by every stage: records, zones and findings, all immutable.

Records are NamedTuples rather than dataclasses because a 1,000,000-record zone must fit in well
under 1 GiB and build in seconds: a tuple is the smallest, fastest immutable value Python has.

Conventions every stage relies on:

* names are absolute, lower-case, with the trailing dot (``www.example.com.``);
* ``type`` is the upper-case mnemonic (``A``, ``HTTPS``, ``TYPE65534`` for unknown types);
* ``data`` is the canonical presentation text of the rdata as ``publisher.rdata`` produces it:
  names inside it absolute and lower-case, single spaces, TXT strings quoted.  Two records are the
  same record exactly when ``(name, type, data)`` are equal.
"""

from __future__ import annotations

import contextlib
import functools
import gc
from dataclasses import dataclass, field
from typing import Iterable, Iterator, NamedTuple, Sequence

ERROR = "error"
WARNING = "warning"


class Record(NamedTuple):
    """One resource record, as read from a zone file or a provider."""

    name: str
    type: str
    ttl: int
    data: str
    file: str = ""  # repository-relative file the record came from ("" when from a provider)
    line: int = 0  # 1-based line in ``file`` (0 when unknown)

    @property
    def key(self) -> tuple[str, str, str]:
        """Identity of the record, without TTL or source position."""
        return (self.name, self.type, self.data)

    def to_text(self) -> str:
        """The record as one canonical BIND master-file line."""
        return f"{self.name} {self.ttl} IN {self.type} {self.data}"


class Finding(NamedTuple):
    """A problem found in a zone: reported, never raised."""

    severity: str  # ERROR or WARNING
    code: str  # stable kebab-case id, e.g. "cname-and-other-data"
    zone: str  # zone origin with trailing dot
    file: str  # repository-relative path ("" when not tied to a file)
    line: int  # 1-based, 0 when not tied to a line
    message: str

    @property
    def is_error(self) -> bool:
        return self.severity == ERROR

    def to_text(self) -> str:
        """``file:line: severity: message [code]``, the form editors and CI logs understand."""
        where = f"{self.file}:{self.line}" if self.line else (self.file or self.zone or ".")
        return f"{where}: {self.severity}: {self.message} [{self.code}]"

    def to_dict(self) -> dict:
        return self._asdict()


# What one zone may report: a hostile file must not turn into megabytes of findings (stored,
# mailed and shown by the service), so findings are capped in number and length.
MAX_FINDINGS_PER_ZONE = 100
MAX_MESSAGE_CHARS = 500


def printable(text: str) -> str:
    """``text`` with undecodable bytes (surrogate escapes from file names or contents) written as
    ``\\xff``, so that it prints and serialises as valid UTF-8."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        pass
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a lone surrogate that is not an escaped byte
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


def cap_findings(findings: Sequence[Finding]) -> tuple[Finding, ...]:
    """At most ``MAX_FINDINGS_PER_ZONE`` findings, each message at most ``MAX_MESSAGE_CHARS``
    long, plus one summary of what was left out (an error when anything left out was one)."""
    shown = []
    for finding in findings[:MAX_FINDINGS_PER_ZONE]:
        message = printable(finding.message)
        if len(message) > MAX_MESSAGE_CHARS:
            message = message[:MAX_MESSAGE_CHARS] + f"... ({len(message) - MAX_MESSAGE_CHARS} more characters)"
        if message is not finding.message or finding.file != printable(finding.file):
            finding = finding._replace(message=message, file=printable(finding.file), zone=printable(finding.zone))
        shown.append(finding)
    hidden = findings[MAX_FINDINGS_PER_ZONE:]
    if hidden:
        errors = sum(f.is_error for f in hidden)
        first = hidden[0]
        shown.append(Finding(ERROR if errors else WARNING, "too-many-findings", printable(first.zone),
                             printable(first.file), 0,
                             f"{len(hidden)} more findings not shown ({errors} of them errors); "
                             f"only the first {MAX_FINDINGS_PER_ZONE} of a zone are reported"))
    return tuple(shown)


class IgnoreRule(NamedTuple):
    """From Lua ``ignore(pattern, type)``: provider records that git never deletes.

    ``pattern`` is an absolute lower-case name pattern where ``%`` matches any run of characters;
    ``type`` is a type mnemonic or ``"*"`` for every type.
    """

    pattern: str
    type: str

    def matches(self, name: str, rtype: str) -> bool:
        if self.type not in ("*", "", rtype):
            return False
        return _glob_match(self.pattern, name)


def _glob_match(pattern: str, name: str) -> bool:
    parts = pattern.split("%")
    if len(parts) == 1:
        return pattern == name
    if not name.startswith(parts[0]) or not name.endswith(parts[-1]):
        return False
    position = len(parts[0])
    end = len(name) - len(parts[-1])
    for middle in parts[1:-1]:
        found = name.find(middle, position, end)
        if found < 0:
            return False
        position = found + len(middle)
    return position <= end


class ServiceRecord(NamedTuple):
    """A LuaDNS service that is not a DNS record: ``redirect()`` or ``forward()``."""

    kind: str  # "redirect" or "forward"
    name: str  # owner (redirect) or mailbox (forward)
    target: str  # URL or e-mail address
    mode: int  # redirect mode; 0 for forward
    ttl: int
    file: str
    line: int


@contextlib.contextmanager
def cyclic_gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while a zone's records are built or checked.  Records
    are tuples of strings and make no reference cycles; with the collector on, each young
    collection promotes them and full ones keep rescanning them, which costs a million-record
    zone two to four times the time."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


_new_record = functools.partial(tuple.__new__, Record)  # Record(*row) without a Python-level call


def records_from_rows(rows: Iterable[tuple]) -> tuple[Record, ...]:
    """``Record``s from (name, type, ttl, data, file, line) rows, as fast as tuples are made."""
    with cyclic_gc_paused():
        return tuple(map(_new_record, rows))


@dataclass(frozen=True)
class Zone:
    """An evaluated zone: its records plus the settings the zone file declared.

    ``records`` never contains the SOA for Lua zones (it is generated at publish time); for BIND
    zones the file's SOA is kept so validation can check it, and the publisher replaces it.
    """

    origin: str
    records: tuple[Record, ...]
    file: str = ""
    secondaries: tuple[str, ...] = ()  # IPs allowed to transfer and to be notified (slave(), .yml)
    # Apex NS targets that slave() added: they do not count as the zone's "own" name servers, so
    # the configured defaults are still published beside them (as LuaDNS publishes its own).
    secondary_nameservers: tuple[str, ...] = ()
    ignores: tuple[IgnoreRule, ...] = ()
    services: tuple[ServiceRecord, ...] = ()
    clone_of: str = ""  # origin of the zone this one was cloned from (.clones), else ""
    # The kind of repository file it came from (repository.LUA or BIND; "" for a file linted on its
    # own): a BIND file's apex NS give way to the configured name servers when published.
    kind: str = ""

    def rrsets(self) -> dict[tuple[str, str], list[Record]]:
        """Records grouped by (name, type), in file order."""
        grouped: dict[tuple[str, str], list[Record]] = {}
        for record in self.records:
            grouped.setdefault((record.name, record.type), []).append(record)
        return grouped

    def names(self) -> set[str]:
        return {record.name for record in self.records}


@dataclass(frozen=True)
class ZoneResult:
    """What evaluating one zone file produced: the zone (None when it could not be built) and
    every finding, errors and warnings alike."""

    origin: str
    file: str
    zone: Zone | None
    findings: tuple[Finding, ...] = field(default_factory=tuple)

    @property
    def has_errors(self) -> bool:
        return self.zone is None or any(f.is_error for f in self.findings)

    def with_findings(self, extra: Iterable[Finding]) -> "ZoneResult":
        return ZoneResult(self.origin, self.file, self.zone, self.findings + tuple(extra))


CREATE = "create"
UPDATE = "update"
DELETE = "delete"


class Change(NamedTuple):
    """One RRset-level change of a plan: what a provider must do at (name, type).

    ``old``/``new`` are the canonical rdata strings before and after (empty for create/delete);
    ``old_ttl``/``ttl`` the TTLs.  Plans are tuples of these, so they print, serialise and
    checksum as plain data.
    """

    action: str  # CREATE, UPDATE or DELETE
    name: str
    type: str
    ttl: int
    old: tuple[str, ...] = ()
    new: tuple[str, ...] = ()
    old_ttl: int = 0

    def to_dict(self) -> dict:
        return {
            "action": self.action,
            "name": self.name,
            "type": self.type,
            "ttl": self.ttl,
            "old": list(self.old),
            "new": list(self.new),
            "old_ttl": self.old_ttl,  # the text plan shows it on "-" lines; JSON must too
        }
