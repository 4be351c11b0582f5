"""ALIAS flattening: an ALIAS record becomes the A and AAAA records its target resolves to.

Resolution happens at publish time through a configurable resolver (``[defaults] resolver``,
"host" or "host:port"; the system resolver when unset).  A target that does not resolve does not
take the name off the air: the caller keeps what the provider serves there and reports it.
"""

from __future__ import annotations

from typing import Iterable

import dns.exception
import dns.rdatatype

from publisher.model import WARNING, Finding, Record


def parse_resolver(address: str) -> tuple[str, int]:
    """``"192.0.2.1"``, ``"192.0.2.1:5353"``, ``"[2001:db8::1]:53"`` or ``"2001:db8::1"`` -> (host, port)."""
    address = address.strip()
    if address.startswith("["):
        host, _, rest = address[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") else 53
    if address.count(":") == 1:
        host, _, port = address.partition(":")
        return host, int(port)
    return address, 53


class AliasResolver:
    """Resolves ALIAS targets to A/AAAA data, caching each target for the life of one run."""

    def __init__(self, address: str | None = None, *, timeout: float = 5.0) -> None:
        import dns.resolver  # costs ~70 ms at start-up; only zones with ALIAS records need it

        if address:
            host, port = parse_resolver(address)
            self._resolver = dns.resolver.Resolver(configure=False)
            self._resolver.nameservers = [host]
            self._resolver.port = port
        else:
            self._resolver = dns.resolver.Resolver()
        self._resolver.lifetime = timeout
        self._nxdomain = dns.resolver.NXDOMAIN
        self._cache: dict[str, tuple[tuple[str, ...], tuple[str, ...], str]] = {}

    def addresses(self, target: str) -> tuple[tuple[str, ...], tuple[str, ...], str]:
        """(IPv4 addresses, IPv6 addresses, problem text or "") of ``target``."""
        if target not in self._cache:
            results: dict[str, tuple[str, ...]] = {}
            problems: list[str] = []
            for rtype in ("A", "AAAA"):
                try:
                    answer = self._resolver.resolve(target, rtype, raise_on_no_answer=False)
                    results[rtype] = tuple(sorted(r.to_text() for r in answer
                                                  if r.rdtype == dns.rdatatype.from_text(rtype)))
                except self._nxdomain:
                    results[rtype] = ()
                    problems.append("the name does not exist (NXDOMAIN)")
                except (dns.exception.DNSException, OSError) as error:
                    results[rtype] = ()
                    problems.append(f"{rtype} lookup failed: {error.__class__.__name__}")
            problem = "" if results["A"] or results["AAAA"] else (problems[0] if problems else "no A or AAAA records")
            self._cache[target] = (results["A"], results["AAAA"], problem)
        return self._cache[target]


def flatten_aliases(
    origin: str,
    records: Iterable[Record],
    resolver: AliasResolver,
    current: Iterable[Record] = (),
) -> tuple[tuple[Record, ...], tuple[Finding, ...]]:
    """Replace every ALIAS record by A/AAAA records of its target.

    When a target does not resolve, the A/AAAA records ``current`` has at that name are kept, and a
    warning says so: a resolver hiccup must not delete a working apex.
    """
    records = tuple(records)
    aliases = [r for r in records if r.type == "ALIAS"]
    if not aliases:
        return records, ()
    kept = [r for r in records if r.type != "ALIAS"]
    current_by_name: dict[str, list[Record]] = {}
    for record in current:
        if record.type in ("A", "AAAA"):
            current_by_name.setdefault(record.name, []).append(record)
    findings: list[Finding] = []
    for alias in aliases:
        target = alias.data
        ipv4, ipv6, problem = resolver.addresses(target)
        if problem:
            previous = current_by_name.get(alias.name, [])
            keeping = f"; keeping the {len(previous)} address record(s) served now" if previous else ""
            findings.append(Finding(WARNING, "alias-unresolved", origin, alias.file, alias.line,
                                    f"ALIAS {alias.name} -> {target}: {problem}{keeping}"))
            kept.extend(previous)
            continue
        kept.extend(Record(alias.name, "A", alias.ttl, ip, alias.file, alias.line) for ip in ipv4)
        kept.extend(Record(alias.name, "AAAA", alias.ttl, ip, alias.file, alias.line) for ip in ipv6)
    return tuple(kept), tuple(findings)
