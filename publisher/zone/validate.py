"""Zone validation: the structural checks of ``validation.md`` (A.6-A.8, A.11 warning, B-E).

``validate_zone`` takes an evaluated ``Zone`` (model conventions: absolute lower-case names,
upper-case types, canonical rdata) and returns every finding at once.  It is a pure function and
fast: a few C-speed passes group records by owner name, then each check looks at the few names
it concerns.  No dnspython object is built for the common types (a 1,000,000-record zone validates
in seconds); only the rare DNSSEC consistency checks (CDS/CDNSKEY) use dnspython.

Per-record syntax (A.1-A.5, A.9, A.10, TTL range) belongs to the readers; publishing safety (F) and
the serial increase (B.15) to the planner.  Out-of-zone targets are never resolved.

Severity is the servers' verdict, not ours: a finding is an error only when the data cannot be
written on the wire or the server the zone goes to refuses to load it: BIND 9.18 (``named`` loading
it as a primary, which is ``named-checkzone`` with check-names set to fail, ``named``'s default for
primaries) unless Knot (``kzonecheck``) is asked for.  Everything else is a warning that says who
would complain and why.  ``tests/test_server_verdicts.py`` runs both checkers over a zone for every
line below and holds this table to them (docs/checks.md gives each verdict's evidence).  Four checks
(marked ``newer``) follow BIND releases after 9.18, which refuse what 9.18 still loads, so that a
BIND upgrade never stops a zone that linted clean; BIND's own checkzone corpus shows those verdicts.

Catalogue (code[:case], BIND verdict, Knot verdict; E = error, W = warning).  A ``:case`` line is
the same code where the servers judge a variant differently; ``_VERDICTS`` is this table as data.

A. names and TTLs
  owner-outside-zone        W W  owner not at or below the apex (a file: both ignore it, "out-of-zone data")
  owner-outside-zone:published  E E  the same in a repository: RFC 2136 answers NOTZONE, PowerDNS refuses it
  name-too-long             E E  a name (owner or in rdata) over 255 octets on the wire
  label-too-long            E E  a label over 63 octets
  empty-label               E E  a name with an empty label (``a..b``)
  hostname-syntax           E W  A/AAAA/MX owner or NS/MX/SRV/SVCB/SOA/reverse-PTR target not a host name (named: check-names primary fail)
  ttl-above-max             W W  TTL above the configured maximum
B. zone structure
  soa-missing               E E  standalone file without SOA
  soa-multiple              E W  two different SOA records at the apex (the same one twice is a duplicate-record)
  soa-not-at-apex           E W  SOA below the apex (BIND: "not at top of zone")
  soa-timer-zero            W W  refresh, retry or expire of zero (or "negative", >= 2^31); both load it
  soa-timers-placeholder    W W  refresh, retry and expire all zero (a placeholder SOA)
  soa-timers-unusual        W W  SOA timers outside RFC 1912 / RFC 2308 advice
  apex-ns-missing           E E  standalone file without NS at the apex
  apex-ns-single            W W  only one apex NS
  rrset-ttl-mismatch        W W  records of one RRset with different TTLs
  duplicate-record          W W  the same record twice
  spf-record-type           W W  SPF type 99 (RFC 7208: use TXT); same code as the Lua spf() warning
C. CNAME and aliases
  cname-and-other-data      E E  CNAME beside other data (DNSSEC types excepted)
  cname-and-other-data:key  E E  CNAME beside KEY/SIG/NXT only (newer: 9.18 loads it)
  cname-multiple            E E  more than one CNAME at an owner
  cname-at-apex             E E  CNAME at the apex (use alias())
  cname-loop                W W  CNAME chain inside the zone that loops (both load it; resolution fails)
  cname-chain               W W  CNAME pointing at another CNAME of the zone
  cname-target-missing      W W  in-zone CNAME target that has no records
  alias-and-address         E E  ALIAS beside A/AAAA (the publisher's own type: it cannot tell which addresses win)
  alias-multiple            E E  more than one ALIAS at an owner (the publisher's own type)
  ns-target-is-cname        E E  in-zone apex NS target is a CNAME
  ns-target-is-cname:delegation  W E  in-zone delegation NS target is a CNAME (Knot: missing glue)
  mx-target-is-cname        W W  in-zone MX target is a CNAME (BIND check-mx-cname warn)
  srv-target-is-cname       W W  in-zone SRV target is a CNAME (BIND check-srv-cname warn)
  ns-target-looks-like-ip   W W  NS target written as an IP address
  mx-target-looks-like-ip   W W  MX target written as an IP address
  ns-target-no-address      E E  in-zone apex NS target without A/AAAA
  ns-target-no-address:delegation  W E  in-zone delegation NS target without A/AAAA (Knot: missing glue)
  mx-target-no-address      W W  in-zone MX target without A/AAAA (BIND: "has no address records")
  srv-target-no-address     W W  in-zone SRV target without A/AAAA (BIND: "has no address records")
  null-mx-not-alone         W W  a null MX (``0 .``) beside other MX records
  null-mx-preference        W W  a null MX with a preference other than 0
D. delegations and glue
  data-below-delegation     W W  non-glue data below (or beside) a delegation: occluded, never served
  occluded-delegation       W W  NS below another delegation: never served
  occluded-delegation:dname  W E  NS below a DNAME (Knot: child record under DNAME)
  missing-glue              W E  delegation NS target inside that child without A/AAAA here
  missing-glue:elsewhere    W W  apex NS, or NS of another delegation, inside a child without glue
  ns-target-below-dname     E E  apex NS target below a DNAME
  ns-target-below-dname:delegation  W E  delegation NS target below a DNAME
  ds-at-apex                E W  DS at the apex (it belongs in the parent zone)
  ds-not-at-delegation      E W  DS at a name without NS (newer: 9.18 loads it)
  cds-mismatch              E W  CDS of an algorithm no DNSKEY of the zone has (or no DNSKEY at all)
  cds-mismatch:digest       W W  CDS that matches no DNSKEY of its algorithm
  cdnskey-mismatch          E W  CDNSKEY of an algorithm no DNSKEY of the zone has (or no DNSKEY at all)
  cdnskey-mismatch:key      W W  CDNSKEY that is not one of the zone's DNSKEYs of its algorithm
  dnssec-algorithm-deprecated  W W  DNSKEY/KEY/DS/CDS with an algorithm RFC 8624 forbids for signing
  ds-digest-deprecated      W W  DS/CDS with a SHA-1 or GOST digest
E. DNAME and wildcards
  dname-not-singleton       E E  more than one DNAME at an owner
  ns-beside-dname           W E  NS and DNAME at the same non-apex name
  data-below-dname          W E  data below a DNAME: occluded, never served
  wildcard-not-leftmost     W W  ``*`` that is not the whole leftmost label (literal, not a wildcard)
  wildcard-forbidden-type   E W  NS at a wildcard owner (BIND: "invalid NS owner name (wildcard)")
  wildcard-forbidden-type:other  W W  SOA, DNAME or DS at a wildcard owner (RFC 4592; both load it)
other (from BIND's checkzone corpus)
  svcb-dns-missing-alpn     E W  ServiceMode SVCB at ``_dns`` without alpn (RFC 9461; newer: 9.18 loads it)
  svcb-dns-missing-dohpath  E W  ServiceMode SVCB at ``_dns`` with an HTTP alpn and no dohpath (newer)
  nsec3-owner-invalid       E W  NSEC3 owner label not an unpadded base32hex hash (BIND: "bad owner name")
"""

