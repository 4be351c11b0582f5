"""The diff engine and plans: what must change at a provider so it serves the desired zone.

Pure functions over immutable data.  ``diff_records`` compares RRsets (name, type) and returns
``Change`` values in an order that never shows a server an invalid state, even when a provider
has to split the changes over several messages:

1. deletes of data that conflicts with what is about to be added (a CNAME and other data at one
   name), so the add that follows is legal;
2. updates (an RRset replaced in place: the apex NS set is never deleted then re-added);
3. creates;
4. the remaining deletes, last, so a name keeps resolving as long as possible.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cached_property
from typing import Iterable, Sequence

from publisher.model import CREATE, DELETE, ERROR, UPDATE, WARNING, Change, Finding, IgnoreRule, Record

# Never part of a record diff: the SOA (the publisher manages it) and what a signing server
# maintains itself (signatures, denial of existence, BIND's signing-state records).
SERVER_MANAGED_TYPES = frozenset({"SOA", "RRSIG", "NSEC", "NSEC3", "NSEC3PARAM", "TYPE65534"})
_EXCLUDED_TYPES = SERVER_MANAGED_TYPES
# Keys a signing server publishes: git may set them, but a server's own are never deleted.
_KEPT_TYPES = frozenset({"DNSKEY", "CDS", "CDNSKEY"})


def _key_order(key: tuple[str, str]) -> str:
    """Sort key of an RRset: labels from the root (parents before children), then the type; one
    string compares much faster than tuples of labels on 100,000-RRset plans."""
    name, rtype = key
    return "\x01".join(reversed(name.rstrip(".").split("."))) + "\x00" + rtype


def _group(records: Iterable[Record], keys: set[tuple[str, str]],
           ) -> dict[tuple[str, str], tuple[int, set[str]]]:
    """RRsets at ``keys`` as {(name, type): (ttl, data set)}; an RRset's TTL is its first record's."""
    groups: dict[tuple[str, str], tuple[int, set[str]]] = {}
    for record in records:
        key = (record.name, record.type)
        if key not in keys or record.type in _EXCLUDED_TYPES:
            continue
        group = groups.get(key)
        if group is None:
            groups[key] = (record.ttl, {record.data})
        else:
            group[1].add(record.data)
    return groups


def _ordered(data: set[str]) -> tuple[str, ...]:
    return tuple(data) if len(data) == 1 else tuple(sorted(data))


class IgnoreIndex:
    """``ignore()`` rules indexed once, so asking about a name costs about the same whatever the
    number of rules (20,000 rules tried one by one against 20,000 names is 400 million matches).

    Exact patterns are looked up by (name, type).  A ``%`` pattern is filed under its literal
    prefix (before the first ``%``), then its literal suffix (after the last), then its type: a
    name is compared only with the patterns whose prefix, suffix and type it has, found by one
    lookup per distinct prefix and suffix length.  ``IgnoreRule.matches`` stays the one
    definition of a match; the index only decides which rules are worth asking.
    """

    def __init__(self, rules: Iterable[IgnoreRule]) -> None:
        self._exact: dict[tuple[str, str], IgnoreRule] = {}
        # prefix -> suffix -> type -> rules, and the distinct suffix lengths under each prefix
        self._wild: dict[str, dict[str, dict[str, list[IgnoreRule]]]] = {}
        self._suffix_lengths: dict[str, tuple[int, ...]] = {}
        for rule in rules:
            rtype = rule.type or "*"
            if "%" not in rule.pattern:
                self._exact.setdefault((rule.pattern, rtype), rule)
                continue
            prefix, _, rest = rule.pattern.partition("%")
            suffix = rest.rpartition("%")[2]
            self._wild.setdefault(prefix, {}).setdefault(suffix, {}).setdefault(rtype, []).append(rule)
        for prefix, by_suffix in self._wild.items():
            self._suffix_lengths[prefix] = tuple(sorted({len(s) for s in by_suffix}))
        self._prefix_lengths = tuple(sorted({len(p) for p in self._wild}))

    def __bool__(self) -> bool:
        return bool(self._exact or self._wild)

    def protects(self, name: str, rtype: str) -> bool:
        """True when a rule protects (name, type) from deletion."""
        exact = self._exact
        if exact:
            rule = exact.get((name, rtype)) or exact.get((name, "*"))
            if rule is not None and rule.matches(name, rtype):
                return True
        size = len(name)
        for prefix_length in self._prefix_lengths:
            if prefix_length > size:
                break
            prefix = name[:prefix_length]
            by_suffix = self._wild.get(prefix)
            if by_suffix is None:
                continue
            for suffix_length in self._suffix_lengths[prefix]:
                if suffix_length > size - prefix_length:
                    break
                by_type = by_suffix.get(name[size - suffix_length:] if suffix_length else "")
                if by_type is None:
                    continue
                for candidates in (by_type.get(rtype), by_type.get("*")):
                    if candidates and any(rule.matches(name, rtype) for rule in candidates):
                        return True
        return False


def diff_records(
    desired: Iterable[Record],
    current: Iterable[Record],
    *,
    ignores: Sequence[IgnoreRule] = (),
) -> tuple[Change, ...]:
    """The changes that turn ``current`` into ``desired``, by RRset, safely ordered.

    A TTL-only difference is an update.  RRsets matched by ``ignores`` are never deleted and
    never lose data: when git also defines them, git's data is added to what the server has.
    SOA and DNSSEC records a signing server maintains are ignored on both sides, and a server's
    DNSKEY/CDS/CDNSKEY are kept like ignored records.
    """
    desired = tuple(desired)
    current = tuple(current)
    # Fast path for big zones: only RRsets holding a record that is not identical on both sides
    # (name, type, TTL, data) can change, and usually there are few or none.
    want_set = {record[:4] for record in desired}
    have_set = {record[:4] for record in current}
    touched = {(name, rtype) for name, rtype, _, _ in want_set ^ have_set}
    if not touched:
        return ()
    want = _group(desired, touched)
    have = _group(current, touched)
    ignored = IgnoreIndex(ignores)

    conflicting_deletes: list[Change] = []
    updates: list[Change] = []
    creates: list[Change] = []
    other_deletes: list[Change] = []

    # Types about to be created or changed per name, to spot deletes that must go first (CNAME
    # rules).  Unchanged RRsets cannot conflict: the server holds them together already.
    desired_types: dict[str, set[str]] = {}
    for name, rtype in want:
        desired_types.setdefault(name, set()).add(rtype)

    for key in sorted(touched, key=_key_order):
        name, rtype = key
        protected = rtype in _KEPT_TYPES or (bool(ignored) and ignored.protects(name, rtype))
        if key not in want:
            if protected or key not in have:  # key not in have: an SOA, excluded on both sides
                continue
            old_ttl, old = have[key]
            change = Change(DELETE, name, rtype, old_ttl, old=_ordered(old), old_ttl=old_ttl)
            types_here = desired_types.get(name, set())
            conflicts = ("CNAME" in types_here) or (rtype == "CNAME" and bool(types_here))
            (conflicting_deletes if conflicts else other_deletes).append(change)
            continue
        ttl, new = want[key]
        if key not in have:
            creates.append(Change(CREATE, name, rtype, ttl, new=_ordered(new)))
            continue
        old_ttl, old = have[key]
        if protected:
            new = new | old  # git may add to an ignored RRset, never take away
        if new != old or ttl != old_ttl:
            updates.append(
                Change(UPDATE, name, rtype, ttl, old=_ordered(old), new=_ordered(new), old_ttl=old_ttl)
            )
    return tuple(conflicting_deletes + updates + creates + other_deletes)


def apply_changes(current: Iterable[Record], changes: Iterable[Change]) -> tuple[Record, ...]:
    """What a server holds after ``changes`` are applied to ``current`` (SOA left out)."""
    rrsets: dict[tuple[str, str], list[Record]] = {}
    for record in current:
        if record.type in _EXCLUDED_TYPES:
            continue
        if record.file or record.line:  # state keeps what the server holds, not where it came from
            record = Record(record.name, record.type, record.ttl, record.data)
        key = (record.name, record.type)
        rrset = rrsets.get(key)
        if rrset is None:
            rrsets[key] = [record]
        else:
            rrset.append(record)
    for change in changes:
        key = (change.name, change.type)
        if change.action == DELETE:
            rrsets.pop(key, None)
        else:
            rrsets[key] = [Record(change.name, change.type, change.ttl, data) for data in change.new]
    return tuple(record for rrset in rrsets.values() for record in rrset)


# -- safety (validation.md section F) ----------------------------------------------------------


def safety_findings(
    origin: str,
    changes: Sequence[Change],
    existing_count: int,
    *,
    update_threshold: float = 0.30,
    delete_threshold: float = 0.30,
    min_records: int = 10,
    zone_exists: bool = True,
    force: bool = False,
    file: str = "",
) -> tuple[Finding, ...]:
    """Findings for changes that need ``--force``: errors when not forced, warnings when forced.

    ``existing_count`` is the number of records (not RRsets) the provider holds, SOA excluded.
    """
    severity = WARNING if force else ERROR
    suffix = " (forced)" if force else "; apply with --force if intended"
    findings: list[Finding] = []
    if zone_exists:
        # The set of servers is what matters; a TTL-only change is harmless.
        apex_ns = [c for c in changes if c.name == origin and c.type == "NS" and set(c.old) != set(c.new)]
        if apex_ns:
            change = apex_ns[0]
            findings.append(Finding(severity, "apex-ns-change", origin, file, 0,
                                    f"the apex NS set changes from {', '.join(change.old) or 'nothing'} to "
                                    f"{', '.join(change.new) or 'nothing'}{suffix}"))
    if zone_exists and existing_count >= min_records:
        deleted = sum(len(c.old) for c in changes if c.action == DELETE)
        updated = sum(
            len(c.old) if c.ttl != c.old_ttl else len(set(c.old) - set(c.new))
            for c in changes if c.action == UPDATE
        )
        for count, limit, code, verb in ((updated, update_threshold, "too-many-updates", "updated"),
                                         (deleted, delete_threshold, "too-many-deletes", "deleted")):
            if count / existing_count > limit:
                findings.append(Finding(severity, code, origin, file, 0,
                                        f"{count} of {existing_count} existing records would be {verb} "
                                        f"({count / existing_count:.0%}, limit {limit:.0%}){suffix}"))
    return tuple(findings)


def capability_findings(origin: str, records: Iterable[Record], record_types: frozenset[str], provider: str,
                        ) -> tuple[Finding, ...]:
    """An error per record type the provider cannot hold (first record of each type named)."""
    seen: dict[str, Record] = {}
    for record in records:
        if record.type not in record_types and record.type not in _EXCLUDED_TYPES and record.type not in seen:
            seen[record.type] = record
    return tuple(
        Finding(ERROR, "unsupported-record-type", origin, record.file, record.line,
                f"provider {provider!r} cannot hold {rtype} records (first: {record.name})")
        for rtype, record in sorted(seen.items())
    )


# -- plans as data -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ZonePlan:
    """What one provider must do for one zone, with the findings that decide whether it may.

    ``serial_before`` is None when the zone does not exist at the provider yet; ``soa`` is the SOA
    to serve after applying (its serial is ``serial_after``).
    """

    zone: str
    provider: str
    changes: tuple[Change, ...] = ()
    findings: tuple[Finding, ...] = ()
    serial_before: int | None = None
    serial_after: int | None = None
    soa: Record | None = None
    soa_changed: bool = False  # SOA fields from configuration differ (nothing else may)
    create_zone: bool = False
    delete_zone: bool = False
    secondaries: tuple[str, ...] | None = None  # the provider's new secondaries list, when it changes

    @property
    def blocked(self) -> bool:
        return any(f.is_error for f in self.findings)

    @property
    def has_changes(self) -> bool:
        return (bool(self.changes) or self.soa_changed or self.create_zone or self.delete_zone
                or self.secondaries is not None)

    @property
    def records_change(self) -> bool:
        """True when the zone's data (records or SOA) changes, so its serial must move."""
        return bool(self.changes) or self.soa_changed or self.create_zone

    def to_dict(self) -> dict:
        """Everything the text plan shows: changes, zone creation or deletion, serials, the SOA
        to serve, secondaries, findings, and whether the findings block it."""
        return {
            "zone": self.zone, "provider": self.provider, "changes": [c.to_dict() for c in self.changes],
            "create_zone": self.create_zone, "delete_zone": self.delete_zone, "blocked": self.blocked,
            "has_changes": self.has_changes, "serial_before": self.serial_before, "serial_after": self.serial_after,
            "soa": self.soa.data if self.soa is not None else None, "soa_changed": self.soa_changed,
            "secondaries": list(self.secondaries) if self.secondaries is not None else None,
            "findings": [f.to_dict() for f in self.findings],
        }

    def checksum_payload(self) -> dict:
        """What a reviewed plan commits to: the changes and zone-level actions, not serials (which
        move with the date) nor findings."""
        return {"zone": self.zone, "provider": self.provider, "changes": [c.to_dict() for c in self.changes],
                "create_zone": self.create_zone, "delete_zone": self.delete_zone, "secondaries": self.secondaries}


