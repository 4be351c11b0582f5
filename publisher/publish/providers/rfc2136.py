"""RFC 2136 dynamic updates plus AXFR, with TSIG: BIND ``named`` and Knot ``knotd``.

Reading is a TSIG-signed AXFR decoded from the wire (``axfr.py``); the cheap ``serial`` is one SOA
query.  ``apply`` sends the planned
changes, in the order given (the planner orders them so no message leaves an invalid zone), packed
into as few UPDATE messages as fit in 64 KiB each.  Packing is by encoded size, never by count:
each change is encoded to wire format once (owners compressed against the zone name, rdata
uncompressed), so its exact size is known, and a message takes changes until the next would
overflow; the signed message is measured again before it is sent.  Encoding the wire directly
rather than through ``dns.message`` cuts the client's time per record about sevenfold.

The one exception to the given order: NS, MX and SRV additions go after the other additions (see
``addresses_before_referrers``), because BIND checks their in-zone targets after every message.

Every message carries a prerequisite "the SOA is exactly what we last saw" and replaces the SOA,
so a change made by someone else between our read and our write, or between two of our messages,
fails the prerequisite (NXRRSET) and surfaces as ConcurrentChangeError instead of being
overwritten.  Serials: message i of n sets ``current + i``; the last one sets the serial the
planner asked for when that is still ahead of ``current + n - 1`` (RFC 1982), otherwise
``current + n``.  ``apply`` returns the serial finally served.
"""

from __future__ import annotations

import secrets
import socket
import struct
import time
from typing import Iterable, Sequence

import dns.exception
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.TSIG
import dns.tsig

from publisher.model import CREATE, DELETE, UPDATE, Change, Record
from publisher.publish.providers import axfr
from publisher.publish.providers.presentation import is_plain
from publisher.publish.providers.base import (Capabilities, ConcurrentChangeError, Option, OptionSchema, ProviderError,
                                              Snapshot, schema)
from publisher.publish.providers.tsig import TsigKey
from publisher.publish.soa import part_serial, serial_of
from publisher.rdata import RdataError, canonical_rdata

# What BIND 9.18 and Knot 3.2 both store and transfer (ALIAS is flattened by the publisher).
OPTIONS = OptionSchema(schema(
    server=Option(str, required=True), port=Option(int), timeout=Option(float), max_message_size=Option(int),
    tsig_keyfile=Option(str, path=True), tsig_name=Option(str), tsig_algorithm=Option(str),
    tsig_secret=Option(str, secret=True),
), exclusive=(("tsig_keyfile", "tsig_secret"),))

RECORD_TYPES = frozenset({
    "A", "AAAA", "AFSDB", "CAA", "CDNSKEY", "CDS", "CERT", "CNAME", "DHCID", "DNAME", "DNSKEY", "DS",
    "HINFO", "HTTPS", "IPSECKEY", "KX", "LOC", "MX", "NAPTR", "NS", "OPENPGPKEY", "PTR", "RP", "SMIMEA",
    "SOA", "SPF", "SRV", "SSHFP", "SVCB", "TLSA", "TXT", "URI",
})

MAX_MESSAGE = 65535  # a DNS message over TCP carries at most 64 KiB
_ZONE_POINTER = b"\xc0\x0c"  # compression pointer to the zone name, right after the header
_UPDATE_FLAGS = 5 << 11  # opcode UPDATE
_PLACEHOLDER_NS = "zone-publisher-ttl-change.invalid."
_REFERRER_TYPES = frozenset({"NS", "MX", "SRV"})  # records whose in-zone targets BIND wants resolvable
# Types whose presentation is only names and numbers: lower-casing the text is exact and cheap.
_NAME_ONLY_TYPES = frozenset({"NS", "CNAME", "PTR", "DNAME", "MX", "SRV", "KX", "AFSDB", "RT"})
# Types without any domain name in their rdata: dnspython's text is already canonical.
_NAMELESS_TYPES = frozenset({
    "A", "AAAA", "TXT", "SPF", "CAA", "SSHFP", "TLSA", "SMIMEA", "DS", "CDS", "DNSKEY", "CDNSKEY",
    "HINFO", "LOC", "OPENPGPKEY", "DHCID", "CERT", "URI",
})


