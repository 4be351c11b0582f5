"""`zone-publisher import --config FILE --provider NAME --zone ZONE [--format lua|bind]`.

Prints the zone as the provider serves it, as a file to commit: a Lua zone using the LuaDNS record
functions with names relative to the zone, or a BIND master file.  The SOA is left out of the Lua
form (the publisher generates it) and kept in the BIND form (the publisher replaces it).

Any provider type reads, so a zone at a hosted DNS service comes into git in one command through
a ``type = "octodns"`` provider (any octoDNS provider or source class).  A host that owns its SOA
and apex NS (``host_soa``) gives neither: the file holds only what the publisher will manage.
"""

from __future__ import annotations

import argparse
import sys
from typing import Iterable

import dns.rdata
import dns.rdataclass
import dns.rdatatype

from publisher.commands.apply import load_for_command
from publisher.config import ConfigError
from publisher.model import Record
from publisher.publish.providers.base import ProviderError
from publisher.zone.render import dns_order_key, records_to_text


def run(args: argparse.Namespace) -> int:
    loaded = load_for_command(args.config)
    if loaded is None:
        return 2
    config, _ = loaded
    origin = args.zone.lower().rstrip(".") + "."
    try:
        from publisher.publish.providers import create_provider

        provider = create_provider(config.provider(args.provider), config)
        snapshot = provider.read(origin)
    except (ConfigError, ProviderError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if snapshot is None:
        print(f"error: provider {args.provider!r} does not serve zone {origin}", file=sys.stderr)
        return 1
    records = tuple(snapshot.records) + ((snapshot.soa,) if snapshot.soa else ())
    if args.format == "bind":
        sys.stdout.write(f"; zone {origin} imported from provider {args.provider!r}\n$ORIGIN {origin}\n")
        sys.stdout.write(records_to_text(records))
    else:
        sys.stdout.write(zone_to_lua(origin, records, default_ttl=config.ttl_for(origin),
                                     source=f"provider {args.provider!r}"))
    return 0


def lua_string(value: str | bytes) -> str:
    """A Lua 5.1 string literal; bytes outside printable ASCII as decimal escapes."""
    data = value.encode("utf-8") if isinstance(value, str) else value
    out = []
    for byte in data:
        char = chr(byte)
        if char in '"\\':
            out.append("\\" + char)
        elif 32 <= byte < 127:
            out.append(char)
        else:
            out.append(f"\\{byte:03d}")
    return '"' + "".join(out) + '"'


def relative_name(name: str, origin: str) -> str:
    """Owner relative to the zone: "" for the apex, "www" for www.<zone>."""
    if name == origin:
        return ""
    if name.endswith("." + origin):
        return name[: -len(origin) - 1]
    return name  # outside the zone: absolute, with its trailing dot


def target(name: str) -> str:
    """A name inside record data: fully qualified, written without the trailing dot (LuaDNS)."""
    return name if name == "." else name.rstrip(".")


def _lua_call(record: Record, origin: str) -> str:
    """One record as a LuaDNS function call (a generic ``rr`` when no function fits exactly)."""
    owner = lua_string(relative_name(record.name, origin))
    fields = record.data.split()
    kind = record.type
    if kind in ("A", "AAAA"):
        return f"{kind.lower()}({owner}, {lua_string(record.data)}"
    if kind in ("CNAME", "NS", "PTR"):
        return f"{kind.lower()}({owner}, {lua_string(target(record.data))}"
    if kind == "MX" and len(fields) == 2:
        return f"mx({owner}, {lua_string(target(fields[1]))}, {fields[0]}"
    if kind == "SRV" and len(fields) == 4:
        prio, weight, port, host = fields
        return f"srv({owner}, {lua_string(target(host))}, {port}, {prio}, {weight}"
    if kind == "SSHFP" and len(fields) == 3:
        return f"sshfp({owner}, {fields[0]}, {lua_string(fields[2])}, {fields[1]}"
    if kind == "TLSA" and len(fields) >= 4:
        return f"tlsa({owner}, {fields[0]}, {lua_string(''.join(fields[3:]))}, {fields[1]}, {fields[2]}"
    if kind == "DS" and len(fields) >= 4:
        return f"ds({owner}, {fields[0]}, {lua_string(''.join(fields[3:]))}, {fields[1]}, {fields[2]}"
    if kind in ("TXT", "CAA"):
        rdata = dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.from_text(kind), record.data)
        if kind == "CAA":
            return f"caa({owner}, {lua_string(rdata.value)}, {lua_string(rdata.tag)}, {rdata.flags}"
        strings = rdata.strings
        # txt() splits long text into 255-octet strings itself; other splits must be kept as written.
        if all(len(s) == 255 for s in strings[:-1]) and strings:
            return f"txt({owner}, {lua_string(b''.join(strings))}"
    return f"rr({owner}, {lua_string(kind)}, {lua_string(record.data)}"


def zone_to_lua(origin: str, records: Iterable[Record], *, default_ttl: int = 3600, source: str = "") -> str:
    """The records of a zone as a Lua zone file (SOA left out: the publisher generates it)."""
    lines = [f"-- {origin.rstrip('.')}: imported from {source or 'a provider'}.",
             "-- The SOA is generated by the publisher; edit, commit and push to publish.", ""]
    ordered = sorted((r for r in records if r.type != "SOA"),
                     key=lambda r: (dns_order_key(r.name), r.type != "NS", r.type, r.data))
    for record in ordered:
        call = _lua_call(record, origin)
        lines.append(call + (")" if record.ttl == default_ttl else f", {record.ttl})"))
    return "\n".join(lines) + "\n"
