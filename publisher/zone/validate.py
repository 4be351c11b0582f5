"""Zone validation: the structural checks of ``validation.md`` (A.6-A.8, A.11 warning, B-E).

``validate_zone`` takes an evaluated ``Zone`` (model conventions: absolute lower-case names,
upper-case types, canonical rdata) and returns every finding at once.  It is a pure function and
fast: a few C-speed passes group records by owner name, then each check looks at the few names
it concerns.  No dnspython object is built for the common types (a 1,000,000-record zone validates
in seconds); only the rare DNSSEC consistency checks (CDS/CDNSKEY) use dnspython.

Per-record syntax (A.1-A.5, A.9, A.10, TTL range) belongs to the readers; publishing safety (F) and
the serial increase (B.15) to the planner.  Out-of-zone targets are never resolved.

Choices where BIND's own accepted zones disagree with a literal reading of validation.md:
an all-zero refresh/retry/expire is a placeholder SOA (warning; other zero timers are errors);
an NS below another delegation or below a DNAME is occluded, never served (warning, and its
targets are not checked), while any other data there is an error.

Catalogue of codes (E = error, W = warning):

A. names and TTLs
  owner-outside-zone        E  owner not at or below the apex (usually a wrong $ORIGIN)
  name-too-long             E  a name (owner or in rdata) over 255 octets on the wire
  label-too-long            E  a label over 63 octets
  empty-label               E  a name with an empty label (``a..b``)
  hostname-syntax           W  A/AAAA/MX owner or NS/MX/SRV/SOA/SVCB/reverse-PTR target not a host name
  ttl-above-max             W  TTL above the configured maximum
B. zone structure
  soa-missing               E  standalone file without SOA
  soa-multiple              E  more than one SOA
  soa-not-at-apex           E  SOA below the apex
  soa-timer-zero            E  refresh, retry or expire of zero (or "negative", >= 2^31)
  soa-timers-placeholder    W  refresh, retry and expire all zero (a placeholder SOA)
  soa-timers-unusual        W  SOA timers outside RFC 1912 / RFC 2308 advice
  apex-ns-missing           E  standalone file without NS at the apex
  apex-ns-single            W  only one apex NS
  rrset-ttl-mismatch        W  records of one RRset with different TTLs
  duplicate-record          W  the same record twice
  spf-record-type           W  SPF type 99 (RFC 7208: use TXT); same code as the Lua spf() warning
C. CNAME and aliases
  cname-and-other-data      E  CNAME beside other data (DNSSEC types excepted)
  cname-multiple            E  more than one CNAME at an owner
  cname-at-apex             E  CNAME at the apex (use alias())
  cname-loop                E  CNAME chain inside the zone that loops
  cname-chain               W  CNAME pointing at another CNAME of the zone
  cname-target-missing      W  in-zone CNAME target that has no records
  alias-and-address         E  ALIAS beside A/AAAA (ALIAS publishes those itself)
  alias-multiple            E  more than one ALIAS at an owner
  ns-target-is-cname        E  in-zone NS target is a CNAME
  mx-target-is-cname        E  in-zone MX target is a CNAME
  srv-target-is-cname       E  in-zone SRV target is a CNAME
  ns-target-looks-like-ip   W  NS target written as an IP address
  mx-target-looks-like-ip   W  MX target written as an IP address
  ns-target-no-address      E  in-zone NS target without A/AAAA
  mx-target-no-address      E  in-zone MX target without A/AAAA
  srv-target-no-address     E  in-zone SRV target without A/AAAA
  null-mx-not-alone         E  a null MX (``0 .``) beside other MX records
  null-mx-preference        W  a null MX with a preference other than 0
D. delegations and glue
  data-below-delegation     E  non-glue data below (or beside) a delegation: never served
  occluded-delegation       W  NS below another delegation or below a DNAME: never served
  missing-glue              E  NS target below a delegation of this zone without A/AAAA here
  ns-target-below-dname     E  NS target below a DNAME
  ds-at-apex                E  DS at the apex (it belongs in the parent zone)
  ds-not-at-delegation      E  DS at a name without NS
  cds-mismatch              E  CDS that matches no DNSKEY of the zone
  cdnskey-mismatch          E  CDNSKEY that is not one of the zone's DNSKEYs
  dnssec-algorithm-deprecated W  DNSKEY/KEY/DS/CDS with an algorithm RFC 8624 forbids for signing
  ds-digest-deprecated      W  DS/CDS with a SHA-1 or GOST digest
E. DNAME and wildcards
  dname-not-singleton       E  more than one DNAME at an owner
  ns-beside-dname           E  NS and DNAME at the same non-apex name
  data-below-dname          E  data below a DNAME: never served
  wildcard-not-leftmost     W  ``*`` that is not the whole leftmost label (literal, not a wildcard)
  wildcard-forbidden-type   E  SOA, NS, DNAME or DS at a wildcard owner
other (from BIND's checkzone corpus)
  svcb-dns-missing-alpn     E  ServiceMode SVCB at ``_dns`` without alpn (RFC 9461)
  svcb-dns-missing-dohpath  E  ServiceMode SVCB at ``_dns`` with an HTTP alpn and no dohpath
  nsec3-owner-invalid       E  NSEC3 owner label not an unpadded base32hex hash
"""