from __future__ import annotations

import operator
import re
from itertools import compress
from typing import Iterable, Sequence

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype

from publisher.model import ERROR, WARNING, Finding, Record, Zone, cyclic_gc_paused

__all__ = ["validate_zone", "SERVERS", "NEWER_BIND"]

# The catalogue above as data: (BIND verdict, Knot verdict) per code or code:case.
_VERDICTS: dict[str, str] = {
    "owner-outside-zone": "WW", "owner-outside-zone:published": "EE", "name-too-long": "EE",
    "label-too-long": "EE", "empty-label": "EE", "hostname-syntax": "EW", "ttl-above-max": "WW",
    "soa-missing": "EE", "soa-multiple": "EW", "soa-not-at-apex": "EW", "soa-timer-zero": "WW",
    "soa-timers-placeholder": "WW", "soa-timers-unusual": "WW", "apex-ns-missing": "EE",
    "apex-ns-single": "WW", "rrset-ttl-mismatch": "WW", "duplicate-record": "WW",
    "spf-record-type": "WW", "cname-and-other-data": "EE", "cname-and-other-data:key": "EE",
    "cname-multiple": "EE", "cname-at-apex": "EE", "cname-loop": "WW", "cname-chain": "WW",
    "cname-target-missing": "WW", "alias-and-address": "EE", "alias-multiple": "EE",
    "ns-target-is-cname": "EE", "ns-target-is-cname:delegation": "WE", "mx-target-is-cname": "WW",
    "srv-target-is-cname": "WW", "ns-target-looks-like-ip": "WW", "mx-target-looks-like-ip": "WW",
    "ns-target-no-address": "EE", "ns-target-no-address:delegation": "WE", "mx-target-no-address": "WW",
    "srv-target-no-address": "WW", "null-mx-not-alone": "WW", "null-mx-preference": "WW",
    "data-below-delegation": "WW", "occluded-delegation": "WW", "occluded-delegation:dname": "WE",
    "missing-glue": "WE", "missing-glue:elsewhere": "WW", "ns-target-below-dname": "EE",
    "ns-target-below-dname:delegation": "WE", "ds-at-apex": "EW", "ds-not-at-delegation": "EW",
    "cds-mismatch": "EW", "cds-mismatch:digest": "WW", "cdnskey-mismatch": "EW",
    "cdnskey-mismatch:key": "WW", "dnssec-algorithm-deprecated": "WW", "ds-digest-deprecated": "WW",
    "dname-not-singleton": "EE", "ns-beside-dname": "WE", "data-below-dname": "WE",
    "wildcard-not-leftmost": "WW", "wildcard-forbidden-type": "EW",
    "wildcard-forbidden-type:other": "WW", "svcb-dns-missing-alpn": "EW",
    "svcb-dns-missing-dohpath": "EW", "nsec3-owner-invalid": "EW",
}
# Verdicts that follow BIND releases after 9.18 (9.18 itself loads these zones).
NEWER_BIND = frozenset({"cname-and-other-data:key", "ds-not-at-delegation", "svcb-dns-missing-alpn",
                        "svcb-dns-missing-dohpath"})
SERVERS = ("bind", "knot")

# Types that may share an owner with a CNAME (RFC 2181 10.1, RFC 4035 2.5).
_CNAME_COMPANIONS = frozenset({"CNAME", "RRSIG", "NSEC", "NSEC3"})
# Types BIND 9.18 still lets beside a CNAME (RFC 2535 leftovers); later releases and Knot do not.
_OLD_CNAME_COMPANIONS = frozenset({"KEY", "SIG", "NXT"})
# Types allowed at a delegation point besides glue (RFC 4035 2.2/2.4).
_AT_CUT = frozenset({"NS", "DS", "RRSIG", "NSEC"})
_ADDRESS = frozenset({"A", "AAAA", "ALIAS"})
# Types whose data holds names at known positions (split on single spaces); -1 means the whole data.
_NAME_FIELDS: dict[str, tuple[int, ...]] = {
    "NS": (-1,), "CNAME": (-1,), "PTR": (-1,), "DNAME": (-1,), "ALIAS": (-1,), "MB": (-1,),
    "MD": (-1,), "MF": (-1,), "MG": (-1,), "MR": (-1,), "NSAP-PTR": (-1,),
    "MX": (1,), "KX": (1,), "RT": (1,), "AFSDB": (1,), "LP": (1,), "SRV": (3,), "SOA": (0, 1),
    "MINFO": (0, 1), "RP": (0, 1), "PX": (1, 2), "TALINK": (0, 1), "SVCB": (1,), "HTTPS": (1,),
    "NSEC": (0,),
}
# Types a record-by-record pass must hand to a later check.
_COLLECTED = frozenset({
    "SOA", "NS", "CNAME", "MX", "SRV", "DNAME", "DS", "CDS", "CDNSKEY", "SVCB", "HTTPS", "SPF",
    "NSEC3", "PTR", "ALIAS", "DNSKEY", "KEY",
})

