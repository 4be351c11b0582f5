"""Deterministic generator of a realistic zone for the benchmarks, written three equivalent ways:
a BIND master file, a LuaDNS-style Lua file (one record function call per line) and octoDNS YAML.

The mix is what a busy company zone looks like: hosts (A, some dual-stack AAAA, some multi-address
RRsets), CNAME aliases to in-zone hosts and to a CDN, mail sub-domains (MX + in-zone MX host, SPF,
DMARC and a 2048-bit DKIM key longer than 255 octets), SRV services, NS delegations with glue (and
some delegations to out-of-zone servers), and CAA.  Every NS, MX and SRV target is inside the zone
and has an address, so the zone is valid for named-checkzone, kzonecheck and our lint, and
named-checkzone never looks up an outside name (it would query the system resolver: no traffic
leaves loopback in these benchmarks).

The record count is exact: ``n`` resource records in the BIND file, SOA included; the Lua file and the
octoDNS YAML hold the same records minus the SOA (which the publisher generates).

Usage: ``python bench/generate.py --records 100000 --out DIR [--origin example.com] [--formats bind,lua,octodns]``
"""

from __future__ import annotations

import argparse
import base64
import random
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

GENERATOR_VERSION = 1
DEFAULT_TTL = 3600

# The record the benchmarks edit: a fixed name with a value that a test or benchmark rewrites.
EDIT_NAME = "bench-edit"
EDIT_VALUE = "10.255.0.1"


class GenRecord(NamedTuple):
    """One resource record: owner relative to the origin ("" is the apex), type, explicit TTL or
    None for the default, zone-file rdata with absolute names, and the same record as a Lua call."""

    name: str
    rtype: str
    ttl: int | None
    rdata: str
    lua: str