def addresses_before_referrers(changes: Sequence[Change]) -> list[Change]:
    """The planner's order, except NS, MX and SRV additions move after every other addition.

    BIND (check-integrity, on by default) checks each UPDATE message on its own and refuses one
    that leaves an in-zone NS or MX target without an address; when changes span several
    messages, those records must not arrive before the addresses they point to.  They stay ahead
    of the trailing deletes, so an old address outlives the record that needed it.
    """
    moved = [c for c in changes if c.type in _REFERRER_TYPES and c.action != DELETE]
    if not moved:
        return list(changes)
    rest = [c for c in changes if not (c.type in _REFERRER_TYPES and c.action != DELETE)]
    last_addition = max((i for i, c in enumerate(rest) if c.action != DELETE), default=-1)
    return rest[: last_addition + 1] + moved + rest[last_addition + 1:]


def _owner_wire(name: str, origin: str) -> bytes:
    """Wire form of an owner name, compressed against the zone name at offset 12.

    Model names are absolute and lower-case, so plain names are encoded from the text directly;
    escaped ones (rare) go through dnspython.
    """
    if name.endswith("." + origin) and "\\" not in name:
        try:
            encoded = [label.encode("ascii") for label in name[: -len(origin) - 1].split(".")]
        except UnicodeEncodeError:
            encoded = []
        if encoded and all(0 < len(label) < 64 for label in encoded):
            return b"".join(bytes((len(label),)) + label for label in encoded) + _ZONE_POINTER
    owner = dns.name.from_text(name)
    zone = dns.name.from_text(origin)
    if owner.is_subdomain(zone):
        return b"".join(bytes((len(label),)) + label for label in owner.relativize(zone).labels) + _ZONE_POINTER
    return owner.to_wire()  # out of zone: the server answers NOTZONE


def _rdata_wire(rdtype: int, rtype: str, text: str) -> bytes:
    """Uncompressed rdata wire form: common canonical spellings directly, others through dnspython."""
    if rdtype == dns.rdatatype.A:
        return socket.inet_pton(socket.AF_INET, text)
    if rdtype == dns.rdatatype.AAAA:
        return socket.inet_pton(socket.AF_INET6, text)
    if is_plain(rtype, text):
        if rtype in ("NS", "CNAME", "PTR", "DNAME"):
            return _name_wire(text)
        if rtype == "MX":
            preference, exchange = text.split(" ", 1)
            return struct.pack("!H", int(preference)) + _name_wire(exchange)
        if rtype == "SRV":
            priority, weight, port, target = text.split(" ", 3)
            return struct.pack("!HHH", int(priority), int(weight), int(port)) + _name_wire(target)
        if rtype in ("TXT", "SPF"):
            return b"".join(bytes((len(part),)) + part for part in text[1:-1].encode("ascii").split(b'" "'))
        if rtype == "CAA":
            flags, tag, value = text.split(" ", 2)
            return bytes((int(flags), len(tag))) + tag.encode("ascii") + value[1:-1].encode("ascii")
    return dns.rdata.from_text(dns.rdataclass.IN, rdtype, text).to_wire()


def _name_wire(text: str) -> bytes:
    """Uncompressed wire form of a plain absolute name (``is_plain`` checked it)."""
    if text == ".":
        return b"\0"
    return b"".join(bytes((len(label),)) + label for label in text[:-1].encode("ascii").split(b".")) + b"\0"


