"""ALIAS flattening against a real (tiny) DNS server on loopback."""

from __future__ import annotations

import socket
import threading

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest

from publisher.publish.alias import AliasResolver, flatten_aliases, parse_resolver
from publisher.model import Record

ANSWERS = {
    ("web.example.net.", "A"): ["192.0.2.10", "192.0.2.11"],
    ("web.example.net.", "AAAA"): ["2001:db8::10"],
    ("v4only.example.net.", "A"): ["198.51.100.7"],
}
EXISTING = {"web.example.net.", "v4only.example.net.", "empty.example.net."}


class Responder:
    """Answers A/AAAA queries from ANSWERS over UDP on 127.0.0.1; counts the queries it gets."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.queries = 0
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self) -> None:
        while True:
            try:
                wire, peer = self.sock.recvfrom(4096)
            except OSError:
                return
            query = dns.message.from_wire(wire)
            self.queries += 1
            question = query.question[0]
            name, rtype = question.name.to_text().lower(), dns.rdatatype.to_text(question.rdtype)
            response = dns.message.make_response(query)
            response.flags |= dns.flags.RA
            if name not in EXISTING:
                response.set_rcode(dns.rcode.NXDOMAIN)
            elif (name, rtype) in ANSWERS:
                response.answer.append(dns.rrset.from_text_list(name, 120, "IN", rtype, ANSWERS[(name, rtype)]))
            self.sock.sendto(response.to_wire(), peer)

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def responder():
    server = Responder()
    yield server
    server.close()


def test_parse_resolver_address_forms():
    assert parse_resolver("192.0.2.1") == ("192.0.2.1", 53)
    assert parse_resolver("127.0.0.1:5353") == ("127.0.0.1", 5353)
    assert parse_resolver("[::1]:5300") == ("::1", 5300)
    assert parse_resolver("2001:db8::1") == ("2001:db8::1", 53)


def test_alias_becomes_a_and_aaaa_with_the_alias_ttl(responder):
    resolver = AliasResolver(f"127.0.0.1:{responder.port}")
    records = [Record("example.com.", "ALIAS", 300, "web.example.net.", "example.com.lua", 3),
               Record("example.com.", "MX", 300, "10 mx.example.com.")]
    flattened, findings = flatten_aliases("example.com.", records, resolver)
    assert findings == ()
    assert sorted((r.type, r.data, r.ttl) for r in flattened if r.name == "example.com.") == [
        ("A", "192.0.2.10", 300), ("A", "192.0.2.11", 300), ("AAAA", "2001:db8::10", 300),
        ("MX", "10 mx.example.com.", 300)]
    assert all(r.file == "example.com.lua" and r.line == 3 for r in flattened if r.type in ("A", "AAAA"))


def test_targets_are_resolved_once_per_run(responder):
    resolver = AliasResolver(f"127.0.0.1:{responder.port}")
    records = [Record(f"h{i}.example.com.", "ALIAS", 60, "v4only.example.net.") for i in range(5)]
    flattened, _ = flatten_aliases("example.com.", records, resolver)
    assert len(flattened) == 5 and {r.data for r in flattened} == {"198.51.100.7"}
    assert responder.queries == 2  # one A, one AAAA


@pytest.mark.parametrize("target, problem", [("missing.example.net.", "NXDOMAIN"),
                                             ("empty.example.net.", "no A or AAAA")])
def test_unresolvable_target_keeps_what_is_served(responder, target, problem):
    resolver = AliasResolver(f"127.0.0.1:{responder.port}")
    current = [Record("example.com.", "A", 300, "192.0.2.99"), Record("other.example.com.", "A", 300, "192.0.2.1")]
    records = [Record("example.com.", "ALIAS", 300, target, "example.com.lua", 7)]
    flattened, (finding,) = flatten_aliases("example.com.", records, resolver, current)
    assert flattened == (Record("example.com.", "A", 300, "192.0.2.99"),)
    assert finding.code == "alias-unresolved" and problem in finding.message
    assert (finding.file, finding.line) == ("example.com.lua", 7) and "keeping the 1" in finding.message


def test_resolver_down_is_a_finding_not_an_exception():
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))  # bound, never answers
    port = sock.getsockname()[1]
    try:
        resolver = AliasResolver(f"127.0.0.1:{port}", timeout=0.3)
        flattened, (finding,) = flatten_aliases(
            "example.com.", [Record("example.com.", "ALIAS", 300, "web.example.net.")], resolver)
    finally:
        sock.close()
    assert flattened == () and finding.code == "alias-unresolved" and "failed" in finding.message
