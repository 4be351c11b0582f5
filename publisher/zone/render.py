"""Canonical BIND text of a zone: what ``build`` writes and the zonefile provider serves.

Canonical means stable and in DNSSEC canonical order (RFC 4034 section 6): owner names compared
label by label from the root, each label as a lower-case octet string (so a parent comes right
before its children); at one name the types in numeric order, except that the SOA and then the NS
lead, as ``named-checkzone -D`` writes them; within an RRset the records by their rdata's wire
form (``MX 5`` before ``10`` before ``20``, PTR and NS targets by their wire names, TXT by its
length-prefixed strings).  Two builds of the same zone are byte-identical, and the text lists the
records in the order ``named`` dumps them.
"""

from __future__ import annotations

import socket
from typing import Iterable

import dns.exception
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype

from publisher.model import Record, Zone

_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
# For one-string sort keys: every octet moves up by two (lower-cased), so "\x01" can separate
# labels and "\x00" end the name, both below any label octet: then comparing the strings compares
# the names label by label, a shorter label (or name) first.
_LABEL_OCTETS = {code: chr(ord(chr(code).lower()) + 2) if chr(code).isascii() else chr(code + 2)
                 for code in range(256)}
_ORDER_OCTETS = _LABEL_OCTETS | {ord("."): "\x01"}  # for names without escapes: "." only separates


def _labels(name: str) -> list[str]:
    """The labels of a presentation name, escapes decoded (one character per octet) and ASCII
    letters lower-cased: comparing these strings compares the labels' canonical octets."""
    if "\\" not in name:
        text = name.rstrip(".")
        return text.translate(_ASCII_LOWER).split(".") if text else []
    labels, label, i, size = [], [], 0, len(name)
    while i < size:
        char = name[i]
        if char == "\\" and i + 1 < size:
            if name[i + 1:i + 4].isdigit() and len(name[i + 1:i + 4]) == 3:
                label.append(chr(int(name[i + 1:i + 4]) & 0xFF))
                i += 4
            else:
                label.append(name[i + 1])
                i += 2
            continue
        if char == ".":
            labels.append("".join(label))
            label = []
        else:
            label.append(char)
        i += 1
    if label:
        labels.append("".join(label))
    return [label.translate(_ASCII_LOWER) for label in labels]


def dns_order_key(name: str) -> str:
    """Sort key of owner names in DNSSEC canonical order (RFC 4034 6.1): the apex first, children
    right after their parent, labels compared as lower-case octet strings."""
    if "\\" not in name:
        return "\x01".join(reversed(name.rstrip(".").translate(_ORDER_OCTETS).split("\x01"))) + "\x00"
    return "\x01".join(label.translate(_LABEL_OCTETS) for label in reversed(_labels(name))) + "\x00"


def _name_wire(name: str) -> bytes:
    """A name's canonical (lower-case) wire form: length-prefixed labels, then the root."""
    return b"".join(bytes((len(label),)) + label.encode("latin-1") for label in _labels(name)) + b"\x00"


def _strings(text: str) -> list[bytes]:
    """Presentation character-strings (``"a" "b\\"c"``, quoted or not) as their octets."""
    strings, i, size = [], 0, len(text)
    while i < size:
        if text[i] == " ":
            i += 1
            continue
        quoted = text[i] == '"'
        i += quoted
        chunk = bytearray()
        while i < size and (text[i] != '"' if quoted else text[i] != " "):
            char = text[i]
            if char == "\\" and i + 1 < size:
                if text[i + 1:i + 4].isdigit() and len(text[i + 1:i + 4]) == 3:
                    chunk.append(int(text[i + 1:i + 4]) & 0xFF)
                    i += 4
                    continue
                char = text[i + 1]
                i += 1
            chunk += char.encode("utf-8")
            i += 1
        i += quoted
        strings.append(bytes(chunk))
    return strings


def _generic_wire(rtype: str, data: str) -> bytes:
    """Canonical wire form by dnspython, for the types without a fast path below."""
    try:
        rdata = dns.rdata.from_text(dns.rdataclass.IN, rtype, data, origin=dns.name.root)
        return rdata.to_digestable(dns.name.root)
    except (dns.exception.DNSException, ValueError, TypeError):
        return data.encode("utf-8")  # not valid rdata: still a stable order


