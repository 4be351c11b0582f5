"""Zone transfer (AXFR) over TCP with TSIG, parsed straight from the wire into model records.

dnspython builds a Message, RRsets and Rdata objects for every record, which costs about 100 us a
record (11 s for 100,000).  Here the common types (A, AAAA, NS, CNAME, PTR, DNAME, MX, plain TXT)
become model text directly; every other type, and any name or string needing escapes, goes through
dnspython so the text is exactly ``publisher.rdata``'s canonical spelling.  TSIG is verified per
message with dnspython's own ``dns.tsig.validate`` (RFC 8945 multi-message rules).

A thread drains the socket while the caller parses: Knot drops a transfer whose client stalls
longer than its ``tcp-io-timeout`` (seen in tests on a busy machine).
"""

from __future__ import annotations

import queue
import re
import socket
import struct
import threading
import time
from typing import Callable

import dns.exception
import dns.ipv6
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.tsig

from publisher.model import Record

_A, _NS, _CNAME, _SOA, _PTR, _MX, _TXT, _AAAA, _DNAME, _SPF, _TSIG = (
    1, 2, 5, 6, 12, 15, 16, 28, 39, 99, 250)
_NAME_ONLY = frozenset({_NS, _CNAME, _PTR, _DNAME})
# Labels joined by '/' (a byte no plain label holds, unlike '.'): all need no escapes.
_PLAIN_LABELS = re.compile(rb"[A-Za-z0-9_*-]+(?:/[A-Za-z0-9_*-]+)*\Z")
_PLAIN_STRING = re.compile(rb'[ !#-\[\]-~]*\Z')  # printable ASCII except '"' and '\'


_TSIG_ERRORS = {16: dns.tsig.PeerBadSignature, 17: dns.tsig.PeerBadKey, 18: dns.tsig.PeerBadTime,
                22: dns.tsig.PeerBadTruncation}


class TransferRefused(dns.exception.DNSException):
    """The server answered the AXFR with an error RCODE."""


class TransferIncomplete(EOFError):
    """The server closed the connection before the transfer ended."""


def transfer(server: str, port: int, origin: str, key: dns.tsig.Key | None, timeout: float,
             canonical: Callable[[str, dns.rdata.Rdata, str], str]) -> tuple[Record | None, list[Record]]:
    """(SOA, other records) of ``origin`` by AXFR from ``server``.

    ``canonical(rtype, rdata, origin)`` turns a dnspython Rdata into model text for the types
    not decoded here.  Raises dns.exception.DNSException, OSError or EOFError subclasses.
    """
    query = dns.message.make_query(origin, dns.rdatatype.AXFR)
    if key is not None:
        query.use_tsig(key)
    wire = query.to_wire()
    request_mac = query.mac if key is not None else b""
    sock = socket.create_connection((server, port), timeout=timeout)
    received: queue.SimpleQueue = queue.SimpleQueue()

    def drain() -> None:
        try:
            while True:
                (length,) = struct.unpack("!H", _recv_exact(sock, 2))
                received.put(_recv_exact(sock, length))
        except (OSError, EOFError) as error:
            received.put(error)

    reader = threading.Thread(target=drain, name=f"axfr {origin}", daemon=True)
    parser = _Parser(origin, canonical)
    try:
        sock.sendall(struct.pack("!H", len(wire)) + wire)
        reader.start()
        tsig_ctx = None
        first = True
        while parser.soas < 2:
            try:
                item = received.get(timeout=timeout)
            except queue.Empty:
                raise dns.exception.Timeout() from None
            if isinstance(item, EOFError):
                raise TransferIncomplete("the server closed the connection before the transfer ended")
            if isinstance(item, BaseException):
                raise item
            tsig = parser.message(item, query.id, first)
            if key is not None:
                if tsig is not None:
                    owner, rdata, start = tsig
                    tsig_ctx = dns.tsig.validate(item, key, owner, rdata, int(time.time()), request_mac, start,
                                                 tsig_ctx, True)
                elif tsig_ctx is None:
                    raise dns.message.UnknownTSIGKey("the transfer answer is not signed")
                else:
                    tsig_ctx.update(item)  # unsigned message between signed ones (RFC 8945 5.3.1)
            first = False
    finally:
        try:
            sock.shutdown(socket.SHUT_RDWR)  # wakes the reader if it is blocked in recv
        except OSError:
            pass
        sock.close()
        if reader.is_alive():
            reader.join(timeout=5)
    return parser.soa, parser.records


def _recv_exact(sock: socket.socket, count: int) -> bytes:
    data = b""
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            raise EOFError()
        data += chunk
    return data