_TYPE_OF = operator.itemgetter(1)
# Types whose company at one owner is restricted (C.18, E.31, ALIAS).
_GROUP_RULES = frozenset({"CNAME", "DNAME", "ALIAS"})
_HOST_OWNER_TYPES = frozenset({"A", "AAAA", "MX"})
_HOST_BYTES = b"abcdefghijklmnopqrstuvwxyz0123456789.-\n"
_HOST_LABEL = r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?"
# Targets must be real host names (BIND check-names).
_HOST_TARGET = re.compile(rf"(?:{_HOST_LABEL}\.)+").fullmatch
# BIND's check-names for A/AAAA/MX owners: a host name, maybe below a wildcard; A/AAAA also at
# Active Directory's gc._msdcs.<forest>, and A at any name with an _spf, _spf_rate or _spf_verify
# label (RFC 7208 exists: macros).
_HOST_OWNER = re.compile(rf"(?:\*\.)?(?:{_HOST_LABEL}\.)+").fullmatch
_SPF_LABELS = frozenset({"_spf", "_spf_rate", "_spf_verify"})
_AD_OWNER = re.compile(rf"gc\._msdcs\.(?:{_HOST_LABEL}\.)+").fullmatch
_IP_START = frozenset("0123456789:")
_IP_LIKE = re.compile(r"(?:\d{1,3}\.){4}|[0-9a-f]*:[0-9a-f:.]*\.").match
_NSEC3_LABEL = re.compile(r"[0-9a-v]+").fullmatch
_SVC_PARAM = re.compile(r'([a-z0-9-]+)(?:=("(?:[^"\\]|\\.)*"|\S*))?')
_DNS_SD = frozenset({"b", "db", "r", "dr", "lb"})
_HTTP_ALPN = frozenset({"h2", "h3", "http/1.1"})
_MAX_SIGNED = 2**31 - 1
_MAX_TTL_FINDINGS = 100
_DEPRECATED_ALGORITHMS = {"1": "RSAMD5", "3": "DSA", "5": "RSASHA1", "6": "DSA-NSEC3-SHA1",
                          "7": "RSASHA1-NSEC3-SHA1", "12": "ECC-GOST"}