from __future__ import annotations

import gc
import operator
import re
from itertools import compress
from typing import Iterable, Sequence

import dns.dnssec
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype

from publisher.model import ERROR, WARNING, Finding, Record, Zone

__all__ = ["validate_zone"]

# Types that may share an owner with a CNAME (RFC 2181 10.1, RFC 4035 2.5).
_CNAME_COMPANIONS = frozenset({"CNAME", "RRSIG", "NSEC", "NSEC3"})
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
# Targets must be real host names; owners may carry protocol labels such as _spf or _msdcs.
_HOST_TARGET = re.compile(rf"(?:{_HOST_LABEL}\.)+").fullmatch
_HOST_OWNER = re.compile(rf"(?:\*\.)?(?:(?:{_HOST_LABEL}|_[a-z0-9_-]+)\.)+").fullmatch
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

    def __init__(self, zone: Zone, standalone: bool, max_ttl: int) -> None:
        self.zone = zone
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
    def add(self, severity: str, code: str, record: Record | None, message: str) -> None:
        file = (record.file if record is not None else "") or self.zone.file
        line = record.line if record is not None else 0
        self.findings.append(Finding(severity, code, self.origin, file, line, message))

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
            self.add(WARNING, "ttl-above-max", record,
                     f"TTL {record.ttl} of {record.name} {record.type} is above the maximum of "
                     f"{max_ttl} s; use at most {max_ttl}")
        if len(too_long) > _MAX_TTL_FINDINGS:
            # Usually one $TTL line; a warning per record would bury every other finding.
            self.add(WARNING, "ttl-above-max", too_long[_MAX_TTL_FINDINGS],
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
                self.add(ERROR, code, record, f"{record.type} data of {record.name}: {why}")

    def check_names(self) -> None:
        """Per owner: inside the zone, name length, wildcard form, host-name syntax, and the
        checks that need all records of one owner (duplicates, TTLs, CNAME/DNAME/ALIAS company)."""
        origin = self.origin
        single = self.single
        joined = "\n" + "\n".join(single) + "\n"
        if origin != "." and joined.count("." + origin + "\n") + (origin in single) != len(single):
            suffix = "." + origin
            for name in [n for n in single if n != origin and not n.endswith(suffix)]:
                self.add(ERROR, "owner-outside-zone", self.records_at(name)[0],
                         f"{name} is not at or below the zone apex {origin}; check $ORIGIN or write "
                         f"the name relative to the zone")
        if max(map(len, single), default=0) > 63 or ".." in joined or "\n." in joined:
            for name in single:
                problem = _name_problem(name)
                if problem:
                    self.add(ERROR, problem[0], self.records_at(name)[0], f"owner {name}: {problem[1]}")
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
            if name in checked or name == "." or "*" in name or _HOST_OWNER(name):
                continue
            checked.add(name)
            record = next(r for r in self.records_at(name) if r.type in _HOST_OWNER_TYPES)
            self.add(WARNING, "hostname-syntax", record,
                     f"{name} owns {record.type} records but is not a valid host name (letters, "
                     f"digits and inner hyphens only); most resolvers and mail servers will reject it")

    def check_target_host(self, record: Record, target: str, what: str) -> None:
        if target == "." or _HOST_TARGET(target):
            return
        self.add(WARNING, "hostname-syntax", record,
                 f"{what} {target} of {record.name} {record.type} is not a valid host name "
                 f"(letters, digits and inner hyphens only)")

    def check_wildcard(self, name: str, records: Sequence[Record]) -> None:
        if not name.startswith("*.") or "*" in name[2:]:
            if name != "*":
                self.add(WARNING, "wildcard-not-leftmost", records[0],
                         f"in {name} the '*' is not the whole leftmost label, so it is a literal "
                         f"character and not a wildcard; write *.<name> for a wildcard")
            return
        for record in records:
            if record.type in ("SOA", "NS", "DNAME", "DS"):
                self.add(ERROR, "wildcard-forbidden-type", record,
                         f"{record.type} at the wildcard {name} is not allowed (RFC 4592); use an "
                         f"explicit name")

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
                self.add(ERROR, "cname-and-other-data", cnames[0],
                         f"{name} has a CNAME and other data ({', '.join(others)}); a CNAME must be "
                         f"alone at its name: remove the other records or the CNAME")
            if len({r.data for r in cnames}) > 1:
                self.add(ERROR, "cname-multiple", cnames[1],
                         f"{name} has more than one CNAME; keep exactly one")
        dnames = by_type.get("DNAME")
        if dnames:
            if len({r.data for r in dnames}) > 1:
                self.add(ERROR, "dname-not-singleton", dnames[1],
                         f"{name} has more than one DNAME; a DNAME must be a singleton (RFC 6672)")
            if "NS" in by_type and name != self.origin:
                self.add(ERROR, "ns-beside-dname", by_type["NS"][0],
                         f"{name} has both NS and DNAME; below the apex that is ambiguous (Knot "
                         f"rejects it): keep the delegation or the DNAME")
        aliases = by_type.get("ALIAS")
        if aliases:
            if len({r.data for r in aliases}) > 1:
                self.add(ERROR, "alias-multiple", aliases[1],
                         f"{name} has more than one ALIAS; keep exactly one")
            for rtype in ("A", "AAAA"):
                if rtype in by_type:
                    self.add(ERROR, "alias-and-address", by_type[rtype][0],
                             f"{name} has an ALIAS and {rtype} records; the ALIAS publishes the "
                             f"addresses itself: remove the {rtype} records or the ALIAS")
        mxs = by_type.get("MX")
        if mxs and len(mxs) > 1:
            for record in mxs:
                if _field(record.data, 1) == ".":
                    self.add(ERROR, "null-mx-not-alone", record,
                             f"{name} has a null MX ('0 .', RFC 7505: accepts no mail) beside other "
                             f"MX records; remove one or the other")
                    break

    def check_rrset(self, name: str, rtype: str, rrset: list[Record]) -> None:
        seen: dict[str, Record] = {}
        for record in rrset:
            if record.data in seen:
                self.add(WARNING, "duplicate-record", record,
                         f"{name} {rtype} {record.data} is listed twice; it is published once: "
                         f"remove the duplicate")
            else:
                seen[record.data] = record
        ttls = {r.ttl for r in rrset}
        if len(ttls) > 1:
            low = min(ttls)
            odd = next(r for r in rrset if r.ttl != low)
            self.add(WARNING, "rrset-ttl-mismatch", odd,
                     f"the {rtype} records of {name} have different TTLs ({', '.join(map(str, sorted(ttls)))}); "
                     f"all are published with the lowest, {low}: give them one TTL")

    def check_soa(self) -> None:
        soas = self.collected["SOA"]
        if not soas:
            if self.standalone:
                self.add(ERROR, "soa-missing", None,
                         f"the zone file has no SOA record; add one at the apex {self.origin}")
            return
        for record in soas:
            if record.name != self.origin:
                self.add(ERROR, "soa-not-at-apex", record,
                         f"SOA at {record.name}, but it belongs only at the apex {self.origin}")
        if len(soas) > 1:
            self.add(ERROR, "soa-multiple", soas[1],
                     f"the zone has {len(soas)} SOA records; keep exactly one, at the apex")
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
            self.add(WARNING, "soa-timers-placeholder", soa,
                     "SOA refresh, retry and expire are all 0: secondaries would drop the zone at "
                     "once; set real timers (e.g. 3600 600 1209600) or let configuration supply them")
            return
        bad = [k for k, v in timers.items() if v == 0 or v > _MAX_SIGNED]
        if minimum > _MAX_SIGNED:
            bad.append("minimum")
        if bad:
            self.add(ERROR, "soa-timer-zero", soa,
                     f"SOA {', '.join(bad)} must be a positive number of seconds below 2^31; "
                     f"typical values: refresh 3600, retry 600, expire 1209600, minimum 300")
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
            self.add(WARNING, "soa-timers-unusual", soa,
                     f"SOA timers outside common advice: {'; '.join(advice)}")

    def check_apex_ns(self) -> None:
        apex_ns = [r for r in self.collected["NS"] if r.name == self.origin]
        if not apex_ns:
            if self.standalone:
                self.add(ERROR, "apex-ns-missing", None,
                         f"the zone file has no NS records at the apex {self.origin}; add at least two")
            return
        if len({r.data for r in apex_ns}) < 2:
            self.add(WARNING, "apex-ns-single", apex_ns[0],
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
                    self.add(WARNING, "occluded-delegation", record,
                             f"the delegation {name} lies below the {kind} at {cut} and is never "
                             f"served; remove it (it belongs in the child zone)")
                    continue
                if kind == "NS":
                    self.add(ERROR, "data-below-delegation", record,
                             f"{name} {rtype} lies below the delegation {cut} and would never be "
                             f"served; only glue A/AAAA for its name servers may be here: move it "
                             f"to the child zone")
                else:
                    self.add(ERROR, "data-below-dname", record,
                             f"{name} {rtype} lies below the DNAME at {cut}, which redirects the "
                             f"whole subtree; remove it or the DNAME")
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
                self.add(ERROR, "data-below-delegation", record,
                         f"{cut} {rtype} sits at the delegation point {cut} and would never be "
                         f"served (the child zone answers there); move it to the child zone")

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
                self.add(ERROR, "cname-at-apex", record,
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
                    self.add(ERROR, "cname-loop", first[member],
                             f"CNAME loop: {' -> '.join(loop + [loop[0]])}; point one of them at a "
                             f"name with real data")
            for member in path:
                state[member] = 2
        single = self.single
        for owner, target in targets.items():
            if target in targets:
                if owner not in in_loops:
                    self.add(WARNING, "cname-chain", first[owner],
                             f"CNAME {owner} points at {target}, itself a CNAME; point it directly "
                             f"at {targets[target]}")
            elif target not in single and self.target_scope(target) == "auth" and not self.exists(target):
                self.add(WARNING, "cname-target-missing", first[owner],
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
                    self.add(WARNING, f"{kind}-target-looks-like-ip", record,
                             f"{upper} target {target} of {record.name} looks like an IP address; "
                             f"{upper} records need a host name that has A/AAAA records")
            elif target in odd and not _HOST_TARGET(target):
                for record in records:
                    self.check_target_host(record, target, "target")
            scope = self.target_scope(target)
            if scope == "out":
                continue
            if scope == "auth":
                if target in cname_targets:
                    for record in records:
                        self.add(ERROR, f"{kind}-target-is-cname", record,
                                 f"{upper} target {target} of {record.name} is a CNAME, which RFC "
                                 f"2181 forbids; point it at {cname_targets[target]} or give "
                                 f"{target} A/AAAA records")
                elif not self.has_address(target):
                    for record in records:
                        self.add(ERROR, f"{kind}-target-no-address", record,
                                 f"{upper} target {target} of {record.name} is in this zone but has "
                                 f"no A or AAAA record; add one or fix the name")
            elif kind != "ns":
                continue  # below a cut: another zone's data, or a DNAME's concern
            elif scope == "delegated":
                if not self.has_address(target):
                    for record in records:
                        self.add(ERROR, "missing-glue", record,
                                 f"name server {target} of {record.name} lies inside the delegation "
                                 f"{self.cut_above(target)} and needs A or AAAA glue here")
            else:
                for record in records:
                    self.add(ERROR, "ns-target-below-dname", record,
                             f"name server {target} of {record.name} lies below a DNAME, so it can "
                             f"never be resolved; use a name outside the DNAME's subtree")

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
                    self.add(WARNING, "null-mx-preference", record,
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
            self.add(ERROR, "svcb-dns-missing-alpn", record,
                     f"SVCB at {record.name} (DNS server discovery, RFC 9461) in ServiceMode needs an "
                     f"alpn parameter, e.g. alpn=dot or alpn=h2 with a dohpath")
            return
        # Split on every comma, escaped or not, as BIND does: an HTTP protocol anywhere in the list
        # means DNS over HTTPS, which needs a dohpath.
        alpns = set(keys["alpn"].strip('"').replace("\\", "").split(","))
        if alpns & _HTTP_ALPN and "dohpath" not in keys:
            self.add(ERROR, "svcb-dns-missing-dohpath", record,
                     f"SVCB at {record.name} offers DNS over HTTPS (alpn {keys['alpn']}) but has no "
                     f"dohpath; add dohpath=/dns-query{{?dns}} (RFC 9461)")

    def check_dnssec(self) -> None:
        for record in self.collected["DS"]:
            if record.name == self.origin:
                self.add(ERROR, "ds-at-apex", record,
                         f"DS at the apex {self.origin}: the DS of this zone belongs in the parent "
                         f"zone; publish CDS/CDNSKEY here or give the DS to your registrar")
            elif record.name not in self.below and self.cuts.get(record.name) != "NS":
                self.add(ERROR, "ds-not-at-delegation", record,
                         f"DS at {record.name}, which is not a delegation (no NS there); DS records "
                         f"belong only beside the NS of a child zone")
        if self.collected["CDS"] or self.collected["CDNSKEY"]:
            _check_cds(self)
        for rtype, index in (("DNSKEY", 2), ("CDNSKEY", 2), ("KEY", 2), ("DS", 1), ("CDS", 1)):
            for record in self.collected[rtype]:
                algorithm = _field(record.data, index)
                if algorithm in _DEPRECATED_ALGORITHMS and not record.data.startswith("0 "):
                    self.add(WARNING, "dnssec-algorithm-deprecated", record,
                             f"{rtype} at {record.name} uses algorithm {algorithm} "
                             f"({_DEPRECATED_ALGORITHMS[algorithm]}), which RFC 8624 says must not "
                             f"be used to sign; roll to algorithm 13 (ECDSAP256SHA256) or 15 (ED25519)")
                elif index == 1 and _field(record.data, 2) in ("1", "3") and not record.data.startswith("0 "):
                    self.add(WARNING, "ds-digest-deprecated", record,
                             f"{rtype} at {record.name} uses digest type {_field(record.data, 2)} "
                             f"(SHA-1 or GOST), deprecated by RFC 8624/9558; publish a SHA-256 (2) digest")

    def check_misc(self) -> None:
        for record in self.collected["SPF"]:
            if record.file.endswith(".lua"):
                continue  # the Lua evaluator already warns at the spf() call, with a txt() hint
            self.add(WARNING, "spf-record-type", record,
                     f"SPF record type at {record.name} is obsolete (RFC 7208) and ignored by mail "
                     f"servers; publish the policy as TXT instead")
        for record in self.collected["NSEC3"]:
            label = record.name.split(".", 1)[0]
            if not _NSEC3_LABEL(label):
                self.add(ERROR, "nsec3-owner-invalid", record,
                         f"NSEC3 owner {record.name}: the first label must be the unpadded base32hex "
                         f"hash of a name (0-9, a-v)")


def _check_cds(checker: _Checker) -> None:
    """CDS/CDNSKEY (RFC 7344) must describe DNSKEYs the zone holds, as BIND's checks require.
    Rare records, so dnspython computes the digests."""
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
            checker.add(ERROR, "cdnskey-mismatch", record,
                        f"CDNSKEY at {record.name} matches none of the zone's DNSKEY records; "
                        f"publish the key as DNSKEY first or remove the CDNSKEY")
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
            checker.add(ERROR, "cds-mismatch", record,
                        f"CDS at {record.name} matches none of the zone's DNSKEY records (key tag, "
                        f"algorithm and digest); regenerate it from the published DNSKEY")


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


def validate_zone(zone: Zone, *, standalone: bool, max_ttl: int = 604800) -> tuple[Finding, ...]:
    """Every structural finding for ``zone``, errors and warnings alike, in a stable order.

    ``standalone`` is True for one master file linted on its own (SOA and apex NS must be in it,
    as for ``named-checkzone``), False in a repository where configuration supplies them.
    """
    # The checks allocate hundreds of thousands of small containers and make no reference cycles;
    # the cyclic collector would rescan every record of the zone many times over (3-4x the time).
    collecting = gc.isenabled()
    gc.disable()
    try:
        findings = _Checker(zone, standalone, max_ttl).run()
    finally:
        if collecting:
            gc.enable()
    return tuple(sorted(findings, key=lambda f: (f.file, f.line, f.code)))