class _Parser:
    """Decodes transfer messages one by one, collecting records."""

    def __init__(self, origin: str, canonical: Callable[[str, dns.rdata.Rdata, str], str]) -> None:
        self.origin = origin
        self.canonical = canonical
        self.records: list[Record] = []
        self.soa: Record | None = None
        self.soas = 0
        self._types: dict[int, str] = {}
        self._names: dict[int, str] = {}  # offset -> decoded name, for the current message

    def message(self, wire: bytes, query_id: int, first: bool):
        """Collect the answer's records; return (owner, TSIG rdata, offset) when signed."""
        if len(wire) < 12:
            raise dns.message.ShortHeader()
        message_id, flags, qdcount, ancount, nscount, arcount = struct.unpack_from("!HHHHHH", wire)
        if message_id != query_id or not flags & 0x8000:
            raise dns.query.BadResponse()
        offset = 12
        for _ in range(qdcount):
            offset = _skip_name(wire, offset) + 4
        rcode = flags & 0x000F
        if rcode:
            tsig = _find_tsig(wire, offset, ancount + nscount, arcount)
            if tsig is not None and tsig[1].error:  # the key itself was refused: say so
                raise _TSIG_ERRORS.get(tsig[1].error, dns.tsig.PeerError)()
            raise TransferRefused(dns.rcode.to_text(dns.rcode.Rcode(rcode)))
        records, types = self.records, self._types
        self._names = {}
        index = 0
        while index < ancount and self.soas < 2:
            owner, offset = self._name(wire, offset)
            rdtype, _, ttl, rdlen = struct.unpack_from("!HHIH", wire, offset)
            offset += 10
            end = offset + rdlen
            if end > len(wire):
                raise dns.exception.FormError("truncated record")
            if first and index == 0 and rdtype != _SOA:
                raise dns.exception.FormError("the transfer does not start with the SOA")
            index += 1
            if rdtype == _SOA:
                self.soas += 1
                if self.soa is None:
                    self.soa = Record(owner, "SOA", ttl, self._generic(wire, offset, rdlen, _SOA))
                offset = end
                continue
            if rdtype == _A and rdlen == 4:
                data = socket.inet_ntop(socket.AF_INET, wire[offset:end])
            elif rdtype == _AAAA and rdlen == 16:
                data = dns.ipv6.inet_ntoa(wire[offset:end])
            elif rdtype in _NAME_ONLY:
                data = self._name(wire, offset)[0]
            elif rdtype == _MX and rdlen > 2:
                data = f"{struct.unpack_from('!H', wire, offset)[0]} {self._name(wire, offset + 2)[0]}"
            elif rdtype in (_TXT, _SPF):
                data = self._txt(wire, offset, end, rdtype)
            else:
                data = self._generic(wire, offset, rdlen, rdtype)
            rtype = types.get(rdtype)
            if rtype is None:
                rtype = types[rdtype] = dns.rdatatype.to_text(dns.rdatatype.RdataType.make(rdtype))
            records.append(Record(owner, rtype, ttl, data))
            offset = end
        return _find_tsig(wire, offset, ancount - index + nscount, arcount)

    def _name(self, wire: bytes, offset: int) -> tuple[str, int]:
        """(lower-case absolute text, offset after the name), following compression pointers.

        Names already decoded in this message are cached by offset, so a compressed owner costs
        one label: its suffix (usually the zone name) is a pointer to a cached entry.
        """
        cache = self._names
        start = offset
        labels: list[bytes] = []
        end = None
        suffix = "."
        jumps = 0
        while True:
            length = wire[offset]
            if length == 0:
                offset += 1
                break
            if length >= 0xC0:
                target = ((length & 0x3F) << 8) | wire[offset + 1]
                if end is None:
                    end = offset + 2
                cached = cache.get(target)
                if cached is not None:
                    suffix = cached
                    break
                offset = target
                jumps += 1
                if jumps > 127:
                    raise dns.name.BadPointer()
                continue
            if length > 63:
                raise dns.name.BadLabelType()
            labels.append(wire[offset + 1: offset + 1 + length])
            offset += 1 + length
        if labels and not _PLAIN_LABELS.match(b"/".join(labels)):
            return dns.name.from_wire(wire, start)[0].to_text().lower(), (end if end is not None else offset)
        if labels:
            text = b".".join(labels).decode("ascii").lower() + ("." if suffix == "." else "." + suffix)
        else:
            text = suffix
        cache[start] = text
        return text, (end if end is not None else offset)

    def _txt(self, wire: bytes, start: int, end: int, rdtype: int) -> str:
        strings = []
        offset = start
        while offset < end:
            length = wire[offset]
            chunk = wire[offset + 1: offset + 1 + length]
            if len(chunk) != length or not _PLAIN_STRING.match(chunk):
                return self._generic(wire, start, end - start, rdtype)  # escapes needed
            strings.append('"' + chunk.decode("ascii") + '"')
            offset += 1 + length
        return " ".join(strings)

    def _generic(self, wire: bytes, offset: int, rdlen: int, rdtype: int) -> str:
        rdata = dns.rdata.from_wire(dns.rdataclass.IN, rdtype, wire, offset, rdlen)
        rtype = dns.rdatatype.to_text(rdtype)
        return self.canonical(rtype, rdata, self.origin)


def _find_tsig(wire: bytes, offset: int, skip: int, arcount: int):
    """(owner, TSIG rdata, offset of the TSIG RR) from the additional section, or None."""
    for _ in range(skip):
        offset = _skip_rr(wire, offset)
    tsig = None
    for _ in range(arcount):
        start = offset
        name_end = _skip_name(wire, offset)
        rdtype, _, _, rdlen = struct.unpack_from("!HHIH", wire, name_end)
        if rdtype == _TSIG:
            owner = dns.name.from_wire(wire, start)[0]
            rdata = dns.rdata.from_wire(dns.rdataclass.ANY, dns.rdatatype.TSIG, wire, name_end + 10, rdlen)
            tsig = (owner, rdata, start)
        offset = name_end + 10 + rdlen
    return tsig


def _skip_name(wire: bytes, offset: int) -> int:
    while True:
        length = wire[offset]
        if length == 0:
            return offset + 1
        if length >= 0xC0:
            return offset + 2
        offset += 1 + length


def _skip_rr(wire: bytes, offset: int) -> int:
    offset = _skip_name(wire, offset)
    (rdlen,) = struct.unpack_from("!H", wire, offset + 8)
    return offset + 10 + rdlen