class _Checker:
    """State of one validation run; ``findings`` collects as the checks go."""

    def __init__(self, zone: Zone, standalone: bool, max_ttl: int, server: str) -> None:
        self.zone = zone
        self.column = SERVERS.index(server)  # which verdict of _VERDICTS applies
        self.origin = zone.origin
        self.standalone = standalone
        self.max_ttl = max_ttl
        self.findings: list[Finding] = []
        # Owner name -> its last Record (every owner), and -> all its Records (owners with several).
        self.single: dict[str, Record] = {}
        self.groups: dict[str, Sequence[Record]] = {}
        self.collected: dict[str, list[Record]] = {t: [] for t in _COLLECTED}
        self.cuts: dict[str, str] = {}  # delegation or DNAME owner -> "NS" | "DNAME" (not the apex)
        self.below: dict[str, str] = {}  # occluded owner -> the cut above it
        self.apex_dname = False
        self.cname_targets: dict[str, str] = {}
        self.wildcards = False
        self.host_owners: list[str] = []
        self.suffix = "." + zone.origin
        # Dots in a name exactly one label below the apex; deeper names may sit below a cut.
        self.depth = zone.origin.count(".") + 1 if zone.origin != "." else 1
        # redirect() names get the redirect service's A/AAAA records at publish time.
        self.redirects = frozenset(s.name for s in zone.services if s.kind == "redirect")

    # -- helpers -----------------------------------------------------------------------------
    def add(self, code: str, record: Record | None, message: str, case: str = "") -> None:
        """One finding; its severity is the chosen server's verdict on ``code`` (or ``code:case``)."""
        verdict = _VERDICTS[f"{code}:{case}" if case else code][self.column]
        file = (record.file if record is not None else "") or self.zone.file
        line = record.line if record is not None else 0
        self.findings.append(Finding(ERROR if verdict == "E" else WARNING, code, self.origin, file, line, message))

    def in_zone(self, name: str) -> bool:
        origin = self.origin
        return origin == "." or name == origin or name.endswith("." + origin)

    def records_at(self, name: str) -> Sequence[Record]:
        group = self.groups.get(name)
        if group is not None:
            return group
        record = self.single.get(name)
        return () if record is None else (record,)

    def types_at(self, name: str) -> set[str]:
        return {r.type for r in self.records_at(name)}

    def cut_above(self, name: str) -> str | None:
        """The nearest delegation or DNAME strictly above ``name`` inside the zone, if any."""
        cuts = self.cuts
        if not cuts:
            return None
        origin_len = len(self.origin)
        parent = name
        while True:
            dot = parent.find(".")
            if dot < 0 or dot == len(parent) - 1:
                return None
            parent = parent[dot + 1:]
            if len(parent) <= origin_len:
                return None
            if parent in cuts:
                return parent

    def has_address(self, name: str) -> bool:
        record = self.single.get(name)
        if record is None:
            return name in self.redirects or bool(self._wildcard_types(name) & _ADDRESS)
        if record[1] in _ADDRESS:
            return True
        return name in self.groups and any(r[1] in _ADDRESS for r in self.groups[name])

    def _wildcard_types(self, name: str) -> set[str]:
        """Types a wildcard would synthesise at the non-existent ``name`` (RFC 4592, simplified:
        the nearest ``*`` ancestor wins; empty non-terminals are not tracked)."""
        if not self.wildcards:
            return set()
        parent = name
        while parent != self.origin:
            dot = parent.find(".")
            if dot < 0 or dot == len(parent) - 1:
                break
            parent = parent[dot + 1:]
            wildcard = "*." + parent
            if wildcard in self.single:
                return self.types_at(wildcard)
        return set()

    def exists(self, name: str) -> bool:
        return name in self.single or name in self.redirects or bool(self._wildcard_types(name))

    # -- passes ------------------------------------------------------------------------------
    def run(self) -> list[Finding]:
        self.index()
        self.check_names()
        self.check_soa()
        self.check_apex_ns()
        self.find_cuts()
        self.check_occluded()
        self.check_cnames()
        self.check_ns_targets()
        self.check_mail_and_services()
        self.check_dnssec()
        self.check_misc()
        return self.findings

    def index(self) -> None:
        """Group records by owner and collect the types later checks need.  Comprehensions and
        C-level dict building rather than one Python loop: this is the hot path of big zones."""
        records = self.zone.records
        names = [r[0] for r in records]
        self.single = single = dict(zip(names, records))
        extra = len(records) - len(single)
        if extra:
            groups = self.groups
            # Zone files list an owner's records together: when every repeat of a name follows
            # the same name, the groups come from those few positions alone.
            # flags[j]: record j has the owner of record j - 1.  A run [start, end) of one owner
            # shows as flags changing at start and at end - 1, so runs come from pairs of changes.
            flags = [False, *map(operator.eq, names[1:], names), False]
            if sum(flags) == extra:
                changes = list(compress(range(len(names)), map(operator.ne, flags[1:], flags)))
                self.groups = {names[start]: records[start:last + 1]
                               for start, last in zip(changes[::2], changes[1::2])}
            else:
                # An owner has several records exactly when one of them is not the one dict() kept.
                multi = {r[0] for r in records if single[r[0]] is not r}
                for record in [r for r in records if r[0] in multi]:
                    group = groups.get(record[0])
                    if group is None:
                        groups[record[0]] = [record]
                    else:
                        group.append(record)
        collected = self.collected
        for record in [r for r in records if r[1] in _COLLECTED]:
            collected[record[1]].append(record)
        max_ttl = self.max_ttl
        too_long = [r for r in records if r[2] > max_ttl]
        for record in too_long[:_MAX_TTL_FINDINGS]:
            self.add("ttl-above-max", record,
                     f"TTL {record.ttl} of {record.name} {record.type} is above the maximum of "
                     f"{max_ttl} s; use at most {max_ttl}")
        if len(too_long) > _MAX_TTL_FINDINGS:
            # Usually one $TTL line; a warning per record would bury every other finding.
            self.add("ttl-above-max", too_long[_MAX_TTL_FINDINGS],
                     f"{len(too_long) - _MAX_TTL_FINDINGS} more records have a TTL above the maximum "
                     f"of {max_ttl} s (check $TTL or the default TTL)")
        for record in [r for r in records if r[1] in _NAME_FIELDS and (len(r[3]) > 63 or ".." in r[3])]:
            self.check_rdata_names(record, _NAME_FIELDS[record.type])
        self.host_owners = [r[0] for r in records if r[1] in _HOST_OWNER_TYPES]

    def check_rdata_names(self, record: Record, fields: tuple[int, ...]) -> None:
        data = record[3]
        parts = data.split(" ")
        for index in fields:
            name = data if index == -1 else (parts[index] if index < len(parts) else "")
            problem = _name_problem(name)
            if problem:
                code, why = problem
                self.add(code, record, f"{record.type} data of {record.name}: {why}")

    def check_names(self) -> None:
        """Per owner: inside the zone, name length, wildcard form, host-name syntax, and the
        checks that need all records of one owner (duplicates, TTLs, CNAME/DNAME/ALIAS company)."""
        origin = self.origin
        single = self.single
        joined = "\n" + "\n".join(single) + "\n"
        if origin != "." and joined.count("." + origin + "\n") + (origin in single) != len(single):
            suffix = "." + origin
            for name in [n for n in single if n != origin and not n.endswith(suffix)]:
                self.add("owner-outside-zone", self.records_at(name)[0],
                         f"{name} is not at or below the zone apex {origin}: BIND and Knot ignore "
                         f"out-of-zone data in a file, and an RFC 2136 server refuses it (NOTZONE); "
                         f"check $ORIGIN or write the name relative to the zone",
                         "" if self.standalone else "published")
        if max(map(len, single), default=0) > 63 or ".." in joined or "\n." in joined:
            for name in single:
                problem = _name_problem(name)
                if problem:
                    self.add(problem[0], self.records_at(name)[0], f"owner {name}: {problem[1]}")
        self.wildcards = "*" in joined
        if self.wildcards:
            for name in [n for n in single if "*" in n]:
                self.check_wildcard(name, self.records_at(name))
        # Most owners with several records hold distinct ordinary types (A + AAAA, MX + TXT):
        # nothing to check there, decided once per type signature.
        plain: dict[tuple[str, ...], bool] = {}
        for name, group in self.groups.items():
            signature = tuple(map(_TYPE_OF, group))
            is_plain = plain.get(signature)
            if is_plain is None:
                kinds = set(signature)
                is_plain = plain[signature] = len(kinds) == len(signature) and not kinds & _GROUP_RULES
            if not is_plain:
                self.check_owner_group(name, group)
        checked = set()
        for name in _odd_names(self.host_owners):
            if name in checked or name == ".":
                continue
            checked.add(name)
            record = next((r for r in self.records_at(name)
                           if r.type in _HOST_OWNER_TYPES and not _bind_owner_ok(name, r.type)), None)
            if record is not None:
                self.add("hostname-syntax", record,
                         f"{name} owns {record.type} records but is not a valid host name (letters, "
                         f"digits and inner hyphens only): named refuses the zone as a primary "
                         f"(check-names fail; named-checkzone only warns), Knot loads it")

    def check_target_host(self, record: Record, target: str, what: str) -> None:
        """Host-name syntax of a target, as BIND's check-names has it for NS/MX/SRV targets,
        ServiceMode SVCB/HTTPS targets, the SOA primary and reverse-zone PTR targets."""
        if target == "." or _HOST_TARGET(target):
            return
        self.add("hostname-syntax", record,
                 f"{what} {target} of {record.name} {record.type} is not a valid host name "
                 f"(letters, digits and inner hyphens only): named refuses the zone as a primary "
                 f"(check-names fail; named-checkzone only warns), Knot loads it")

    def check_wildcard(self, name: str, records: Sequence[Record]) -> None:
        if not name.startswith("*.") or "*" in name[2:]:
            if name != "*":
                self.add("wildcard-not-leftmost", records[0],
                         f"in {name} the '*' is not the whole leftmost label, so it is a literal "
                         f"character and not a wildcard (BIND warns: non-terminal wildcard); write "
                         f"*.<name> for a wildcard")
            return
        for record in records:
            if record.type == "NS":
                self.add("wildcard-forbidden-type", record,
                         f"NS at the wildcard {name}: BIND refuses the zone (invalid NS owner name), "
                         f"Knot loads it; RFC 4592 forbids it: use an explicit name")
            elif record.type in ("SOA", "DNAME", "DS"):
                self.add("wildcard-forbidden-type", record,
                         f"{record.type} at the wildcard {name} is not allowed by RFC 4592 and never "
                         f"synthesised (BIND and Knot load it); use an explicit name", "other")

    def check_owner_group(self, name: str, records: Sequence[Record]) -> None:
        by_type: dict[str, list[Record]] = {}
        for record in records:
            by_type.setdefault(record.type, []).append(record)
        for rtype, rrset in by_type.items():
            if len(rrset) > 1:
                self.check_rrset(name, rtype, rrset)
        cnames = by_type.get("CNAME")
        if cnames:
            others = sorted(t for t in by_type if t not in _CNAME_COMPANIONS)
            if others:
                self.add("cname-and-other-data", cnames[0],
                         f"{name} has a CNAME and other data ({', '.join(others)}), which BIND and "
                         f"Knot refuse; a CNAME must be alone at its name: remove the other records "
                         f"or the CNAME", "key" if _OLD_CNAME_COMPANIONS.issuperset(others) else "")
            if len({r.data for r in cnames}) > 1:
                self.add("cname-multiple", cnames[1],
                         f"{name} has more than one CNAME; keep exactly one")
        dnames = by_type.get("DNAME")
        if dnames:
            if len({r.data for r in dnames}) > 1:
                self.add("dname-not-singleton", dnames[1],
                         f"{name} has more than one DNAME; a DNAME must be a singleton (RFC 6672)")
            if "NS" in by_type and name != self.origin:
                self.add("ns-beside-dname", by_type["NS"][0],
                         f"{name} has both NS and DNAME; below the apex that is ambiguous: Knot "
                         f"refuses the zone, BIND loads it; keep the delegation or the DNAME")
        aliases = by_type.get("ALIAS")
        if aliases:
            if len({r.data for r in aliases}) > 1:
                self.add("alias-multiple", aliases[1],
                         f"{name} has more than one ALIAS; keep exactly one")
            for rtype in ("A", "AAAA"):
                if rtype in by_type:
                    self.add("alias-and-address", by_type[rtype][0],
                             f"{name} has an ALIAS and {rtype} records; the ALIAS publishes the "
                             f"addresses itself: remove the {rtype} records or the ALIAS")
        mxs = by_type.get("MX")
        if mxs and len(mxs) > 1:
            for record in mxs:
                if _field(record.data, 1) == ".":
                    self.add("null-mx-not-alone", record,
                             f"{name} has a null MX ('0 .', RFC 7505: accepts no mail) beside other "
                             f"MX records, a contradiction senders resolve differently (BIND and "
                             f"Knot load it); remove one or the other")
                    break

    def check_rrset(self, name: str, rtype: str, rrset: list[Record]) -> None:
        seen: dict[str, Record] = {}
        for record in rrset:
            if record.data in seen:
                self.add("duplicate-record", record,
                         f"{name} {rtype} {record.data} is listed twice; it is published once: "
                         f"remove the duplicate")
            else:
                seen[record.data] = record
        ttls = {r.ttl for r in rrset}
        if len(ttls) > 1:
            low = min(ttls)
            odd = next(r for r in rrset if r.ttl != low)
            self.add("rrset-ttl-mismatch", odd,
                     f"the {rtype} records of {name} have different TTLs ({', '.join(map(str, sorted(ttls)))}); "
                     f"all are published with the lowest, {low} (BIND warns: TTL set to prior TTL): give "
                     f"them one TTL")

    def check_soa(self) -> None:
        soas = self.collected["SOA"]
        if not soas:
            if self.standalone:
                self.add("soa-missing", None,
                         f"the zone file has no SOA record; add one at the apex {self.origin}")
            return
        for record in soas:
            if record.name != self.origin:
                self.add("soa-not-at-apex", record,
                         f"SOA at {record.name}, but it belongs only at the apex {self.origin} "
                         f"(BIND refuses the zone: not at top of zone)")
        # The same SOA written twice is one record (a duplicate-record warning), as for the servers.
        apex = {r.data: r for r in soas if r.name == self.origin}
        if len(apex) > 1:
            self.add("soa-multiple", list(apex.values())[1],
                     f"the zone has {len(apex)} different SOA records; BIND refuses the zone "
                     f"(multiple RRs of singleton type): keep exactly one, at the apex")
        soa = next((r for r in soas if r.name == self.origin), soas[0])
        parts = soa.data.split(" ")
        try:
            mname = parts[0]
            refresh, retry, expire, minimum = (int(p) for p in parts[3:7])
        except (IndexError, ValueError):
            return  # malformed data was reported by the reader
        self.check_target_host(soa, mname, "primary server")
        self.check_soa_timers(soa, refresh, retry, expire, minimum)

    def check_soa_timers(self, soa: Record, refresh: int, retry: int, expire: int, minimum: int) -> None:
        timers = {"refresh": refresh, "retry": retry, "expire": expire}
        if refresh == retry == expire == 0:
            # The all-zero form is the usual placeholder (BIND's own test zones use it); the
            # publisher's configured timers replace it, so it is worth a warning, not a block.
            self.add("soa-timers-placeholder", soa,
                     "SOA refresh, retry and expire are all 0: secondaries would drop the zone at "
                     "once; set real timers (e.g. 3600 600 1209600) or let configuration supply them")
            return
        bad = [k for k, v in timers.items() if v == 0 or v > _MAX_SIGNED]
        if minimum > _MAX_SIGNED:
            bad.append("minimum")
        if bad:
            self.add("soa-timer-zero", soa,
                     f"SOA {', '.join(bad)} should be a positive number of seconds below 2^31 "
                     f"(BIND and Knot load it, but secondaries misbehave); typical values: "
                     f"refresh 3600, retry 600, expire 1209600, minimum 300")
            return
        advice = []
        if not 1200 <= refresh <= 43200:
            advice.append(f"refresh {refresh} (RFC 1912: 1200-43200)")
        if retry >= refresh:
            advice.append(f"retry {retry} not below refresh {refresh}")
        if not 604800 <= expire <= 2419200:
            advice.append(f"expire {expire} (RFC 1912: 1-4 weeks)")
        elif expire < refresh + retry:
            advice.append(f"expire {expire} below refresh + retry")
        if minimum > 86400:
            advice.append(f"minimum {minimum} (RFC 2308: at most 1 day, 1-3 hours work well)")
        if advice:
            self.add("soa-timers-unusual", soa,
                     f"SOA timers outside common advice: {'; '.join(advice)}")

    def check_apex_ns(self) -> None:
        apex_ns = [r for r in self.collected["NS"] if r.name == self.origin]
        if not apex_ns:
            if self.standalone:
                self.add("apex-ns-missing", None,
                         f"the zone file has no NS records at the apex {self.origin}; add at least two")
            return
        if len({r.data for r in apex_ns}) < 2:
            self.add("apex-ns-single", apex_ns[0],
                     f"the zone has a single name server ({apex_ns[0].data}); RFC 1034 asks for at "
                     f"least two, on separate networks")

    def find_cuts(self) -> None:
        """Delegations (non-apex NS) and DNAMEs, and every owner name below one of them."""
        cuts = self.cuts
        origin = self.origin
        for record in self.collected["DNAME"]:
            if record.name == origin:
                self.apex_dname = True  # occludes the whole zone below the apex
            elif self.in_zone(record.name):
                cuts[record.name] = "DNAME"
        for record in self.collected["NS"]:
            if record.name != origin and record.name not in cuts and self.in_zone(record.name):
                cuts[record.name] = "NS"
        if not cuts and not self.apex_dname:
            return
        below = self.below
        suffix = self.suffix
        if self.apex_dname:
            for name in self.single:
                if name != origin and (origin == "." or name.endswith(suffix)):
                    below[name] = self.cut_above(name) or origin
            return
        # Only names at least two labels below the apex can be below a cut.
        depth = self.depth
        for name in [n for n in self.single if n.count(".") > depth]:
            if origin == "." or name.endswith(suffix):
                cut = self.cut_above(name)
                if cut is not None:
                    below[name] = cut

    def cut_kind(self, cut: str) -> str:
        return "DNAME" if cut == self.origin else self.cuts[cut]

    def check_occluded(self) -> None:
        """Only glue may live below a delegation (D.27); nothing below a DNAME (E.31)."""
        glue_names = {r.data for r in self.collected["NS"]}
        for name, cut in self.below.items():
            kind = self.cut_kind(cut)
            for record in self.records_at(name):
                rtype = record.type
                if kind == "NS" and rtype in ("A", "AAAA") and name in glue_names:
                    continue
                if rtype == "NS":
                    refused = ": Knot refuses the zone (child record under DNAME), BIND loads it" if kind == "DNAME" else ""
                    self.add("occluded-delegation", record,
                             f"the delegation {name} lies below the {kind} at {cut} and is never "
                             f"served{refused}; remove it (it belongs in the child zone)",
                             "dname" if kind == "DNAME" else "")
                    continue
                if kind == "NS":
                    self.add("data-below-delegation", record,
                             f"{name} {rtype} lies below the delegation {cut} and is never served "
                             f"(BIND and Knot load it as occluded data); only glue A/AAAA for its "
                             f"name servers belongs here: move it to the child zone")
                else:
                    self.add("data-below-dname", record,
                             f"{name} {rtype} lies below the DNAME at {cut}, which redirects the "
                             f"whole subtree, so it is never served: Knot refuses the zone (child "
                             f"record under DNAME), BIND loads it; remove it or the DNAME")
        # Beside a delegation: only NS, DS (and DNSSEC), plus glue when the server is the cut itself.
        for cut, kind in self.cuts.items():
            if kind != "NS" or cut in self.below:
                continue
            for record in self.records_at(cut):
                rtype = record.type
                if rtype in _AT_CUT or rtype == "DNAME" or (rtype in ("A", "AAAA") and cut in glue_names):
                    continue
                if rtype == "CNAME":
                    continue  # reported as cname-and-other-data
                self.add("data-below-delegation", record,
                         f"{cut} {rtype} sits at the delegation point {cut} and is never served "
                         f"(the child zone answers there; BIND and Knot load it as occluded data): "
                         f"move it to the child zone")

    def target_scope(self, target: str) -> str:
        """"out" (not this zone's data), "delegated", "dname" or "auth" (authoritative here)."""
        origin = self.origin
        if not (origin == "." or target == origin or target.endswith(self.suffix)):
            return "out"
        # A target equal to a cut name is the cut's own glue, so only cuts strictly above count.
        if self.cuts and target.count(".") > self.depth:
            cut = self.cut_above(target)
            if cut is not None:
                return "delegated" if self.cuts[cut] == "NS" else "dname"
        if self.apex_dname and target != origin:
            return "dname"
        return "auth"

    def check_cnames(self) -> None:
        targets: dict[str, str] = {}
        first: dict[str, Record] = {}
        below = self.below
        for record in self.collected["CNAME"]:
            owner = record[0]
            if owner == self.origin:
                self.add("cname-at-apex", record,
                         f"CNAME at the zone apex {self.origin} is not allowed (the apex needs SOA "
                         f"and NS); use alias(\"{self.origin}\", \"{record.data}\") or A/AAAA records")
            if owner in below or owner in targets:
                continue
            targets[owner] = record[3]
            first[owner] = record
        # Follow each chain once; state: 1 = on the current path, 2 = finished.
        state: dict[str, int] = {}
        in_loops: set[str] = set()
        for start in targets:
            if start in state:
                continue
            path = []
            node = start
            while node in targets and node not in state:
                state[node] = 1
                path.append(node)
                node = targets[node]
            if state.get(node) == 1:
                loop = path[path.index(node):]
                in_loops.update(loop)
                for member in loop:
                    self.add("cname-loop", first[member],
                             f"CNAME loop: {' -> '.join(loop + [loop[0]])}: BIND and Knot load it but "
                             f"no lookup of these names can succeed; point one of them at a name "
                             f"with real data")
            for member in path:
                state[member] = 2
        single = self.single
        for owner, target in targets.items():
            if target in targets:
                if owner not in in_loops:
                    self.add("cname-chain", first[owner],
                             f"CNAME {owner} points at {target}, itself a CNAME; point it directly "
                             f"at {targets[target]}")
            elif target not in single and self.target_scope(target) == "auth" and not self.exists(target):
                self.add("cname-target-missing", first[owner],
                         f"CNAME {owner} points at {target}, which has no records in this zone")
        self.cname_targets = targets

    def check_targets(self, kind: str, by_target: dict[str, list[Record]]) -> None:
        """Checks of the hosts named by NS, MX or SRV records, once per distinct target."""
        upper = kind.upper()
        odd = set(_odd_names(list(by_target)))
        cname_targets = self.cname_targets
        for target, records in by_target.items():
            if target == ".":
                continue
            if kind != "srv" and target[:1] in _IP_START and _IP_LIKE(target):
                for record in records:
                    self.add(f"{kind}-target-looks-like-ip", record,
                             f"{upper} target {target} of {record.name} looks like an IP address (BIND "
                             f"warns and loads it); {upper} records need a host name that has A/AAAA "
                             f"records")
            if target in odd and not _HOST_TARGET(target):  # '::1.' is both, to BIND
                for record in records:
                    self.check_target_host(record, target, "target")
            scope = self.target_scope(target)
            if scope == "out":
                continue
            if scope == "auth":
                if target in cname_targets:
                    for record in records:
                        case, servers = self.target_verdict(kind, record, "is a CNAME (illegal)")
                        self.add(f"{kind}-target-is-cname", record,
                                 f"{upper} target {target} of {record.name} is a CNAME, which RFC "
                                 f"2181 forbids ({servers}); point it at {cname_targets[target]} or "
                                 f"give {target} A/AAAA records", case)
                elif not self.has_address(target):
                    for record in records:
                        case, servers = self.target_verdict(kind, record, "has no address records")
                        self.add(f"{kind}-target-no-address", record,
                                 f"{upper} target {target} of {record.name} is in this zone but has "
                                 f"no A or AAAA record ({servers}); add one or fix the name", case)
            elif kind != "ns":
                continue  # below a cut: another zone's data, or a DNAME's concern
            elif scope == "delegated":
                if not self.has_address(target):
                    for record in records:
                        cut = self.cut_above(target)
                        if cut == record.name:
                            case, servers = "", ("Knot refuses the zone (missing glue record), BIND "
                                                 "warns 'has no REQUIRED GLUE' and loads it")
                        else:
                            case, servers = "elsewhere", "BIND and Knot load the zone"
                        self.add("missing-glue", record,
                                 f"name server {target} of {record.name} lies inside the delegation "
                                 f"{cut} and needs A or AAAA glue here ({servers})", case)
            else:
                for record in records:
                    case, servers = self.target_verdict(kind, record, "is below a DNAME (illegal)")
                    self.add("ns-target-below-dname", record,
                             f"name server {target} of {record.name} lies below a DNAME, so it can "
                             f"never be resolved ({servers}); use a name outside the DNAME's "
                             f"subtree", case)

    def target_verdict(self, kind: str, record: Record, bind_says: str) -> tuple[str, str]:
        """The verdict case of an in-zone NS/MX/SRV target problem, and who complains: BIND
        refuses it only for the apex NS, Knot for any NS (its glue check), nobody for MX/SRV."""
        if kind != "ns":
            return "", f"BIND warns '{bind_says}' and serves the zone; Knot does not check"
        if record.name == self.origin:
            return "", "BIND and Knot refuse the zone"
        return "delegation", f"Knot refuses the zone (missing glue record), BIND warns '{bind_says}' and loads it"

    def check_ns_targets(self) -> None:
        by_target: dict[str, list[Record]] = {}
        below = self.below
        for record in self.collected["NS"]:
            if record[0] not in below:  # occluded NS are reported as such and never served
                by_target.setdefault(record[3], []).append(record)
        self.check_targets("ns", by_target)

    def check_mail_and_services(self) -> None:
        below = self.below
        by_target: dict[str, list[Record]] = {}
        for record in self.collected["MX"]:
            if record[0] in below:
                continue
            preference, _, exchange = record[3].partition(" ")
            if exchange == ".":
                if preference != "0":
                    self.add("null-mx-preference", record,
                             f"null MX of {record.name} should have preference 0 (RFC 7505): write '0 .'")
                continue
            by_target.setdefault(exchange, []).append(record)
        self.check_targets("mx", by_target)
        by_target = {}
        for record in self.collected["SRV"]:
            if record[0] not in below:
                target = record[3].rpartition(" ")[2]
                by_target.setdefault(target, []).append(record)
        self.check_targets("srv", by_target)
        for rtype in ("SVCB", "HTTPS"):
            for record in self.collected[rtype]:
                self.check_svcb(record)
        if self.origin.endswith(("in-addr.arpa.", "ip6.arpa.")):
            for record in self.collected["PTR"]:
                labels = record.name.split(".", 3)
                if len(labels) >= 3 and labels[0] in _DNS_SD and labels[1] == "_dns-sd" and labels[2] == "_udp":
                    continue  # RFC 6763 browsing domains point at any name
                self.check_target_host(record, record.data, "target")

    def check_svcb(self, record: Record) -> None:
        priority, _, rest = record.data.partition(" ")
        target, _, params = rest.partition(" ")
        if priority == "0" or not target:
            return  # AliasMode: the target may be any name
        self.check_target_host(record, target, "target")
        labels = record.name.split(".")
        is_dns = labels[0] == "_dns" or (len(labels) > 1 and labels[1] == "_dns" and labels[0].startswith("_"))
        if not is_dns:
            return
        keys = {match.group(1): (match.group(2) or "") for match in _SVC_PARAM.finditer(params)}
        if "alpn" not in keys:
            self.add("svcb-dns-missing-alpn", record,
                     f"SVCB at {record.name} (DNS server discovery, RFC 9461) in ServiceMode needs an "
                     f"alpn parameter (BIND after 9.18 refuses the zone; 9.18 and Knot load it), "
                     f"e.g. alpn=dot or alpn=h2 with a dohpath")
            return
        # Split on every comma, escaped or not, as BIND does: an HTTP protocol anywhere in the list
        # means DNS over HTTPS, which needs a dohpath.
        alpns = set(keys["alpn"].strip('"').replace("\\", "").split(","))
        if alpns & _HTTP_ALPN and "dohpath" not in keys:
            self.add("svcb-dns-missing-dohpath", record,
                     f"SVCB at {record.name} offers DNS over HTTPS (alpn {keys['alpn']}) but has no "
                     f"dohpath (BIND after 9.18 refuses the zone; 9.18 and Knot load it); add "
                     f"dohpath=/dns-query{{?dns}} (RFC 9461)")

    def check_dnssec(self) -> None:
        for record in self.collected["DS"]:
            if record.name == self.origin:
                self.add("ds-at-apex", record,
                         f"DS at the apex {self.origin}: the DS of this zone belongs in the parent "
                         f"zone (BIND refuses the zone: DS record at top of zone; Knot loads it); "
                         f"publish CDS/CDNSKEY here or give the DS to your registrar")
            elif record.name not in self.below and self.cuts.get(record.name) != "NS":
                self.add("ds-not-at-delegation", record,
                         f"DS at {record.name}, which is not a delegation (no NS there); BIND after "
                         f"9.18 refuses the zone (DS not at delegation point), 9.18 and Knot load "
                         f"it; DS records belong only beside the NS of a child zone")
        if self.collected["CDS"] or self.collected["CDNSKEY"]:
            _check_cds(self)
        for rtype, index in (("DNSKEY", 2), ("CDNSKEY", 2), ("KEY", 2), ("DS", 1), ("CDS", 1)):
            for record in self.collected[rtype]:
                algorithm = _field(record.data, index)
                if algorithm in _DEPRECATED_ALGORITHMS and not record.data.startswith("0 "):
                    self.add("dnssec-algorithm-deprecated", record,
                             f"{rtype} at {record.name} uses algorithm {algorithm} "
                             f"({_DEPRECATED_ALGORITHMS[algorithm]}), which RFC 8624 says must not "
                             f"be used to sign (BIND warns: deprecated algorithm); roll to algorithm 13 "
                             f"(ECDSAP256SHA256) or 15 (ED25519)")
                elif index == 1 and _field(record.data, 2) in ("1", "3") and not record.data.startswith("0 "):
                    self.add("ds-digest-deprecated", record,
                             f"{rtype} at {record.name} uses digest type {_field(record.data, 2)} "
                             f"(SHA-1 or GOST), deprecated by RFC 8624/9558 (BIND warns); publish a SHA-256 (2) "
                             f"digest")

    def check_misc(self) -> None:
        for record in self.collected["SPF"]:
            if record.file.endswith(".lua"):
                continue  # the Lua evaluator already warns at the spf() call, with a txt() hint
            self.add("spf-record-type", record,
                     f"SPF record type at {record.name} is obsolete (RFC 7208) and ignored by mail "
                     f"servers (BIND warns); publish the policy as TXT instead")
        for record in self.collected["NSEC3"]:
            label = record.name.split(".", 1)[0]
            if not _NSEC3_LABEL(label):
                self.add("nsec3-owner-invalid", record,
                         f"NSEC3 owner {record.name} (BIND refuses the zone: bad owner name; Knot "
                         f"loads it): the first label must be the unpadded base32hex "
                         f"hash of a name (0-9, a-v)")


