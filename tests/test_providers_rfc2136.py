"""RFC 2136 provider specifics: TSIG and server errors, size-based packing, serials, the SOA guard."""

from __future__ import annotations

import socket
from types import MappingProxyType

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import pytest

from publisher.model import CREATE, DELETE, UPDATE, Change, Record
from publisher.publish.plan import diff_records
from publisher.publish.providers import create_provider
from publisher.publish.providers.base import ConcurrentChangeError, ProviderError
from publisher.publish.providers.rfc2136 import RFC2136Provider, addresses_before_referrers, rdata_to_text
from publisher.publish.soa import serial_after, serial_gt
from publisher.publish.providers.tsig import make_key
from publisher.rdata import canonical_rdata
from tests.servers import LOOPBACK, free_port, unique_zone

WRONG_SECRET = "d3Jvbmd3cm9uZ3dyb25nd3Jvbmd3cm9uZ3dyb25nd3I="


def soa(origin: str, serial: int) -> Record:
    return Record(origin, "SOA", 300, f"ns1.{origin} hostmaster.{origin} {serial} 3600 600 604800 300")


def glue(origin: str) -> list[Record]:
    return [Record(origin, "NS", 300, f"ns1.{origin}"), Record(f"ns1.{origin}", "A", 300, "127.0.0.1")]