def rdata_to_text(rdtype: str, rdata: dns.rdata.Rdata, origin: str) -> str:
    """Canonical model text of rdata received from a server (see ``publisher.rdata``)."""
    if rdtype in _NAME_ONLY_TYPES:
        return rdata.to_text().lower()
    if rdtype in _NAMELESS_TYPES:
        return rdata.to_text()
    return canonical_rdata(rdtype, rdata.to_text(), origin)


def _question_wire(origin: str) -> bytes | None:
    """The question ``origin IN SOA`` in wire form; None for a name that needs escapes."""
    if "\\" in origin:
        return None
    labels = origin.rstrip(".").split(".") if origin != "." else []
    try:
        encoded = [label.encode("ascii") for label in labels]
    except UnicodeEncodeError:
        return None
    if not all(0 < len(label) < 64 for label in encoded):
        return None
    return b"".join(bytes((len(label),)) + label for label in encoded) + b"\0" + struct.pack(
        "!HH", dns.rdatatype.SOA, dns.rdataclass.IN)


def _skip_name(wire: bytes, offset: int) -> int:
    """The offset after the (possibly compressed) name at ``offset``; IndexError when truncated."""
    while True:
        length = wire[offset]
        if length & 0xC0 == 0xC0:
            return offset + 2
        if length == 0:
            return offset + 1
        offset += length + 1


def _soa_serial_from_answer(wire: bytes, question: bytes) -> int | None:
    """The serial of the first answer record when it is the zone's SOA (owner: a pointer to the
    question's name, or that name again); None for anything else."""
    try:
        (answers,) = struct.unpack_from("!H", wire, 6)
        offset = 12 + len(question)
        if answers < 1:
            return None
        owner_end = _skip_name(wire, offset)
        owner = wire[offset:owner_end]
        if owner != b"\xc0\x0c" and owner.lower() != question[:-4].lower():
            return None
        rtype, rclass, _, length = struct.unpack_from("!HHIH", wire, owner_end)
        if rtype != dns.rdatatype.SOA or rclass != dns.rdataclass.IN:
            return None
        rdata = owner_end + 10
        serial_at = _skip_name(wire, _skip_name(wire, rdata))
        if serial_at + 20 != rdata + length:
            return None
        return struct.unpack_from("!I", wire, serial_at)[0]
    except (IndexError, struct.error):
        return None