def rdata_order_key(rtype: str, data: str) -> bytes:
    """The rdata's canonical wire form (RFC 4034 6.2), the order of records within an RRset."""
    try:
        if rtype == "A":
            return socket.inet_pton(socket.AF_INET, data)
        if rtype == "AAAA":
            return socket.inet_pton(socket.AF_INET6, data)
        if rtype in ("NS", "CNAME", "PTR", "DNAME"):
            return _name_wire(data)
        if rtype == "MX":
            preference, target = data.split(" ", 1)
            return int(preference).to_bytes(2, "big") + _name_wire(target)
        if rtype == "SRV":
            priority, weight, port, target = data.split(" ", 3)
            return (int(priority).to_bytes(2, "big") + int(weight).to_bytes(2, "big")
                    + int(port).to_bytes(2, "big") + _name_wire(target))
        if rtype in ("TXT", "SPF"):
            return b"".join(bytes((len(string),)) + string for string in _strings(data))
        if rtype == "CAA":
            flags, tag, value = data.split(" ", 2)
            return bytes((int(flags), len(tag))) + tag.encode("ascii") + b"".join(_strings(value))
    except (OSError, ValueError, OverflowError):
        pass  # not the canonical spelling these fast paths expect: ask dnspython
    return _generic_wire(rtype, data)


_TYPE_ORDER: dict[str, str] = {"SOA": "\x00", "NS": "\x01"}


def type_order_key(rtype: str) -> str:
    """Types at one name: SOA, NS, then every other type by its number (as ``named`` dumps them)."""
    key = _TYPE_ORDER.get(rtype)
    if key is None:
        try:
            code = int(dns.rdatatype.from_text(rtype))
        except (dns.exception.DNSException, ValueError):
            code = 65536  # unknown spelling: after every real type
        key = _TYPE_ORDER[rtype] = chr(code + 2)
    return key


def canonical_order(records: Iterable[Record]) -> list[Record]:
    """``records`` in DNSSEC canonical order (see the module docstring)."""
    owners: dict[str, str] = {}
    types: dict[str, str] = {}
    keyed = []
    for record in records:
        name, rtype = record[0], record[1]
        owner = owners.get(name)
        if owner is None:
            owner = owners[name] = dns_order_key(name)
        kind = types.get(rtype)
        if kind is None:
            kind = types[rtype] = type_order_key(rtype)
        keyed.append((owner + kind, record))
    keyed.sort(key=_first)
    ordered = [record for _, record in keyed]
    # Records of one RRset are now side by side; order each RRset of several by its rdata.
    start, size = 0, len(keyed)
    while start < size:
        end = start + 1
        key = keyed[start][0]
        while end < size and keyed[end][0] == key:
            end += 1
        if end - start > 1:
            ordered[start:end] = sorted(ordered[start:end], key=lambda r: (rdata_order_key(r.type, r.data), r.ttl))
        start = end
    return ordered


def _first(pair: tuple) -> str:
    return pair[0]


def records_to_text(records: Iterable[Record]) -> str:
    """Records as master-file lines, in canonical order (SOA first)."""
    return "".join([f"{r.name} {r.ttl} IN {r.type} {r.data}\n" for r in canonical_order(records)])


def zone_to_text(zone: Zone, soa: Record | None = None, header: str = "") -> str:
    """The zone as a BIND master file.  ``soa`` replaces the zone's own SOA when given (the
    publisher generates it); ALIAS records, which no master file can hold, are written as
    comments so the output always loads in ``named``.  ``header`` lines (comments) go first."""
    records = [r for r in zone.records if not (soa is not None and r.type == "SOA")]
    if soa is not None:
        records.append(soa)
    plain = [r for r in records if r.type != "ALIAS"]
    aliases = canonical_order(r for r in records if r.type == "ALIAS")
    top = f"; zone {zone.origin} from {zone.file or 'unknown source'}\n" + header + f"$ORIGIN {zone.origin}\n"
    alias_lines = "".join(f"; ALIAS {r.name} {r.ttl} {r.data} (flattened to A/AAAA at publish time)\n"
                          for r in aliases)
    return top + alias_lines + records_to_text(plain)
