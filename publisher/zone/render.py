"""Canonical BIND text of a zone: what ``build`` writes and the zonefile provider serves.

Canonical means stable: absolute names, one record per line, the SOA first, then records sorted by
owner name in DNS order (parents before children, labels compared right to left), type and data, so
that two builds of the same zone are byte-identical and diffs between them are meaningful.
"""

from __future__ import annotations

from typing import Iterable

from publisher.model import Record, Zone


def dns_order_key(name: str) -> tuple[str, ...]:
    """Sort key putting a zone's apex first and children right after their parent."""
    return tuple(reversed(name.rstrip(".").split(".")))


def records_to_text(records: Iterable[Record]) -> str:
    """Records as master-file lines, in canonical order, SOA first."""
    ordered = sorted(records, key=lambda r: (r.type != "SOA", dns_order_key(r.name), r.type, r.data))
    return "".join(f"{r.name} {r.ttl} IN {r.type} {r.data}\n" for r in ordered)


def zone_to_text(zone: Zone, soa: Record | None = None) -> str:
    """The zone as a BIND master file.  ``soa`` replaces the zone's own SOA when given (the
    publisher generates it); ALIAS records, which no master file can hold, are written as
    comments so the output always loads in ``named``."""
    records = [r for r in zone.records if not (soa is not None and r.type == "SOA")]
    if soa is not None:
        records.append(soa)
    plain = [r for r in records if r.type != "ALIAS"]
    aliases = [r for r in records if r.type == "ALIAS"]
    header = f"; zone {zone.origin} from {zone.file or 'unknown source'}\n$ORIGIN {zone.origin}\n"
    alias_lines = "".join(f"; ALIAS {r.name} {r.ttl} {r.data} (flattened to A/AAAA at publish time)\n"
                          for r in aliases)
    return header + alias_lines + records_to_text(plain)