class RecordingProvider(RFC2136Provider):
    """Keeps the size of every UPDATE message it signs."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.sizes: list[int] = []

    def _wire(self, *args, **kwargs):
        wire, mac = super()._wire(*args, **kwargs)
        if args[4]:  # a batch with changes (not the size probe)
            self.sizes.append(len(wire))
        return wire, mac


# ------------------------------------------------------------------------------- no server needed


@pytest.mark.parametrize("rtype, text", [
    ("SOA", "NS1.Example.COM. Host.Example.COM. 7 3600 600 604800 300"),
    ("RP", "Admin.Example.COM. TXT.Example.COM."),
    ("NAPTR", '100 10 "S" "SIP+D2U" "" _SIP._udp.Example.COM.'),
    ("HTTPS", '1 Svc.Example.COM. alpn="h2,h3" port=8443'),
    ("MX", "10 Mail.Example.COM."),
    ("TXT", '"Mixed Case stays" "' + "z" * 255 + '"'),
    ("CAA", '0 issue "LetsEncrypt.org"'),
    ("SSHFP", "1 1 0123456789ABCDEF0123456789ABCDEF01234567"),
])
def test_rdata_from_the_wire_matches_the_model_spelling(rtype: str, text: str) -> None:
    rdata = dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.from_text(rtype), text)
    wire_trip = dns.rdata.from_wire(dns.rdataclass.IN, dns.rdatatype.from_text(rtype), rdata.to_wire(), 0,
                                    len(rdata.to_wire()))
    assert rdata_to_text(rtype, wire_trip, "example.com.") == canonical_rdata(rtype, text, "example.com.")


def test_referrer_additions_follow_other_additions_and_precede_deletes() -> None:
    o = "example.com."
    conflict = Change(DELETE, f"www.{o}", "A", 300, old=("192.0.2.1",))
    apex_ns = Change(UPDATE, o, "NS", 300, old=(f"ns1.{o}",), new=(f"ns2.{o}",))
    www = Change(CREATE, f"www.{o}", "CNAME", 300, new=(o,))
    delegation = Change(CREATE, f"sub.{o}", "NS", 300, new=(f"ns.sub.{o}",))
    new_glue = Change(CREATE, f"ns2.{o}", "A", 300, new=("192.0.2.2",))
    old_glue = Change(DELETE, f"ns1.{o}", "A", 300, old=("192.0.2.53",))
    gone_delegation = Change(DELETE, f"old.{o}", "NS", 300, old=(f"ns.old.{o}",))
    mx = Change(CREATE, o, "MX", 300, new=(f"10 mx.{o}",))
    mx_address = Change(CREATE, f"mx.{o}", "A", 300, new=("192.0.2.25",))
    planned = [conflict, apex_ns, mx, www, delegation, new_glue, mx_address, old_glue, gone_delegation]
    assert addresses_before_referrers(planned) == [conflict, www, new_glue, mx_address, apex_ns, mx, delegation,
                                                   old_glue, gone_delegation]
    assert addresses_before_referrers([www, new_glue]) == [www, new_glue]


@pytest.mark.parametrize("name", ["www.example.com.", "a.b.example.com.", "*.example.com.", "we\\.ird.example.com.",
                                  "other.org.", "caf\\195\\169.example.com."])
def test_owner_names_encode_as_dnspython_would(name: str) -> None:
    from publisher.publish.providers.rfc2136 import _owner_wire

    owner, zone = dns.name.from_text(name), dns.name.from_text("example.com.")
    expected = (b"".join(bytes((len(label),)) + label for label in owner.relativize(zone).labels) + b"\xc0\x0c"
                if owner.is_subdomain(zone) else owner.to_wire())
    assert _owner_wire(name, "example.com.") == expected


@pytest.mark.parametrize("rtype, text", [
    ("NS", "ns1.example.com."), ("CNAME", "."), ("PTR", "*.a-b_c.example."), ("MX", "10 mx.example.com."),
    ("SRV", "0 5 5060 sip.example.com."), ("TXT", '"a b" "" "c"'), ("TXT", '"' + "x" * 255 + '" "y"'),
    ("TXT", '"caf\\195\\169" "q\\"uote"'), ("SPF", '"v=spf1 -all"'), ("CAA", '0 issue "letsencrypt.org"'),
    ("CAA", '128 iodef "mailto:a@b.c"'), ("HTTPS", '1 . alpn="h2"'), ("NS", "we\\.ird.example.com."),
    ("A", "192.0.2.1"), ("AAAA", "2001:db8::1"),
])
def test_rdata_wire_matches_dnspython(rtype: str, text: str) -> None:
    from publisher.publish.providers.rfc2136 import _rdata_wire

    rdtype = dns.rdatatype.from_text(rtype)
    assert _rdata_wire(rdtype, rtype, text) == dns.rdata.from_text(dns.rdataclass.IN, rdtype, text).to_wire()


def test_serial_arithmetic_wraps_as_rfc_1982() -> None:
    assert serial_after(2**32 - 1) == 0
    assert serial_gt(0, 2**32 - 1)
    assert not serial_gt(5, 5)
    assert serial_gt(10, 5) and not serial_gt(5, 10)
    assert not serial_gt(2**31, 0) and not serial_gt(0, 2**31)  # undefined in RFC 1982: neither is after


def test_part_serial_steps_by_one_and_ends_on_the_plan() -> None:
    """One rule for every provider that splits an apply (RFC 2136 messages, PowerDNS PATCHes)."""
    from publisher.publish.soa import part_serial

    assert [part_serial(10, i, 3, 2026120100) for i in (1, 2, 3)] == [11, 12, 2026120100]
    assert [part_serial(10, i, 3, 11) for i in (1, 2, 3)] == [11, 12, 13]  # target fell behind: keep counting
    assert part_serial(2**32 - 1, 1, 2, 5) == 0 and part_serial(2**32 - 1, 2, 2, 5) == 5


def test_create_provider_reads_the_key_file_or_inline_secret(tmp_path) -> None:
    class Table:  # the shape of publisher.config.ProviderConfig
        def __init__(self, options):
            self.name, self.type, self.zones, self.options = "primary", "rfc2136", ("*",), MappingProxyType(options)

    keyfile = tmp_path / "k.key"
    keyfile.write_text('key "publisher" { algorithm hmac-sha256; secret "' + WRONG_SECRET + '"; };\n')
    from_file = create_provider(Table({"server": "127.0.0.1", "port": 5353, "tsig_keyfile": str(keyfile)}), None)
    assert (from_file.server, from_file.port, from_file.key.name) == ("127.0.0.1", 5353, "publisher.")
    inline = create_provider(Table({"server": "::1", "tsig_name": "x", "tsig_secret": WRONG_SECRET}), None)
    assert inline.key.algorithm == "hmac-sha256" and inline.port == 53
    assert not inline.capabilities.can_create_zones and not inline.capabilities.native_alias
    with pytest.raises(ProviderError, match="missing 'server'") as raised:
        create_provider(Table({"tsig_name": "x", "tsig_secret": WRONG_SECRET}), None)
    assert WRONG_SECRET not in str(raised.value)


def test_unreachable_server_is_a_provider_error_naming_provider_and_zone() -> None:
    provider = RFC2136Provider("nowhere", LOOPBACK, free_port(), timeout=0.5)
    for call in (lambda: provider.serial("example.com."), lambda: provider.read("example.com."),
                 lambda: provider.apply("example.com.", (), soa("example.com.", 2), 1)):
        with pytest.raises(ProviderError) as raised:
            call()
        assert "'nowhere'" in str(raised.value) and "example.com." in str(raised.value)


def test_silent_server_times_out() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.bind((LOOPBACK, 0))
        provider = RFC2136Provider("silent", LOOPBACK, udp.getsockname()[1], timeout=0.3)
        with pytest.raises(ProviderError, match="no answer within 0.3 s"):
            provider.serial("example.com.")


# ------------------------------------------------------------------------------- real servers


@pytest.fixture(params=["named", "knot"])
def server(request):
    return request.getfixturevalue("named_server" if request.param == "named" else "knot_server")


@pytest.mark.slow
def test_wrong_tsig_secret_is_refused_and_never_echoed(server) -> None:
    origin = server.new_zone()
    wrong = RFC2136Provider("primary", server.address, server.port,
                            make_key(server.key.name, "hmac-sha256", WRONG_SECRET), timeout=3)
    for call in (lambda: wrong.read(origin), lambda: wrong.apply(origin, (), soa(origin, 2), 1)):
        with pytest.raises(ProviderError, match="BADSIG: wrong secret") as raised:
            call()
        message = str(raised.value)
        assert "'primary'" in message and origin in message
        assert WRONG_SECRET not in message and server.key.secret not in message
    good = RFC2136Provider("primary", server.address, server.port, server.key)
    assert good.read(origin).serial == 1  # nothing was changed


@pytest.mark.slow
def test_unknown_key_and_unsigned_updates_are_refused(server) -> None:
    origin = server.new_zone()
    unknown = RFC2136Provider("p", server.address, server.port, make_key("stranger", "hmac-sha256", WRONG_SECRET),
                              timeout=3)
    with pytest.raises(ProviderError, match="AXFR failed: the server does not know the TSIG key"):
        unknown.read(origin)
    with pytest.raises(ProviderError, match="refused the transfer"):
        RFC2136Provider("p", server.address, server.port, None, timeout=3).read(origin)
    unsigned = RFC2136Provider("p", server.address, server.port, None, timeout=3)
    with pytest.raises(ProviderError, match="REFUSED|NOTAUTH"):
        unsigned.apply(origin, [Change(CREATE, f"x.{origin}", "A", 300, new=("192.0.2.1",))], soa(origin, 2), 1)


@pytest.mark.slow
def test_absent_zone_and_zone_creation_explain_what_to_configure(server) -> None:
    provider = RFC2136Provider("primary", server.address, server.port, server.key)
    origin = unique_zone("absent.test.")
    assert provider.serial(origin) is None
    assert provider.read(origin) is None
    with pytest.raises(ProviderError, match="named.conf") as raised:
        provider.create_zone(origin, soa(origin, 1), glue(origin)[:1])
    assert "allow-update" in str(raised.value) and "knot.conf" in str(raised.value)
    with pytest.raises(ProviderError, match="does not serve this zone"):
        provider.apply(origin, (), soa(origin, 2), None)


@pytest.mark.slow
def test_messages_are_packed_by_size_not_count(server) -> None:
    """80 TXT records of 2,040 octets: a count-based batch of 1,000 would exceed 64 KiB."""
    origin = server.new_zone()
    provider = RecordingProvider("primary", server.address, server.port, server.key)
    big = " ".join(f'"{chr(97 + i) * 254}"' for i in range(8))
    desired = glue(origin) + [Record(f"big{i}.{origin}", "TXT", 300, big) for i in range(80)]
    changes = diff_records(desired, provider.read(origin).records)
    served = provider.apply(origin, changes, soa(origin, 2), 1)
    assert len(provider.sizes) >= 3
    assert all(size <= 65535 for size in provider.sizes)
    assert max(provider.sizes) > 60000  # filled up to the limit, not cut at a fixed count
    # Serial: one step per message, since the planner asked only for +1.
    assert served == 1 + len(provider.sizes)
    after = provider.read(origin)
    assert after.serial == served
    assert diff_records(desired, after.records) == ()


@pytest.mark.slow
def test_final_serial_is_the_planned_one_when_there_is_room(server) -> None:
    origin = server.new_zone()
    provider = RecordingProvider("primary", server.address, server.port, server.key, max_message_size=2000)
    desired = glue(origin) + [Record(f"h{i}.{origin}", "A", 300, f"192.0.2.{i}") for i in range(200)]
    served = provider.apply(origin, diff_records(desired, provider.read(origin).records),
                            soa(origin, 2026112801), 1)
    assert len(provider.sizes) >= 3 and all(1900 < size <= 2000 for size in provider.sizes[:-1])
    assert served == 2026112801 == provider.serial(origin)


@pytest.mark.slow
def test_soa_prerequisite_rejects_an_update_racing_another_writer(server) -> None:
    """Someone changes the zone after our serial check but before our UPDATE arrives: the
    server itself refuses it (NXRRSET), nothing of ours is applied."""
    origin = server.new_zone()
    provider = RFC2136Provider("primary", server.address, server.port, server.key)
    stale = provider._soa(origin)
    other = RFC2136Provider("someone-else", server.address, server.port, server.key)
    other.apply(origin, [Change(CREATE, f"theirs.{origin}", "A", 300, new=("198.51.100.1",))], soa(origin, 5), 1)

    class Racing(RFC2136Provider):
        def _soa(self, origin):  # what it saw just before the other writer
            return stale

    racing = Racing("primary", server.address, server.port, server.key)
    with pytest.raises(ConcurrentChangeError, match="nothing applied"):
        racing.apply(origin, [Change(CREATE, f"mine.{origin}", "A", 300, new=("192.0.2.1",))], soa(origin, 2), 1)
    after = provider.read(origin)
    assert after.serial == 5
    assert f"mine.{origin}" not in {r.name for r in after.records}
    assert f"theirs.{origin}" in {r.name for r in after.records}


@pytest.mark.slow
def test_new_in_zone_nameserver_and_mx_over_several_messages(server) -> None:
    """BIND refuses an UPDATE that leaves an in-zone NS or MX target without an address, and
    checks every message on its own: they must not arrive in a message before their addresses."""
    origin = server.new_zone()
    provider = RecordingProvider("primary", server.address, server.port, server.key, max_message_size=4000)
    desired = glue(origin) + [Record(origin, "NS", 300, f"ns2.{origin}"), Record(f"ns2.{origin}", "A", 300, "127.0.0.2"),
                              Record(origin, "MX", 300, f"10 mx.{origin}"), Record(f"mx.{origin}", "A", 300, "127.0.0.3")]
    desired += [Record(f"h{i:04}.{origin}", "A", 300, "192.0.2.1") for i in range(400)]
    changes = diff_records(desired, provider.read(origin).records)
    provider.apply(origin, changes, soa(origin, 2), 1)
    assert len(provider.sizes) > 2
    assert diff_records(desired, provider.read(origin).records) == ()


@pytest.mark.slow
def test_wire_parsed_transfer_equals_dnspython(server) -> None:
    """The fast AXFR decoder against dnspython's, on records that need every fallback."""
    import dns.query

    origin = server.new_zone()
    provider = RFC2136Provider("primary", server.address, server.port, server.key)
    o = origin
    desired = glue(o) + [
        Record(f"*.{o}", "A", 300, "192.0.2.1"),
        Record(f"v6.{o}", "AAAA", 300, "2001:db8:0:1:1:1:1:1"),
        Record(f"v6.{o}", "AAAA", 300, "::ffff:192.0.2.1"),
        Record(f"v6.{o}", "AAAA", 300, "2001:db8::"),
        Record(f"we\\.ird.{o}", "TXT", 300, '"dots in a label"'),
        Record(f"txt.{o}", "TXT", 300, '"say \\"hi\\"" "back\\\\slash" "caf\\195\\169" ""'),
        Record(f"txt.{o}", "TXT", 300, '"' + "x" * 255 + '" "y"'),
        Record(f"spf.{o}", "SPF", 300, '"v=spf1 -all"'),
        Record(o, "MX", 300, "10 mail.example.net."),
        Record(o, "MX", 300, f"20 mx.{o}"),
        Record(f"mx.{o}", "A", 300, "192.0.2.25"),
        Record(f"www.{o}", "CNAME", 300, f"{o}"),
        Record(f"old.{o}", "DNAME", 300, "example.net."),
        Record(f"1.{o}", "PTR", 300, f"host.{o}"),
        Record(f"_sip._tcp.{o}", "SRV", 300, f"0 5 5060 sip.{o}"),
        Record(o, "CAA", 300, '0 issue "letsencrypt.org"'),
        Record(f"svc.{o}", "HTTPS", 300, canonical_rdata("HTTPS", '1 . alpn="h2,h3" port=8443', o)),
        Record(f"ssh.{o}", "SSHFP", 300, "1 1 0123456789abcdef0123456789abcdef01234567"),
        Record(f"_443._tcp.{o}", "TLSA", 300, "3 1 1 " + "ab" * 32),
        Record(f"sip.{o}", "NAPTR", 300, f'100 10 "S" "SIP+D2U" "" _sip._tcp.{o}'),
        Record(f"host.{o}", "TYPE65280", 300, "\\# 3 abcdef"),
    ]
    provider.apply(o, diff_records(desired, provider.read(o).records), soa(o, 2), 1)
    fast = provider.read(o)
    reference = []
    for message in dns.query.xfr(server.address, o, port=server.port, keyring=server.key.to_dnspython(),
                                 relativize=False, timeout=10):
        for rrset in message.answer:
            rtype = dns.rdatatype.to_text(rrset.rdtype)
            if rtype != "SOA":
                reference += [Record(rrset.name.to_text().lower(), rtype, rrset.ttl, rdata_to_text(rtype, rd, o))
                              for rd in rrset]
    assert sorted(fast.records) == sorted(reference)
    assert diff_records(desired, fast.records) == ()
    assert fast.soa.data == soa(o, 2).data