def _check_cds(checker: _Checker) -> None:
    """CDS/CDNSKEY (RFC 7344) must describe DNSKEYs the zone holds, as BIND's checks require.
    Rare records, so dnspython computes the digests."""
    import dns.dnssec  # here: only zones with CDS/CDNSKEY need it (a twentieth of a plan's start-up)

    def parse(rtype: str, data: str):
        try:
            return dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.from_text(rtype), data)
        except Exception:  # the reader reports malformed data
            return None

    by_owner: dict[str, list] = {}
    for owner in {r.name for r in checker.collected["CDS"] + checker.collected["CDNSKEY"]}:
        by_owner[owner] = [k for k in (parse("DNSKEY", r.data) for r in checker.records_at(owner)
                                       if r.type == "DNSKEY") if k is not None]
    for record in checker.collected["CDNSKEY"]:
        if record.data.startswith("0 3 0 "):
            continue  # the "delete" form (RFC 8078)
        cdnskey = parse("CDNSKEY", record.data)
        if cdnskey is None:
            continue
        if not any(k.to_wire() == cdnskey.to_wire() for k in by_owner[record.name]):
            same_algorithm = any(k.algorithm == cdnskey.algorithm for k in by_owner[record.name])
            checker.add("cdnskey-mismatch", record,
                        f"CDNSKEY at {record.name} matches none of the zone's DNSKEY records "
                        f"({_cds_servers(same_algorithm)}); publish the key as DNSKEY first or "
                        f"remove the CDNSKEY", "key" if same_algorithm else "")
    for record in checker.collected["CDS"]:
        if record.data.startswith("0 0 0 "):
            continue  # the "delete" form (RFC 8078)
        cds = parse("CDS", record.data)
        if cds is None:
            continue
        matched = unverifiable = False
        for key in by_owner[record.name]:
            if key.algorithm != cds.algorithm or dns.dnssec.key_id(key) != cds.key_tag:
                continue
            try:
                ds = dns.dnssec.make_ds(dns.name.from_text(record.name), key, cds.digest_type, validating=True)
            except Exception:  # a digest type dnspython does not know: no verdict
                unverifiable = True
                continue
            if ds.digest == cds.digest:
                matched = True
                break
        if not matched and not unverifiable:
            same_algorithm = any(k.algorithm == cds.algorithm for k in by_owner[record.name])
            checker.add("cds-mismatch", record,
                        f"CDS at {record.name} matches none of the zone's DNSKEY records (key tag, "
                        f"algorithm and digest; {_cds_servers(same_algorithm)}); regenerate it "
                        f"from the published DNSKEY", "digest" if same_algorithm else "")