def _change_lines(change: Change) -> list[str]:
    if change.action == CREATE:
        return [f"+ {change.name} {change.ttl} {change.type} {data}" for data in change.new]
    if change.action == DELETE:
        return [f"- {change.name} {change.old_ttl or change.ttl} {change.type} {data}" for data in change.old]
    lines = [f"- {change.name} {change.old_ttl} {change.type} {data}" for data in change.old
             if data not in change.new or change.ttl != change.old_ttl]
    lines += [f"+ {change.name} {change.ttl} {change.type} {data}" for data in change.new
              if data not in change.old or change.ttl != change.old_ttl]
    return lines


@dataclass(frozen=True)
class Plan:
    """Every zone plan of a run; prints, serialises and checksums as plain data."""

    zone_plans: tuple[ZonePlan, ...] = ()

    @cached_property  # a 100,000-change plan takes a while to serialise; it never changes
    def checksum(self) -> str:
        """sha256 of the canonical JSON of every change (serials left out, so a reviewed plan stays
        valid while nothing but the date moves)."""
        payload = [p.checksum_payload() for p in self.zone_plans if p.has_changes]
        text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    @property
    def change_count(self) -> int:
        return sum(len(p.changes) for p in self.zone_plans)

    def to_json(self) -> dict:
        return {"zones": [p.to_dict() for p in self.zone_plans], "checksum": self.checksum}

    def to_text(self) -> str:
        lines: list[str] = []
        for plan in self.zone_plans:
            header = f"{plan.zone} -> {plan.provider}"
            if plan.create_zone:
                header += " (new zone)"
            if plan.delete_zone:
                header += " (DELETE ZONE)"
            if plan.records_change and plan.serial_after is not None:
                header += f"  serial {plan.serial_before if plan.serial_before is not None else '-'} -> {plan.serial_after}"
            if not plan.has_changes:
                header += "  no changes"
            lines.append(header)
            for change in plan.changes:
                lines.extend("  " + line for line in _change_lines(change))
            if plan.soa_changed and not plan.create_zone:
                lines.append(f"  ~ SOA {plan.soa.data if plan.soa else ''}")
            if plan.secondaries is not None:
                lines.append(f"  ~ secondaries: {', '.join(plan.secondaries) or 'none'}")
            lines.extend("  " + f.to_text() for f in plan.findings)
        zones = sum(1 for p in self.zone_plans if p.has_changes)
        lines.append(f"{self.change_count} change(s) in {zones} zone(s); checksum {self.checksum}")
        return "\n".join(lines) + "\n"

    def to_markdown(self) -> str:
        """For an e-mail or a pull-request comment."""
        out = ["## DNS plan", ""]
        quiet = [p for p in self.zone_plans if not p.has_changes and not p.findings]
        for plan in self.zone_plans:
            if not plan.has_changes and not plan.findings:
                continue  # an email about one zone should not list a hundred unchanged ones
            title = f"### `{plan.zone}` → {plan.provider}"
            if plan.create_zone:
                title += " (new zone)"
            if plan.delete_zone:
                title += " (**zone deleted**)"
            out += [title, ""]
            if plan.changes:
                out += ["| | name | type | TTL | data |", "|---|---|---|---|---|"]
                for change in plan.changes:
                    for line in _change_lines(change):
                        sign, name, ttl, rtype, data = line.split(" ", 4)
                        cell = data.replace("|", "\\|")
                        out.append(f"| {'➕' if sign == '+' else '➖'} | `{name}` | {rtype} | {ttl} | `` {cell} `` |")
                out.append("")
            elif not plan.has_changes:
                out += ["No changes.", ""]
            if plan.soa_changed and not plan.create_zone and plan.soa is not None:
                out += [f"SOA settings change: `{plan.soa.data}`", ""]
            if plan.secondaries is not None:
                out += [f"Secondaries (also-notify, allow-transfer): {', '.join(plan.secondaries) or 'none'}", ""]
            for finding in plan.findings:
                out.append(f"- **{finding.severity}** `{finding.code}`: {finding.message}")
            if plan.findings:
                out.append("")
        if quiet:
            out += [f"{len(quiet)} zone/provider pair(s) without changes.", ""]
        out.append(f"{self.change_count} change(s); checksum `{self.checksum}`")
        return "\n".join(out) + "\n"