@pytest.mark.slow
def test_server_dying_between_messages_is_repaired_by_the_next_run(server) -> None:
    origin = server.new_zone()

    class DiesAfterFirstMessage(RFC2136Provider):
        sent = 0

        def _send(self, *args, **kwargs):
            if self.sent == 1:
                server.stop()
            self.sent += 1
            return super()._send(*args, **kwargs)

    provider = DiesAfterFirstMessage("primary", server.address, server.port, server.key, max_message_size=3000,
                                     timeout=3)
    desired = glue(origin) + [Record(f"h{i:03}.{origin}", "A", 300, "192.0.2.1") for i in range(300)]
    try:
        with pytest.raises(ProviderError, match="update 2/.* next run repairs") as raised:
            provider.apply(origin, diff_records(desired, provider.read(origin).records), soa(origin, 2), 1)
        assert "'primary'" in str(raised.value) and origin in str(raised.value)
    finally:
        server.start()
    healthy = RFC2136Provider("primary", server.address, server.port, server.key)
    half = healthy.read(origin)
    assert half.serial == 2 and 2 < len(half.records) < len(desired)  # the first message stuck
    served = healthy.apply(origin, diff_records(desired, half.records), soa(origin, 3), half.serial)
    after = healthy.read(origin)
    assert after.serial == served and diff_records(desired, after.records) == ()