def _bind_owner_ok(name: str, rtype: str) -> bool:
    """Whether BIND's check-names accepts ``name`` as the owner of an ``rtype`` record."""
    if _HOST_OWNER(name):
        return True
    if rtype != "MX" and _AD_OWNER(name):
        return True
    return rtype == "A" and not _SPF_LABELS.isdisjoint(name.split("."))


def _cds_servers(same_algorithm: bool) -> str:
    """Who complains about a CDS/CDNSKEY that matches no DNSKEY: BIND checks only that some
    DNSKEY has its algorithm."""
    if same_algorithm:
        return "BIND and Knot load the zone, but the parent will not use it"
    return "BIND refuses the zone: no DNSKEY of its algorithm (CDS/CDNSKEY consistency); Knot loads it"


def _odd_names(names: list[str]) -> list[str]:
    """The names that may not be host names, found by halving: a clean chunk (only a-z, 0-9, dot
    and inner hyphens) is cleared with a few C-level scans instead of a regex per name."""
    if not names:
        return []
    text = "\n" + "\n".join(names) + "\n"
    if (not text.encode("utf-8").translate(None, _HOST_BYTES) and "-." not in text
            and ".-" not in text and "\n-" not in text):
        return []
    if len(names) <= 32:
        return names
    middle = len(names) // 2
    return _odd_names(names[:middle]) + _odd_names(names[middle:])