def _lua_str(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _lua_call(func: str, name: str, *args: object, ttl: int | None = None) -> str:
    parts = [_lua_str(name)]
    for arg in args:
        parts.append(str(arg) if isinstance(arg, int) else _lua_str(str(arg)))
    if ttl is not None:
        parts.append(str(ttl))
    return f"{func}({', '.join(parts)})"


def _txt_rdata(text: str) -> str:
    """Zone-file TXT rdata: split into 255-octet strings, exactly as the Lua txt() does."""
    data = text.encode()
    chunks = [data[i:i + 255] for i in range(0, len(data), 255)] or [b""]
    return " ".join('"' + c.decode().replace("\\", "\\\\").replace('"', '\\"') + '"' for c in chunks)


class _Builder:
    """Emits groups of records; each group is self-contained (targets exist, glue present)."""

    def __init__(self, origin: str, seed: int) -> None:
        self.origin = origin.rstrip(".").lower()
        self.rng = random.Random(seed)
        self.hosts = 0          # host{i} names emitted so far (CNAME/SRV targets pick among them)
        self.counters: dict[str, int] = {}

    def _next(self, kind: str) -> int:
        value = self.counters.get(kind, 0)
        self.counters[kind] = value + 1
        return value

    def fqdn(self, rel: str) -> str:
        return f"{rel}.{self.origin}"

    def ipv4(self) -> str:
        r = self.rng
        return f"10.{r.randrange(256)}.{r.randrange(256)}.{r.randrange(1, 255)}"

    def ipv6(self) -> str:
        r = self.rng
        return f"2001:db8:{r.randrange(65536):x}:{r.randrange(65536):x}::{r.randrange(1, 65536):x}"

    def a(self, name: str, ip: str, ttl: int | None = None) -> GenRecord:
        return GenRecord(name, "A", ttl, ip, _lua_call("a", name, ip, ttl=ttl))

    def aaaa(self, name: str, ip: str, ttl: int | None = None) -> GenRecord:
        return GenRecord(name, "AAAA", ttl, ip, _lua_call("aaaa", name, ip, ttl=ttl))

    def cname(self, name: str, target: str, ttl: int | None = None) -> GenRecord:
        return GenRecord(name, "CNAME", ttl, target + ".", _lua_call("cname", name, target, ttl=ttl))

    def mx(self, name: str, exchanger: str, prio: int, ttl: int | None = None) -> GenRecord:
        return GenRecord(name, "MX", ttl, f"{prio} {exchanger}.", _lua_call("mx", name, exchanger, prio, ttl=ttl))

    def txt(self, name: str, text: str, ttl: int | None = None) -> GenRecord:
        return GenRecord(name, "TXT", ttl, _txt_rdata(text), _lua_call("txt", name, text, ttl=ttl))

    def srv(self, name: str, target: str, port: int, prio: int, weight: int, ttl: int | None = None) -> GenRecord:
        return GenRecord(name, "SRV", ttl, f"{prio} {weight} {port} {target}.",
                         _lua_call("srv", name, target, port, prio, weight, ttl=ttl))

    def ns(self, name: str, server: str, ttl: int | None = None) -> GenRecord:
        return GenRecord(name, "NS", ttl, server + ".", _lua_call("ns", name, server, ttl=ttl))

    def caa(self, name: str, value: str, tag: str = "issue", ttl: int | None = None) -> GenRecord:
        lua = _lua_call("caa", name, value, ttl=ttl) if tag == "issue" else _lua_call("caa", name, value, tag, ttl=ttl)
        return GenRecord(name, "CAA", ttl, f'0 {tag} "{value}"', lua)

    def header(self) -> list[GenRecord]:
        """Apex records and the record the benchmarks edit (no SOA: the writers add it)."""
        return [
            self.ns("", self.fqdn("ns1")),
            self.ns("", self.fqdn("ns2")),
            self.a("ns1", "192.0.2.53"),
            self.a("ns2", "198.51.100.53"),
            self.a("", "192.0.2.10"),
            self.aaaa("", "2001:db8::10"),
            self.mx("", self.fqdn("mx1"), 10),
            self.mx("", self.fqdn("mx2"), 20),
            self.a("mx1", "192.0.2.25"),
            self.a("mx2", "198.51.100.25"),
            self.txt("", "v=spf1 include:_spf.example.net -all"),
            self.caa("", "letsencrypt.org"),
            self.a("www", "192.0.2.10", 300),
            self.a(EDIT_NAME, EDIT_VALUE, 60),
        ]

    # Groups, by kind.  The cycle below weights them into a realistic mix.
    def group_a(self) -> list[GenRecord]:
        i = self.hosts
        self.hosts += 1
        return [self.a(f"host{i}", self.ipv4(), 300 if i % 5 == 0 else None)]

    def group_multi_a(self) -> list[GenRecord]:
        i = self._next("web")
        return [self.a(f"web{i}", self.ipv4(), 300), self.a(f"web{i}", self.ipv4(), 300)]

    def group_dual(self) -> list[GenRecord]:
        i = self._next("dual")
        return [self.a(f"dual{i}", self.ipv4()), self.aaaa(f"dual{i}", self.ipv6())]

    def group_cname(self) -> list[GenRecord]:
        i = self._next("alias")
        if i % 4 == 3:
            target = f"site{i}.cdn.example.net"
        else:
            target = self.fqdn(f"host{self.rng.randrange(self.hosts)}")
        return [self.cname(f"alias{i}", target, 300 if i % 2 else None)]

    def group_txt(self) -> list[GenRecord]:
        i = self._next("verify")
        token = base64.b32encode(self.rng.randbytes(20)).decode().lower().rstrip("=")
        return [self.txt(f"v{i}", f"site-verification={token}")]

    def group_mail(self) -> list[GenRecord]:
        i = self._next("maildomain")
        d = f"d{i}"
        key = base64.b64encode(self.rng.randbytes(294)).decode()  # a 2048-bit RSA key's size
        return [
            self.mx(d, self.fqdn(f"mx1.{d}"), 10),
            self.mx(d, self.fqdn("mx2"), 20),
            self.a(f"mx1.{d}", self.ipv4()),
            self.txt(d, "v=spf1 mx include:_spf.example.net ~all"),
            self.txt(f"_dmarc.{d}", f"v=DMARC1; p=quarantine; rua=mailto:dmarc@{d}.{self.origin}"),
            self.txt(f"s1._domainkey.{d}", f"v=DKIM1; k=rsa; p={key}"),
        ]

    def group_srv(self) -> list[GenRecord]:
        i = self._next("svc")
        t1 = self.fqdn(f"host{self.rng.randrange(self.hosts)}")
        t2 = self.fqdn(f"host{self.rng.randrange(self.hosts)}")
        return [self.srv(f"_sip._tcp.svc{i}", t1, 5060, 10, 60),
                self.srv(f"_sip._tcp.svc{i}", t2, 5060, 20, 40)]

    def group_deleg(self) -> list[GenRecord]:
        i = self._next("sub")
        sub = f"sub{i}"
        if i % 4 == 3:  # a sub-zone served by the parent's own name servers: no glue needed
            return [self.ns(sub, self.fqdn("ns1")), self.ns(sub, self.fqdn("ns2"))]
        return [
            self.ns(sub, self.fqdn(f"ns1.{sub}")),
            self.ns(sub, self.fqdn(f"ns2.{sub}")),
            self.a(f"ns1.{sub}", self.ipv4()),
            self.a(f"ns2.{sub}", self.ipv4()),
        ]

    def group_caa(self) -> list[GenRecord]:
        i = self._next("shop")
        return [self.a(f"shop{i}", self.ipv4()),
                self.caa(f"shop{i}", "letsencrypt.org"),
                self.caa(f"shop{i}", f"mailto:security@{self.origin}", "iodef")]


# 20 groups, 35 records a cycle: A ~43 %, AAAA ~9 %, CNAME ~11 %, TXT ~14 % (1 in 5 a long DKIM key),
# MX ~6 %, SRV ~6 %, NS ~6 %, CAA ~6 %.
_CYCLE = ("a", "cname", "a", "dual", "txt", "a", "mail", "cname", "a", "srv",
          "dual", "a", "deleg", "cname", "multi_a", "a", "caa", "dual", "txt", "cname")
_MAX_GROUP = 6


def generate_records(n: int, origin: str = "example.com", seed: int = 2136) -> Iterator[GenRecord]:
    """Yield exactly ``n - 1`` records (the SOA, written by the BIND writer, is the n-th)."""
    if n < 20:
        raise ValueError("a benchmark zone needs at least 20 records")
    builder = _Builder(origin, seed)
    remaining = n - 1
    for record in builder.header():
        yield record
        remaining -= 1
    slot = 0
    while remaining > _MAX_GROUP:
        group = getattr(builder, f"group_{_CYCLE[slot % len(_CYCLE)]}")()
        slot += 1
        yield from group
        remaining -= len(group)
    while remaining > 0:  # fill up to the exact count with single-address hosts
        yield from builder.group_a()
        remaining -= 1


def soa_rdata(origin: str, serial: int = 2026010101) -> str:
    origin = origin.rstrip(".")
    return f"ns1.{origin}. hostmaster.{origin}. {serial} 7200 3600 1209600 3600"


def write_bind(records: Iterator[GenRecord], path: Path, origin: str) -> int:
    """Write a BIND master file with $ORIGIN/$TTL, relative owners and the SOA; return the RR count."""
    origin = origin.rstrip(".").lower()
    count = 1
    with path.open("w") as out:
        out.write(f"; generated by bench/generate.py v{GENERATOR_VERSION}\n")
        out.write(f"$ORIGIN {origin}.\n$TTL {DEFAULT_TTL}\n")
        out.write(f"@\tSOA\t{soa_rdata(origin)}\n")
        lines = []
        for rec in records:
            owner = rec.name or "@"
            ttl = f"{rec.ttl}\t" if rec.ttl is not None else ""
            lines.append(f"{owner}\t{ttl}{rec.rtype}\t{rec.rdata}\n")
            count += 1
            if len(lines) >= 10000:
                out.writelines(lines)
                lines.clear()
        out.writelines(lines)
    return count


def write_lua(records: Iterator[GenRecord], path: Path, origin: str) -> int:
    """Write a LuaDNS-style zone file, one record function call per line; return the record count."""
    count = 0
    with path.open("w") as out:
        out.write(f"-- generated by bench/generate.py v{GENERATOR_VERSION} for {origin.rstrip('.')}\n")
        lines = []
        for rec in records:
            lines.append(rec.lua + "\n")
            count += 1
            if len(lines) >= 10000:
                out.writelines(lines)
                lines.clear()
        out.writelines(lines)
    return count


def _unquote_txt(rdata: str) -> list[str]:
    parts = []
    for chunk in rdata.split('" "'):
        parts.append(chunk.strip('"').replace('\\"', '"').replace("\\\\", "\\"))
    return parts


def octodns_records(records: Iterator[GenRecord]) -> dict[str, list[dict]]:
    """Group records into octoDNS YAML structure: {name: [{type, ttl?, value(s)}]}."""
    rrsets: dict[tuple[str, str], dict] = {}
    for rec in records:
        key = (rec.name, rec.rtype)
        entry = rrsets.get(key)
        if entry is None:
            entry = {"type": rec.rtype, "ttl": rec.ttl if rec.ttl is not None else DEFAULT_TTL, "values": []}
            rrsets[key] = entry
        elif rec.ttl is not None:
            entry["ttl"] = min(entry["ttl"], rec.ttl)
        fields = rec.rdata.split()
        if rec.rtype in ("A", "AAAA", "NS"):
            value: object = rec.rdata
        elif rec.rtype == "CNAME":
            value = rec.rdata
        elif rec.rtype == "MX":
            value = {"preference": int(fields[0]), "exchange": fields[1]}
        elif rec.rtype == "SRV":
            value = {"priority": int(fields[0]), "weight": int(fields[1]), "port": int(fields[2]), "target": fields[3]}
        elif rec.rtype == "CAA":
            value = {"flags": int(fields[0]), "tag": fields[1], "value": fields[2].strip('"')}
        elif rec.rtype == "TXT":
            value = "".join(_unquote_txt(rec.rdata)).replace(";", "\\;")
        else:
            raise ValueError(f"no octoDNS mapping for {rec.rtype}")
        entry["values"].append(value)
    out: dict[str, list[dict]] = {}
    for (name, rtype), entry in rrsets.items():
        if rtype == "CNAME":
            entry = {"type": "CNAME", "ttl": entry["ttl"], "value": entry["values"][0]}
        out.setdefault(name, []).append(entry)
    return out


def write_octodns(records: Iterator[GenRecord], path: Path) -> int:
    import yaml  # only needed for the publish benchmark

    data = octodns_records(records)
    with path.open("w") as out:
        yaml.safe_dump(data, out, default_flow_style=False, sort_keys=True, width=1 << 20)
    return sum(len(v) for v in data.values())


def generate(n: int, out_dir: Path, origin: str = "example.com", formats: tuple[str, ...] = ("bind", "lua"),
             seed: int = 2136) -> dict[str, Path]:
    """Write the requested formats into ``out_dir``; return {format: path}."""
    out_dir.mkdir(parents=True, exist_ok=True)
    origin = origin.rstrip(".").lower()
    paths: dict[str, Path] = {}
    if "bind" in formats:
        paths["bind"] = out_dir / f"{origin}.bind"
        write_bind(generate_records(n, origin, seed), paths["bind"], origin)
    if "lua" in formats:
        paths["lua"] = out_dir / f"{origin}.lua"
        write_lua(generate_records(n, origin, seed), paths["lua"], origin)
    if "octodns" in formats:
        paths["octodns"] = out_dir / f"{origin}.yaml"
        write_octodns(generate_records(n, origin, seed), paths["octodns"])
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--origin", default="example.com")
    parser.add_argument("--formats", default="bind,lua")
    parser.add_argument("--seed", type=int, default=2136)
    args = parser.parse_args(argv)
    paths = generate(args.records, args.out, args.origin, tuple(args.formats.split(",")), args.seed)
    for fmt, path in paths.items():
        print(f"{fmt}\t{path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
