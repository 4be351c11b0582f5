"""Canonical BIND text: DNSSEC canonical order as named dumps it, SOA first, and a file that
dnspython and named-checkzone load back with the same records."""

import subprocess
from pathlib import Path

import dns.name
import dns.rdata
import dns.rdataclass
import dns.zone

from publisher.model import Record, Zone
from publisher.zone.bind_zone import read_bind_zone
from publisher.zone.render import dns_order_key, records_to_text, zone_to_text

DATA = Path(__file__).parent / "data" / "render"

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


def test_rrsets_are_ordered_by_wire_form_not_by_text():
    """Issue 7: MX data sorted as text gave 10, 10, 20, 5; PTR targets compare as wire names."""
    records = [Record("example.com.", "MX", 300, f"{p} mx{p}.example.com.") for p in (10, 20, 5)]
    records += [Record("1.2.0.192.in-addr.arpa.", "PTR", 300, t) for t in ("zz.example.", "b.example.", "aa.example.")]
    records += [Record("example.com.", "TXT", 300, t) for t in ('"abc"', '"b"', '"ab" "c"')]
    records += [Record("example.com.", "A", 300, a) for a in ("192.0.2.10", "192.0.2.9", "10.0.0.1")]
    data = [line.split(" ", 4)[4] for line in records_to_text(records).splitlines()]
    assert data == ["b.example.", "aa.example.", "zz.example.",  # 1.2.0.192.in-addr.arpa. first
                    "10.0.0.1", "192.0.2.9", "192.0.2.10",
                    "5 mx5.example.com.", "10 mx10.example.com.", "20 mx20.example.com.",
                    '"b"', '"ab" "c"', '"abc"']


def _named_dump(path: Path) -> list[tuple[str, str, int, bytes]]:
    """(owner, type, TTL, canonical wire rdata) in the order ``named-checkzone -D`` writes them."""
    dump = subprocess.run(["named-checkzone", "-D", "-o", "-", "example.com", str(path)],
                          capture_output=True, text=True, check=True).stdout
    return [_parsed(line) for line in dump.splitlines() if line.strip()]


def _parsed(line: str) -> tuple[str, str, int, bytes]:
    owner, ttl, _, rtype, data = line.split(None, 4)
    rdata = dns.rdata.from_text(dns.rdataclass.IN, rtype, data, origin=dns.name.root)
    return (dns.name.from_text(owner).to_text().lower(), rtype, int(ttl), rdata.to_digestable(dns.name.root))


def test_order_and_records_agree_with_named_checkzone_dump(tmp_path):
    """named dumps a zone in DNSSEC order: our text lists the same records in the same order, and
    named reads our text back to the same dump."""
    source = DATA / "canonical-order.zone"
    result = read_bind_zone(source, "example.com.", repo=None, display_file=source.name, default_ttl=None)
    assert result.zone is not None, result.findings
    ours = records_to_text(result.zone.records)
    expected = _named_dump(source)
    assert [_parsed(line) for line in ours.splitlines()] == expected
    rendered = tmp_path / "example.com.zone"
    rendered.write_text(zone_to_text(result.zone))
    assert _named_dump(rendered) == expected


def test_random_zone_order_agrees_with_named_checkzone_dump(tmp_path):
    """A seeded random zone (labels that differ by length, case, digits, '-' and '_'; RRsets of
    several A, AAAA, MX, SRV, TXT, PTR, CAA records): named's dump order is ours."""
    import random

    rng = random.Random(4034)
    alphabet = "ab-_0z9"

    def label() -> str:
        return "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 4))).strip("-") or "x"

    names = ["example.com."] + [".".join(label() for _ in range(rng.randint(1, 3))) + ".example.com."
                                for _ in range(60)]
    makers = {
        "A": lambda: f"{rng.randint(0, 255)}.{rng.randint(0, 255)}.0.{rng.randint(0, 255)}",
        "AAAA": lambda: f"2001:db8::{rng.randint(0, 0xffff):x}",
        "MX": lambda: f"{rng.choice([0, 5, 10, 20, 100, 256])} {rng.choice(names)}",
        "SRV": lambda: f"{rng.randint(0, 20)} {rng.randint(0, 300)} {rng.randint(1, 9000)} {rng.choice(names)}",
        "TXT": lambda: " ".join(f'"{label() * rng.randint(1, 3)}"' for _ in range(rng.randint(1, 3))),
        "PTR": lambda: rng.choice(names),
        "CAA": lambda: f'{rng.choice([0, 128])} {rng.choice(["issue", "iodef", "issuewild"])} "{label()}"',
    }
    records = {Record("example.com.", "SOA", 300, "ns1.example.net. h.example.net. 1 3600 600 1209600 300"),
               Record("example.com.", "NS", 300, "ns1.example.net.")}
    for name in names[1:]:
        rtype = rng.choice(sorted(makers))
        for _ in range(rng.randint(1, 5)):
            records.add(Record(name, rtype, 300, makers[rtype]()))
    shuffled = list(records)
    rng.shuffle(shuffled)
    rendered = tmp_path / "random.zone"
    text = records_to_text(shuffled)
    rendered.write_text(text)
    assert [_parsed(line) for line in text.splitlines()] == _named_dump(rendered)