def _field(data: str, index: int) -> str:
    parts = data.split(" ")
    return parts[index] if index < len(parts) else ""


def _name_problem(name: str) -> tuple[str, str] | None:
    """(code, explanation) when ``name`` breaks RFC 1035 size rules, else None."""
    if name in (".", ""):
        return None
    if ".." in name.replace("\\.", "") or name.startswith("."):
        return ("empty-label", f"{name} has an empty label (two dots in a row)")
    labels = _labels(name.rstrip(".") if not name.endswith("\\.") else name)
    wire = 1
    for label in labels:
        if label > 63:
            return ("label-too-long", f"{name} has a label of {label} octets; the limit is 63")
        wire += label + 1
    if wire > 255:
        return ("name-too-long", f"{name} is {wire} octets long on the wire; the limit is 255")
    return None


def _labels(text: str) -> Iterable[int]:
    """Octet length of each label of a presentation-format name (escapes decoded)."""
    if "\\" not in text:
        return [len(label) for label in text.split(".")]
    lengths = []
    count = 0
    i = 0
    while i < len(text):
        char = text[i]
        if char == "\\":
            i += 4 if text[i + 1:i + 4].isdigit() else 2
            count += 1
            continue
        if char == ".":
            lengths.append(count)
            count = 0
        else:
            count += 1
        i += 1
    lengths.append(count)
    return lengths


def validate_zone(zone: Zone, *, standalone: bool, max_ttl: int = 604800,
                  server: str = "bind") -> tuple[Finding, ...]:
    """Every structural finding for ``zone``, errors and warnings alike, in a stable order.

    ``standalone`` is True for one master file linted on its own (SOA and apex NS must be in it,
    as for ``named-checkzone``), False in a repository where configuration supplies them.
    ``server`` ("bind" or "knot") is whose verdict makes a finding an error.
    """
    if server not in SERVERS:
        raise ValueError(f"server must be one of {', '.join(SERVERS)}, not {server!r}")
    with cyclic_gc_paused():  # the checks make hundreds of thousands of small containers, no cycles
        findings = _Checker(zone, standalone, max_ttl, server).run()
    return tuple(sorted(findings, key=lambda f: (f.file, f.line, f.code)))