@pytest.mark.slow
def test_a_longer_new_soa_still_fits_every_message(server) -> None:
    """The new SOA (contact from configuration) can be longer than the zone's current one."""
    origin = server.new_zone()
    provider = RecordingProvider("primary", server.address, server.port, server.key, max_message_size=4000)
    desired = glue(origin) + [Record(f"h{i:03}.{origin}", "A", 300, "192.0.2.1") for i in range(400)]
    long_contact = "a-very-long-hostmaster-mailbox-name." + "x" * 60 + ".example.net."
    new_soa = Record(origin, "SOA", 300, f"ns1.{origin} {long_contact} 2 3600 600 604800 300")
    served = provider.apply(origin, diff_records(desired, provider.read(origin).records), new_soa, 1)
    assert len(provider.sizes) >= 3 and max(provider.sizes) <= 4000
    after = provider.read(origin)
    assert after.serial == served and long_contact in after.soa.data
    assert diff_records(desired, after.records) == ()


def test_create_provider_from_the_documented_configuration(tmp_path, monkeypatch) -> None:
    from publisher.config import load_config_text

    (tmp_path / "publisher.key").write_text('key "publisher" { algorithm hmac-sha512; secret "' + WRONG_SECRET + '"; };')
    monkeypatch.setenv("TEST_TSIG_SECRET", WRONG_SECRET)
    config = load_config_text("""
[source]
path = "zones"
[[provider]]
name = "primary"
type = "rfc2136"
server = "127.0.0.1"
port = 5353
tsig_keyfile = "publisher.key"
zones = ["*"]
[[provider]]
name = "inline"
type = "rfc2136"
server = "127.0.0.2"
tsig_name = "other"
tsig_algorithm = "hmac-sha256"
tsig_secret = "env:TEST_TSIG_SECRET"
""", base=tmp_path)
    primary = create_provider(config.provider("primary"), config)
    assert (primary.server, primary.port, primary.key.name, primary.key.algorithm) == \
        ("127.0.0.1", 5353, "publisher.", "hmac-sha512")
    inline = create_provider(config.provider("inline"), config)
    assert inline.key.secret == WRONG_SECRET and inline.port == 53
    assert WRONG_SECRET not in repr(inline) and WRONG_SECRET not in repr(inline.key)


