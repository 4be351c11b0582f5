"""Canonical BIND text: stable order, SOA first, and a file that dnspython loads back identically."""

import dns.zone

from publisher.model import Record, Zone
from publisher.zone.render import dns_order_key, zone_to_text

SOA = Record("example.com.", "SOA", 3600, "ns1.example.net. hostmaster.example.com. 7 3600 600 1209600 300")


def test_order_is_stable_and_soa_first():
    records = (
        Record("www.example.com.", "A", 300, "192.0.2.1"),
        Record("example.com.", "NS", 3600, "ns1.example.net."),
        Record("a.www.example.com.", "A", 300, "192.0.2.3"),
        Record("b.example.com.", "TXT", 300, '"hello"'),
        Record("example.com.", "A", 300, "192.0.2.2"),
    )
    forward = zone_to_text(Zone("example.com.", records, "example.com.lua"), SOA)
    backward = zone_to_text(Zone("example.com.", tuple(reversed(records)), "example.com.lua"), SOA)
    assert forward == backward
    lines = [line for line in forward.splitlines() if not line.startswith((";", "$"))]
    assert lines[0].startswith("example.com. 3600 IN SOA ")
    owners = [line.split()[0] for line in lines]
    assert owners == ["example.com.", "example.com.", "example.com.", "b.example.com.", "www.example.com.",
                      "a.www.example.com."]


def test_rendered_text_loads_back_in_dnspython():
    records = (
        Record("example.com.", "NS", 3600, "ns1.example.net."),
        Record("example.com.", "MX", 3600, "10 mail.example.com."),
        Record("mail.example.com.", "A", 3600, "192.0.2.25"),
        Record("txt.example.com.", "TXT", 60, '"' + "x" * 255 + '" "tail"'),
        Record("alias.example.com.", "ALIAS", 60, "target.example.net."),
    )
    text = zone_to_text(Zone("example.com.", records), SOA)
    zone = dns.zone.from_text(text, origin="example.com.", relativize=False)
    assert zone.get_rdataset("mail.example.com.", "A")[0].to_text() == "192.0.2.25"
    assert zone.get_rdataset("txt.example.com.", "TXT")[0].strings[0] == b"x" * 255
    assert "; ALIAS alias.example.com." in text  # kept visible, but not as a record named cannot load


def test_dns_order_key_puts_parents_first():
    names = ["b.a.example.", "example.", "a.example.", "z.example."]
    assert sorted(names, key=dns_order_key) == ["example.", "a.example.", "b.a.example.", "z.example."]