class RFC2136Provider:
    """Dynamic updates (RFC 2136) and AXFR against one server, signed with a TSIG key."""

    def __init__(self, name: str, server: str, port: int = 53, key: TsigKey | None = None,
                 timeout: float = 10.0, max_message_size: int = MAX_MESSAGE) -> None:
        self.name = name
        self.server = server
        self.port = port
        self.key = key
        self.timeout = timeout
        self.max_message_size = max_message_size
        self.capabilities = Capabilities(record_types=RECORD_TYPES, can_create_zones=False, bulk_serials=True)
        self._dns_key = key.to_dnspython() if key is not None else None

    def __repr__(self) -> str:
        return f"RFC2136Provider(name={self.name!r}, server={self.server!r}, port={self.port})"

    # ------------------------------------------------------------------ reading

    def _error(self, origin: str, what: str) -> ProviderError:
        return ProviderError(f"provider {self.name!r} ({self.server} port {self.port}), zone {origin}: {what}")

    def _describe(self, error: BaseException) -> str:
        """A reason for ``error`` fit for users, without secrets."""
        if isinstance(error, dns.exception.Timeout):
            return f"no answer within {self.timeout:g} s (server down or unreachable?)"
        if isinstance(error, ConnectionRefusedError):
            return "connection refused (server down?)"
        if isinstance(error, dns.tsig.PeerBadKey):
            return "the server does not know the TSIG key (BADKEY)"
        if isinstance(error, dns.tsig.PeerBadSignature):
            return "the server rejected the TSIG signature (BADSIG: wrong secret?)"
        if isinstance(error, dns.tsig.PeerBadTime):
            return "the server rejected the TSIG time (BADTIME: clocks out of sync?)"
        if isinstance(error, dns.tsig.BadSignature):
            return "the answer's TSIG signature does not verify (wrong secret?)"
        if isinstance(error, axfr.TransferRefused):
            return f"the server refused the transfer ({error}): does allow-transfer / the ACL allow this key?"
        if isinstance(error, EOFError):
            return str(error) if str(error) not in ("", "EOF") else "the server closed the connection (server down?)"
        if isinstance(error, OSError):
            return f"network error: {error.strerror or error}"
        return f"{type(error).__name__}: {error}"

    def _soa(self, origin: str) -> dns.rdata.Rdata | None:
        """The SOA the server answers with authority, None when it does not serve the zone."""
        query = dns.message.make_query(origin, dns.rdatatype.SOA)
        try:
            response, _ = dns.query.udp_with_fallback(query, self.server, port=self.port, timeout=self.timeout)
        except (dns.exception.DNSException, OSError) as error:
            raise self._error(origin, f"SOA query failed: {self._describe(error)}") from None
        rcode = response.rcode()
        if rcode in (dns.rcode.REFUSED, dns.rcode.NOTAUTH, dns.rcode.NXDOMAIN):
            return None
        if rcode == dns.rcode.SERVFAIL:
            raise self._error(origin, "SOA query answered SERVFAIL (zone failed to load?)")
        name = dns.name.from_text(origin)
        for rrset in response.answer:
            if rrset.rdtype == dns.rdatatype.SOA and rrset.name == name:
                return rrset[0]
        return None

    def serial(self, origin: str) -> int | None:
        soa = self._soa(origin)
        return None if soa is None else soa.serial

    def serials(self, origins: Sequence[str], window: int = 64) -> dict[str, int | None]:
        """Every zone's serial over ONE UDP socket, ``window`` queries in flight, queries and
        answers encoded by hand (for thousands of zones a socket per query and dnspython's
        message objects cost more than the server's answers).  A zone whose answer is missing,
        truncated or anything but a plain authoritative SOA or refusal is asked again on its own
        with ``serial()``, which reports its errors as usual."""
        results: dict[str, int | None] = {}
        retry: list[str] = []
        pending: dict[int, tuple[str, bytes]] = {}
        try:
            sock = socket.socket(socket.AF_INET6 if ":" in self.server else socket.AF_INET, socket.SOCK_DGRAM)
        except OSError:
            return {origin: self.serial(origin) for origin in origins}
        try:
            sock.connect((self.server, self.port))
            sock.settimeout(min(self.timeout, 2.0))
            waiting = list(reversed(origins))
            next_id = secrets.randbelow(65536)
            while waiting or pending:
                while waiting and len(pending) < window:
                    origin = waiting.pop()
                    question = _question_wire(origin)
                    if question is None:
                        retry.append(origin)
                        continue
                    next_id = (next_id + 1) % 65536
                    pending[next_id] = (origin, question)
                    sock.send(struct.pack("!HHHHHH", next_id, 0, 1, 0, 0, 0) + question)
                if not pending:
                    break
                try:
                    wire = sock.recv(65535)
                except OSError:  # a timeout included: what is still pending is asked again alone
                    break
                if len(wire) < 12:
                    continue
                message_id, flags = struct.unpack_from("!HH", wire)
                asked = pending.get(message_id)
                if asked is None or wire[12:12 + len(asked[1])].lower() != asked[1].lower():
                    continue
                del pending[message_id]
                origin, question = asked
                rcode = flags & 0xF
                if rcode in (dns.rcode.REFUSED, dns.rcode.NOTAUTH, dns.rcode.NXDOMAIN):
                    results[origin] = None
                    continue
                serial = _soa_serial_from_answer(wire, question) if rcode == 0 and not flags & 0x0200 else None
                if serial is None:
                    retry.append(origin)  # no plain answer: the careful path decides
                else:
                    results[origin] = serial
        finally:
            sock.close()
        retry.extend(origin for origin, _ in pending.values())
        for origin in retry:
            results[origin] = self.serial(origin)
        return {origin: results[origin] for origin in origins}

    def read(self, origin: str) -> Snapshot | None:
        if self._soa(origin) is None:
            return None
        try:
            soa, records = axfr.transfer(self.server, self.port, origin, self._dns_key, self.timeout, rdata_to_text)
        except ConnectionRefusedError:
            raise self._error(origin, "AXFR failed: connection refused (server down?)") from None
        except (dns.exception.DNSException, OSError, EOFError, RdataError, ValueError, IndexError,
                struct.error) as error:
            raise self._error(origin, f"AXFR failed: {self._describe(error)}") from None
        if soa is None:
            raise self._error(origin, "AXFR returned no SOA")
        return Snapshot(tuple(records), serial_of(soa.data), soa)

    # ------------------------------------------------------------------ writing

    def apply(self, origin: str, changes: Sequence[Change], soa: Record, expected_serial: int | None) -> int:
        zone = dns.name.from_text(origin)
        current = self._soa(origin)
        if current is None:
            raise self._error(origin, "the server does not serve this zone; " + self._zone_instructions(origin))
        if expected_serial is not None and current.serial != expected_serial:
            raise ConcurrentChangeError(
                f"provider {self.name!r}, zone {origin}: serial is {current.serial}, expected "
                f"{expected_serial}: the zone changed since it was read; nothing applied")
        ordered = addresses_before_referrers([change for change in changes if change.type != "SOA"])
        encoded = [self._encode_change(zone, origin, change) for change in ordered]
        target = serial_of(soa.data)
        soa_template = dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.SOA, soa.data)
        batches = self._pack(origin, [item for item in encoded if item[1]], current, soa_template)
        previous = current
        sock = None
        try:
            for index, batch in enumerate(batches, start=1):
                serial = part_serial(current.serial, index, len(batches), target)
                new_soa = soa_template.replace(serial=serial)
                sock = sock or self._connect(origin)
                self._send(origin, zone, previous, new_soa, soa.ttl, batch, sock, index, len(batches))
                previous = new_soa
        finally:
            if sock is not None:
                sock.close()
        return previous.serial

    def _zone_instructions(self, origin: str) -> str:
        key = f'key "{self.key.name}"' if self.key else "the publisher's key"
        return (f"RFC 2136 cannot create zones: add zone {origin} to named.conf (with allow-update "
                f"{{ {key}; }}; and allow-transfer) or to knot.conf (with an ACL allowing update and "
                f"transfer for that key), then publish again")

    def _encode_change(self, zone: dns.name.Name, origin: str, change: Change) -> tuple[int, bytes]:
        """One change as update-section RRs in wire format: (RR count, bytes), in sending order.

        Owners are compressed against the zone name (offset 12, right after the header); rdata is
        written uncompressed, so the size of a message is exactly the sum of its parts.
        """
        rdtype = dns.rdatatype.from_text(change.type)
        at_apex = change.name == origin
        owner_wire = _ZONE_POINTER if at_apex else _owner_wire(change.name, origin)

        def rrs(texts: Iterable[str], rdclass: int, ttl: int) -> list[bytes]:
            encoded = []
            for text in texts:
                try:
                    rdata = _rdata_wire(rdtype, change.type, text)
                except (dns.exception.DNSException, ValueError, OSError) as error:
                    raise ProviderError(f"provider {self.name!r}, zone {zone}: cannot encode "
                                        f"{change.name} {change.type}: {error}") from None
                encoded.append(owner_wire + struct.pack("!HHIH", rdtype, rdclass, ttl, len(rdata)) + rdata)
            return encoded

        if change.action == DELETE:
            # The whole RRset (class ANY): also removes data someone added by hand.
            parts = [owner_wire + struct.pack("!HHIH", rdtype, dns.rdataclass.ANY, 0, 0)]
        elif change.action == CREATE:
            parts = rrs(change.new, dns.rdataclass.IN, change.ttl)
        elif change.action == UPDATE:
            old, new = set(change.old), set(change.new)
            if change.ttl != change.old_ttl:
                # Knot keeps an existing RR's TTL when it is added again: remove, then add.
                to_add, to_delete = change.new, sorted(old)
            else:
                to_add, to_delete = tuple(d for d in change.new if d not in old), sorted(old - new)
            adds = rrs(to_add, dns.rdataclass.IN, change.ttl)
            deletes = rrs(to_delete, dns.rdataclass.NONE, 0)
            if rdtype == dns.rdatatype.NS and at_apex:
                # The apex NS set must never run out, and servers skip deleting its last record.
                parts = adds + deletes
                if change.ttl != change.old_ttl:
                    # A TTL change must remove every old record first, so a placeholder NS keeps
                    # the set non-empty meanwhile; it goes away in the same (atomic) message.
                    placeholder = rrs([_PLACEHOLDER_NS], dns.rdataclass.IN, change.ttl)
                    parts = placeholder + deletes + adds + rrs([_PLACEHOLDER_NS], dns.rdataclass.NONE, 0)
            else:
                parts = deletes + adds
        else:
            raise ProviderError(f"provider {self.name!r}: unknown change action {change.action!r}")
        return len(parts), b"".join(parts)

    def _pack(self, origin: str, encoded: list[tuple[int, bytes]], current: dns.rdata.Rdata,
              new: dns.rdata.Rdata) -> list[list[tuple[int, bytes]]]:
        """Split encoded changes (each kept whole) into messages that fit in 64 KiB.

        The fixed part (header, zone, SOA prerequisite, new SOA, TSIG) is measured for both
        prerequisites a message can carry: the zone's current SOA (first message) and the new
        one (later messages), which may be longer (e.g. another contact from configuration).
        """
        zone = dns.name.from_text(origin)
        fixed = max(len(self._wire(zone, current, new, 0, [])[0]), len(self._wire(zone, new, new, 0, [])[0]))
        budget = self.max_message_size - fixed
        batches: list[list[tuple[int, bytes]]] = [[]]
        used = 0
        for count, wire in encoded:
            if len(wire) > budget:
                raise self._error(origin, f"one RRset change needs {len(wire)} octets, more than one "
                                          f"DNS message holds")
            if used + len(wire) > budget and batches[-1]:
                batches.append([])
                used = 0
            batches[-1].append((count, wire))
            used += len(wire)
        return batches

    def _wire(self, zone: dns.name.Name, previous_soa: dns.rdata.Rdata, new_soa: dns.rdata.Rdata,
              soa_ttl: int, batch: list[tuple[int, bytes]], message_id: int = 0) -> tuple[bytes, bytes]:
        """The UPDATE message (zone, SOA prerequisite, the batch, the new SOA), TSIG-signed, and
        its MAC (needed to verify the answer's signature)."""
        previous_wire = previous_soa.to_wire()
        new_wire = new_soa.to_wire()
        updates = sum(count for count, _ in batch) + 1
        body = b"".join((
            struct.pack("!HHHHHH", message_id, _UPDATE_FLAGS, 1, 1, updates, 0),
            zone.to_wire(), struct.pack("!HH", dns.rdatatype.SOA, dns.rdataclass.IN),
            # Prerequisite "this exact SOA exists" (RFC 2136 2.4.2, TTL 0): the concurrency guard.
            _ZONE_POINTER, struct.pack("!HHIH", dns.rdatatype.SOA, dns.rdataclass.IN, 0, len(previous_wire)),
            previous_wire,
            *(wire for _, wire in batch),
            # Adding an SOA replaces the zone's SOA (RFC 2136 3.4.2.2).
            _ZONE_POINTER, struct.pack("!HHIH", dns.rdatatype.SOA, dns.rdataclass.IN, soa_ttl or 300,
                                       len(new_wire)),
            new_wire,
        ))
        if self._dns_key is None:
            return body, b""
        key = self._dns_key
        unsigned = dns.rdtypes.ANY.TSIG.TSIG(dns.rdataclass.ANY, dns.rdatatype.TSIG, key.algorithm, 0, 300,
                                             b"", message_id, 0, b"")
        signed, _ = dns.tsig.sign(body, key, unsigned, int(time.time()), b"")
        tsig_wire = signed.to_wire()
        return b"".join((
            body[:10], struct.pack("!H", 1), body[12:],
            key.name.to_wire(), struct.pack("!HHIH", dns.rdatatype.TSIG, dns.rdataclass.ANY, 0, len(tsig_wire)),
            tsig_wire,
        )), signed.mac

    def _connect(self, origin: str) -> socket.socket:
        try:
            return socket.create_connection((self.server, self.port), timeout=self.timeout)
        except OSError as error:
            raise self._error(origin, f"cannot connect: {self._describe(error)}") from None

    def _send(self, origin: str, zone: dns.name.Name, previous_soa: dns.rdata.Rdata, new_soa: dns.rdata.Rdata,
              soa_ttl: int, batch: list[tuple[int, bytes]], sock: socket.socket, index: int, total: int) -> None:
        where = f"update {index}/{total}"
        message_id = secrets.randbelow(65536)
        wire, mac = self._wire(zone, previous_soa, new_soa, soa_ttl, batch, message_id)
        if len(wire) > self.max_message_size:  # cannot happen: _pack measured every part
            raise self._error(origin, f"{where} is {len(wire)} octets, over {self.max_message_size}")
        expiration = time.time() + self.timeout
        try:
            dns.query.send_tcp(sock, wire, expiration)
            response, _ = dns.query.receive_tcp(sock, expiration, keyring=self._dns_key,
                                                request_mac=mac)
        except (dns.exception.DNSException, OSError, EOFError) as error:
            raise self._error(origin, f"{where} failed: {self._describe(error)}"
                              + ("; earlier updates were applied, the next run repairs the rest"
                                 if index > 1 else "")) from None
        if response.id != message_id:
            raise self._error(origin, f"{where}: answer does not match the request")
        rcode = response.rcode()
        if rcode == dns.rcode.NOERROR:
            return
        if rcode == dns.rcode.NXRRSET:
            raise ConcurrentChangeError(
                f"provider {self.name!r}, zone {origin}: {where} refused because the SOA changed "
                f"(someone else updated the zone); "
                + ("nothing applied" if index == 1 else "earlier updates were applied, plan again"))
        reason = {
            dns.rcode.REFUSED: "REFUSED (does allow-update / the ACL allow this key? BIND also refuses "
                               "an update that leaves an in-zone NS or MX target without an address)",
            dns.rcode.NOTAUTH: "NOTAUTH (server not authoritative, or the TSIG key is not accepted)",
            dns.rcode.NOTZONE: "NOTZONE (a record is outside the zone)",
            dns.rcode.SERVFAIL: "SERVFAIL",
            dns.rcode.FORMERR: "FORMERR (the server could not parse the update)",
        }.get(rcode, dns.rcode.to_text(rcode))
        raise self._error(origin, f"{where} failed: {reason}")

    # ------------------------------------------------------------------ zones

    def create_zone(self, origin: str, soa: Record, nameservers: Sequence[Record]) -> None:
        raise self._error(origin, self._zone_instructions(origin))

    def delete_zone(self, origin: str) -> None:
        raise self._error(origin, "RFC 2136 cannot delete zones: remove the zone from the server's "
                                  "configuration (named.conf / knot.conf)")