def test_transfer_parser_decodes_a_signed_zone_with_compressed_names() -> None:
    """A signed zone's AXFR (built with dnspython, compressed).  RRSIG/NSEC are read like any
    record: the planner leaves what a signing server maintains alone (publisher.publish.plan)."""
    import dns.message
    import dns.rrset

    from publisher.publish.providers.axfr import _Parser

    o = "example.com."
    query = dns.message.make_query(o, "AXFR")
    response = dns.message.make_response(query)
    soa_text = f"ns1.{o} hostmaster.{o} 7 3600 600 604800 300"
    response.answer = [
        dns.rrset.from_text(o, 300, "IN", "SOA", soa_text),
        dns.rrset.from_text(f"WWW.{o}", 300, "IN", "A", "192.0.2.1"),
        dns.rrset.from_text(f"www.{o}", 300, "IN", "RRSIG",
                            f"A 13 3 300 20300101000000 20200101000000 12345 {o} AAAA"),
        dns.rrset.from_text(f"www.{o}", 300, "IN", "NSEC", f"{o} A RRSIG NSEC"),
        dns.rrset.from_text(f"mail.{o}", 300, "IN", "CNAME", f"www.{o}"),
        dns.rrset.from_text(o, 300, "IN", "MX", f"10 mail.{o}"),
        dns.rrset.from_text(f"t.{o}", 300, "IN", "TXT", '"plain" "caf\\195\\169"'),
        dns.rrset.from_text(o, 300, "IN", "SOA", soa_text),
    ]
    parser = _Parser(o, rdata_to_text)
    assert parser.message(response.to_wire(), query.id, True) is None  # unsigned
    assert parser.soas == 2 and parser.soa.data == soa_text
    assert [r.type for r in parser.records] == ["A", "RRSIG", "NSEC", "CNAME", "MX", "TXT"]
    assert parser.records[2] == Record(f"www.{o}", "NSEC", 300, f"{o} A RRSIG NSEC")
    assert [r for r in parser.records if r.type not in ("RRSIG", "NSEC")] == [
        Record(f"www.{o}", "A", 300, "192.0.2.1"), Record(f"mail.{o}", "CNAME", 300, f"www.{o}"),
                              Record(o, "MX", 300, f"10 mail.{o}"),
                              Record(f"t.{o}", "TXT", 300, '"plain" "caf\\195\\169"')]
