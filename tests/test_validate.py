"""Unit tests of publisher.zone.validate on hand-built zones (model conventions: absolute lower-case
names, canonical rdata).  Each test builds the smallest zone that shows one rule."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings, strategies as st

import publisher.zone.validate as validate_module
from publisher.model import ERROR, WARNING, Record, ServiceRecord, Zone
from publisher.zone.validate import validate_zone

ORIGIN = "example.com."
SOA = "ns1.example.com. hostmaster.example.com. 1 3600 600 1209600 300"
BASE = (
    ("@", "SOA", SOA),
    ("@", "NS", "ns1.example.com."),
    ("@", "NS", "ns2.example.net."),
    ("ns1", "A", "192.0.2.1"),
)


def absolute(name: str, origin: str = ORIGIN) -> str:
    if name == "@":
        return origin
    return name if name.endswith(".") else f"{name}.{origin}"


def make_zone(*rows, base=BASE, origin: str = ORIGIN) -> Zone:
    """Records from (name, type, data[, ttl]) rows, relative names under ``origin``; line = row
    number in the file ``zone.db`` so tests can check positions."""
    records = []
    for line, row in enumerate(base + rows, start=1):
        name, rtype, data, *ttl = row
        records.append(Record(absolute(name, origin), rtype, ttl[0] if ttl else 3600, data, "zone.db", line))
    return Zone(origin, tuple(records), "zone.db")


def findings(*rows, standalone: bool = True, **kwargs):
    return validate_zone(make_zone(*rows, **{k: v for k, v in kwargs.items() if k in ("base", "origin")}),
                         standalone=standalone,
                         **{k: v for k, v in kwargs.items() if k in ("max_ttl", "server")})


def verdicts(code: str, *rows, **kwargs) -> tuple[str, str]:
    """(BIND severity, Knot severity) of the first ``code`` finding.  Every mark asserted with it
    is the checkers' own: tests/test_server_verdicts.py runs named-checkzone and kzonecheck on a
    zone of tests/data/validate/verdicts/ for each (named after the code)."""
    return tuple(only(code, *rows, server=server, **kwargs)[0].severity for server in ("bind", "knot"))


def codes(*rows, **kwargs) -> dict[str, str]:
    """code -> severity of every finding."""
    return {f.code: f.severity for f in findings(*rows, **kwargs)}


def only(code: str, *rows, **kwargs):
    found = [f for f in findings(*rows, **kwargs) if f.code == code]
    assert found, f"no {code} in {[f.code for f in findings(*rows, **kwargs)]}"
    return found


# -- a clean zone and the two modes ---------------------------------------------------------------

def test_clean_zone_has_no_findings():
    assert findings(
        ("www", "A", "192.0.2.10"), ("www", "AAAA", "2001:db8::10"), ("@", "MX", "10 mail.example.com."),
        ("mail", "A", "192.0.2.20"), ("@", "TXT", '"v=spf1 -all"'), ("docs", "CNAME", "example.github.io."),
        ("_sip._tcp", "SRV", "0 5 5060 sip.example.com."), ("sip", "AAAA", "2001:db8::5"),
        ("_dmarc", "TXT", '"v=DMARC1; p=none"'), ("@", "CAA", '0 issue "letsencrypt.org"'),
    ) == ()


def test_standalone_requires_soa_and_apex_ns():
    found = codes(base=(("www", "A", "192.0.2.1"),))
    assert found == {"soa-missing": ERROR, "apex-ns-missing": ERROR}


def test_repository_mode_accepts_missing_soa_and_ns():
    assert findings(("www", "A", "192.0.2.1"), base=(), standalone=False) == ()


def test_repository_mode_still_checks_soa_and_ns_when_present():
    found = codes(("@", "SOA", "ns1.example.com. h.example.com. 1 0 600 1209600 300"), ("@", "NS", "ns1.example.com."),
                  ("ns1", "A", "192.0.2.1"), base=(), standalone=False)
    assert found == {"soa-timer-zero": WARNING, "apex-ns-single": WARNING}


# -- B: SOA and NS --------------------------------------------------------------------------------

def test_second_soa_and_soa_below_apex():
    # BIND refuses both (multiple RRs of singleton type; not at top of zone); Knot loads both.
    assert codes(("sub", "SOA", SOA)) == {"soa-not-at-apex": ERROR}
    assert verdicts("soa-not-at-apex", ("sub", "SOA", SOA)) == (ERROR, WARNING)
    assert verdicts("soa-multiple", ("@", "SOA", SOA.replace(" 1 ", " 2 "))) == (ERROR, WARNING)


def test_the_same_soa_twice_is_a_duplicate_not_two_soas():
    assert codes(("@", "SOA", SOA)) == {"duplicate-record": WARNING}  # both servers load it


@pytest.mark.parametrize("timers, code, severity", [
    ("1 0 600 1209600 300", "soa-timer-zero", WARNING),  # BIND and Knot load zero timers
    ("1 3600 600 0 300", "soa-timer-zero", WARNING),
    ("1 3600 600 2147483648 300", "soa-timer-zero", WARNING),
    ("0 0 0 0 0", "soa-timers-placeholder", WARNING),
    ("1 60 600 1209600 300", "soa-timers-unusual", WARNING),  # refresh too short, retry above it
    ("1 3600 600 86400 300", "soa-timers-unusual", WARNING),  # expire one day
    ("1 3600 600 1209600 604800", "soa-timers-unusual", WARNING),  # negative TTL a week
])
def test_soa_timers(timers, code, severity):
    base = (("@", "SOA", f"ns1.example.com. hostmaster.example.com. {timers}"),) + BASE[1:]
    found = codes(base=base)
    assert found == {code: severity}


def test_sane_soa_timers_pass():
    base = (("@", "SOA", "ns1.example.com. hostmaster.example.com. 2024010101 7200 3600 1209600 3600"),) + BASE[1:]
    assert findings(base=base) == ()


def test_single_apex_ns_is_a_warning():
    found = only("apex-ns-single", base=BASE[:2] + BASE[3:])
    assert found[0].severity == WARNING and found[0].line == 2


def test_mixed_ttls_and_duplicates_are_warnings():
    found = findings(("www", "A", "192.0.2.1", 300), ("www", "A", "192.0.2.2", 600), ("www", "A", "192.0.2.1", 300))
    by_code = {f.code: f for f in found}
    assert set(by_code) == {"rrset-ttl-mismatch", "duplicate-record"}
    assert by_code["duplicate-record"].line == 7
    assert "300" in by_code["rrset-ttl-mismatch"].message and "lowest" in by_code["rrset-ttl-mismatch"].message


# -- A: names and TTLs ----------------------------------------------------------------------------

def test_owner_outside_zone_points_at_the_record():
    found = only("owner-outside-zone", ("www.example.org.", "A", "192.0.2.1"))
    assert (found[0].file, found[0].line) == ("zone.db", 5) and "$ORIGIN" in found[0].message
    # A file: BIND and Knot ignore out-of-zone data.  Published: the provider refuses it (NOTZONE).
    assert verdicts("owner-outside-zone", ("www.example.org.", "A", "192.0.2.1")) == (WARNING, WARNING)
    published = only("owner-outside-zone", ("www.example.org.", "A", "192.0.2.1"), standalone=False)
    assert published[0].severity == ERROR


def test_lookalike_suffix_is_outside():
    assert "owner-outside-zone" in codes(("badexample.com.", "A", "192.0.2.1"))


def test_records_outside_the_zone_are_reported_once():
    found = findings(("sub.example.org.", "NS", "ns.example.net."), ("sub.example.org.", "TXT", '"x"'))
    assert [(f.code, f.line) for f in found] == [("owner-outside-zone", 5)]


def test_names_in_rdata_too_long():
    long_label = "a" * 64
    assert codes(("x", "CNAME", f"{long_label}.example.net."))["label-too-long"] == ERROR
    long_name = ".".join(["abcdefghi"] * 26) + "."
    assert codes(("x", "MX", f"10 {long_name}"))["name-too-long"] == ERROR
    assert codes(("x", "NS", "a..example.net."))["empty-label"] == ERROR


def test_owner_label_too_long():
    assert codes(("a" * 64, "TXT", '"x"'))["label-too-long"] == ERROR


def test_escaped_label_lengths_count_octets():
    # 21 escapes of 4 characters are 21 octets: fine although the text is 84 characters.
    assert "label-too-long" not in codes(("x", "CNAME", "\\065" * 21 + ".example.net."))


@pytest.mark.parametrize("rows", [
    (("foo_bar", "A", "192.0.2.1"),),
    (("-lead", "AAAA", "2001:db8::1"),),
    (("@", "MX", "10 mail_server.example.net."),),
    (("_sip._tcp", "SRV", "0 0 5060 sip_1.example.net."),),
    (("d", "NS", "ns_1.example.net."),),
])
def test_hostname_syntax(rows):
    # named refuses these as a primary (check-names primary fail; named-checkzone only warns);
    # Knot has no check-names.
    assert verdicts("hostname-syntax", *rows) == (ERROR, WARNING)


def test_protocol_labels_are_fine_for_owners():
    assert "hostname-syntax" not in codes(("a._spf", "A", "192.0.2.2"), ("gc._msdcs", "A", "192.0.2.3"),
                                          ("gc._msdcs", "AAAA", "2001:db8::3"), ("*.wild", "A", "192.0.2.4"),
                                          ("*.wild", "MX", "10 mx.example.net."), ("_dmarc", "TXT", '"v=DMARC1"'),
                                          ("_sip._tcp", "SRV", "0 0 5060 sip.example.net."),
                                          ("_dns", "SVCB", "0 alias_mode.example.net."))


@pytest.mark.parametrize("owner, rtype, data", [
    ("a._spf", "AAAA", "2001:db8::2"),  # BIND exempts _spf names for A only
    ("gc._msdcs", "MX", "10 mx.example.net."),  # and gc._msdcs for A and AAAA
    ("_sip", "A", "192.0.2.5"),
    ("foo.*", "A", "192.0.2.6"),
])
def test_bind_check_names_exceptions_are_narrow(owner, rtype, data):
    assert verdicts("hostname-syntax", (owner, rtype, data)) == (ERROR, WARNING)


def test_reverse_zone_ptr_targets_and_dns_sd():
    origin = "2.0.192.in-addr.arpa."
    base = (("@", "SOA", "ns1.example.com. h.example.com. 1 3600 600 1209600 300"),
            ("@", "NS", "ns1.example.com."), ("@", "NS", "ns2.example.com."))
    found = findings(("1", "PTR", "bad_host.example.com."), ("b._dns-sd._udp", "PTR", "any_name.example.com."),
                     base=base, origin=origin)
    assert [(f.code, f.line) for f in found] == [("hostname-syntax", 4)]


def test_ttl_above_max_is_a_warning_with_configurable_max():
    found = only("ttl-above-max", ("www", "A", "192.0.2.1", 700000))
    assert found[0].severity == WARNING and found[0].line == 5
    assert "ttl-above-max" in codes(("www", "A", "192.0.2.1", 3601), max_ttl=3600)
    assert "ttl-above-max" not in codes(("www", "A", "192.0.2.1", 3600), max_ttl=3600)


def test_ttl_above_max_is_summarised_after_a_hundred():
    rows = tuple((f"h{i}", "A", "192.0.2.1", 3600) for i in range(150))
    found = only("ttl-above-max", *rows, max_ttl=300, base=())
    assert len(found) == 101 and "50 more records" in found[-1].message


# -- C: CNAME and aliases -------------------------------------------------------------------------

def test_cname_and_other_data():
    found = only("cname-and-other-data", ("www", "CNAME", "web.example.net."), ("www", "TXT", '"x"'))
    assert found[0].severity == ERROR and found[0].line == 5 and "TXT" in found[0].message


def test_cname_beside_dnssec_types_is_fine():
    assert "cname-and-other-data" not in codes(
        ("www", "CNAME", "web.example.net."),
        ("www", "RRSIG", "CNAME 13 3 3600 20300101000000 20200101000000 1 example.com. AAAA"),
        ("www", "NSEC", "z.example.com. CNAME RRSIG NSEC"))


def test_two_cnames():
    assert codes(("www", "CNAME", "a.example.net."), ("www", "CNAME", "b.example.net."))["cname-multiple"] == ERROR


def test_cname_at_apex_suggests_alias():
    found = only("cname-at-apex", ("@", "CNAME", "web.example.net."), base=())
    assert found[0].severity == ERROR and "alias(" in found[0].message


def test_cname_loops_and_chains():
    found = findings(("a", "CNAME", "b.example.com."), ("b", "CNAME", "a.example.com."), ("c", "CNAME", "c.example.com."))
    loops = sorted(f.line for f in found if f.code == "cname-loop")
    assert loops == [5, 6, 7]
    chain = findings(("a", "CNAME", "b.example.com."), ("b", "CNAME", "www.example.net."))
    assert [(f.code, f.severity, f.line) for f in chain] == [("cname-chain", WARNING, 5)]


def test_cname_to_missing_in_zone_name_is_a_warning():
    found = only("cname-target-missing", ("docs", "CNAME", "nothing.example.com."))
    assert found[0].severity == WARNING
    assert "cname-target-missing" not in codes(("docs", "CNAME", "x.other.example.com."),
                                               ("*.other", "A", "192.0.2.9"))


@pytest.mark.parametrize("kind, row", [
    ("ns", ("sub", "NS", "alias.example.com.")),
    ("mx", ("@", "MX", "10 alias.example.com.")),
    ("srv", ("_xmpp._tcp", "SRV", "5 0 5222 alias.example.com.")),
])
def test_targets_must_not_be_cnames(kind, row):
    found = only(f"{kind}-target-is-cname", ("alias", "CNAME", "real.example.net."), row)
    assert "real.example.net." in found[0].message
    # BIND warns "is a CNAME (illegal)" and loads; Knot refuses a delegation (missing glue record).
    expected = (WARNING, ERROR) if kind == "ns" else (WARNING, WARNING)
    assert verdicts(f"{kind}-target-is-cname", ("alias", "CNAME", "real.example.net."), row) == expected


def test_apex_ns_target_that_is_a_cname_is_refused_by_both():
    assert verdicts("ns-target-is-cname", ("@", "NS", "alias.example.com."),
                    ("alias", "CNAME", "ns1.example.com.")) == (ERROR, ERROR)


@pytest.mark.parametrize("kind, row", [
    ("ns", ("@", "NS", "ns3.example.com.")),
    ("mx", ("@", "MX", "10 mail.example.com.")),
    ("srv", ("_xmpp._tcp", "SRV", "5 0 5222 xmpp.example.com.")),
])
def test_in_zone_targets_need_addresses(kind, row):
    found = only(f"{kind}-target-no-address", row, ("mail", "TXT", '"no address"'))
    assert found[0].line == 5
    # BIND refuses an apex NS without address; MX/SRV: "has no address records", and it loads.
    expected = (ERROR, ERROR) if kind == "ns" else (WARNING, WARNING)
    assert verdicts(f"{kind}-target-no-address", row, ("mail", "TXT", '"no address"')) == expected


def test_delegation_ns_target_without_address():
    assert verdicts("ns-target-no-address", ("sub", "NS", "ns3.example.com.")) == (WARNING, ERROR)


def test_targets_out_of_zone_wildcard_alias_and_no_service():
    assert findings(("@", "MX", "10 mx.example.net."), ("@", "MX", "20 mx.wild.example.com."),
                    ("*.wild", "A", "192.0.2.7"), ("@", "MX", "30 alias.example.com."),
                    ("alias", "ALIAS", "lb.example.net."), ("_imap._tcp", "SRV", "0 0 0 ."),
                    ("www.example.com.", "A", "192.0.2.8")) == ()


def test_redirect_names_count_as_addresses():
    zone = make_zone(("@", "MX", "10 www.example.com."), ("old", "CNAME", "www.example.com."))
    assert {f.code for f in validate_zone(zone, standalone=True)} == {"mx-target-no-address", "cname-target-missing"}
    service = ServiceRecord("redirect", "www.example.com.", "https://example.net/", 0, 3600, "zone.lua", 9)
    assert validate_zone(Zone(ORIGIN, zone.records, "zone.db", services=(service,)), standalone=True) == ()


def test_targets_that_look_like_ip_addresses():
    found = findings(("@", "MX", "10 192.0.2.25.example.com."), ("192.0.2.25", "A", "192.0.2.25"),
                     ("sub", "NS", "2001:db8::53.example.com."), ("2001:db8::53", "AAAA", "2001:db8::53"))
    assert {(f.code, f.severity) for f in found} >= {("mx-target-looks-like-ip", WARNING),
                                                     ("ns-target-looks-like-ip", WARNING)}
    # ':' is no host-name character: BIND's check-names refuses the NS target and the AAAA owner.
    assert {f.code for f in found if f.is_error} == {"hostname-syntax"}


def test_null_mx():
    assert verdicts("null-mx-not-alone", ("@", "MX", "0 ."), ("@", "MX", "10 mx.example.net.")) == (WARNING, WARNING)
    assert findings(("@", "MX", "0 .")) == ()
    assert codes(("@", "MX", "10 ."))["null-mx-preference"] == WARNING


def test_alias_rules():
    assert findings(("@", "ALIAS", "lb.example.net.")) == ()
    assert codes(("@", "ALIAS", "lb.example.net."), ("@", "A", "192.0.2.1"))["alias-and-address"] == ERROR
    assert codes(("@", "ALIAS", "a.example.net."), ("@", "ALIAS", "b.example.net."))["alias-multiple"] == ERROR
    assert codes(("www", "ALIAS", "a.example.net."), ("www", "CNAME", "b.example.net."))["cname-and-other-data"] == ERROR


# -- D: delegations and glue ----------------------------------------------------------------------

def test_delegation_with_glue_is_clean():
    assert findings(("sub", "NS", "ns.sub.example.com."), ("sub", "NS", "ns.example.net."),
                    ("ns.sub", "A", "192.0.2.53"), ("ns.sub", "AAAA", "2001:db8::53"),
                    ("sub", "DS", "12345 13 2 " + "ab" * 32)) == ()


def test_data_below_and_at_delegation():
    found = findings(("sub", "NS", "ns.example.net."), ("www.sub", "A", "192.0.2.1"), ("sub", "TXT", '"x"'))
    assert sorted((f.code, f.line) for f in found) == [("data-below-delegation", 6), ("data-below-delegation", 7)]
    assert all(f.severity == WARNING for f in found)  # occluded: BIND and Knot load it


def test_missing_glue():
    found = only("missing-glue", ("sub", "NS", "ns.sub.example.com."))
    assert "sub.example.com." in found[0].message
    # BIND: "has no REQUIRED GLUE", loads; Knot: "missing glue record", refuses.
    assert verdicts("missing-glue", ("sub", "NS", "ns.sub.example.com.")) == (WARNING, ERROR)


def test_apex_ns_inside_a_delegation_needs_glue():
    found = only("missing-glue", ("@", "NS", "ns.sub.example.com."), ("sub", "NS", "ns.example.net."))
    assert found[0].line == 5
    assert verdicts("missing-glue", ("@", "NS", "ns.sub.example.com."),
                    ("sub", "NS", "ns.example.net.")) == (WARNING, WARNING)  # both load it


def test_nested_delegation_is_occluded_not_an_error():
    found = findings(("sub", "NS", "ns.example.net."), ("deep.sub", "NS", "x.sub.example.com."))
    assert [(f.code, f.severity) for f in found] == [("occluded-delegation", WARNING)]


def test_ds_rules():
    assert verdicts("ds-at-apex", ("@", "DS", "12345 13 2 " + "ab" * 32)) == (ERROR, WARNING)
    # BIND 9.18 and Knot load it; later BIND refuses it (validate.NEWER_BIND).
    assert verdicts("ds-not-at-delegation", ("foo", "DS", "12345 13 2 " + "ab" * 32)) == (ERROR, WARNING)


# -- E: DNAME and wildcards -----------------------------------------------------------------------

def test_dname_rules():
    assert codes(("old", "DNAME", "a.example.net."), ("old", "DNAME", "b.example.net."))["dname-not-singleton"] == ERROR
    assert verdicts("data-below-dname", ("old", "DNAME", "a.example.net."), ("www.old", "A", "192.0.2.1")) == (WARNING, ERROR)
    assert codes(("old", "DNAME", "a.example.net."), ("old", "CNAME", "b.example.net."))["cname-and-other-data"] == ERROR
    assert verdicts("ns-beside-dname", ("old", "DNAME", "a.example.net."), ("old", "NS", "ns.example.net.")) == (WARNING, ERROR)


def test_dname_at_apex_beside_ns_is_fine():
    assert findings(("@", "DNAME", "example.net."), base=(BASE[0], ("@", "NS", "ns1.example.net."),
                                                          ("@", "NS", "ns2.example.net."))) == ()


def test_ns_target_below_dname():
    found = only("ns-target-below-dname", ("old", "DNAME", "example.net."), ("sub", "NS", "ns.old.example.com."))
    assert found[0].line == 6
    assert verdicts("ns-target-below-dname", ("old", "DNAME", "example.net."),
                    ("sub", "NS", "ns.old.example.com.")) == (WARNING, ERROR)
    assert verdicts("ns-target-below-dname", ("old", "DNAME", "example.net."),
                    ("@", "NS", "ns.old.example.com.")) == (ERROR, ERROR)


def test_wildcards():
    assert codes(("foo.*", "A", "192.0.2.1"))["wildcard-not-leftmost"] == WARNING
    assert codes(("*foo", "TXT", '"x"'))["wildcard-not-leftmost"] == WARNING
    # BIND refuses NS at a wildcard, Knot loads it; both load DNAME or DS there.
    assert verdicts("wildcard-forbidden-type", ("*.w", "NS", "ns.example.net.")) == (ERROR, WARNING)
    for rtype, data in (("DNAME", "example.net."), ("DS", "1 13 2 " + "ab" * 32)):
        assert verdicts("wildcard-forbidden-type", ("*.w", rtype, data)) == (WARNING, WARNING)
    assert findings(("*", "CNAME", "www.example.net."), ("*.w", "MX", "10 mx.example.net.")) == ()


# -- checks from BIND's corpus --------------------------------------------------------------------

@pytest.mark.parametrize("owner, data, code", [
    ("_dns", "1 dns.example.net. dohpath=\"/q{?dns}\"", "svcb-dns-missing-alpn"),
    ("_dns", "1 dns.example.net. alpn=\"h2\"", "svcb-dns-missing-dohpath"),
    ("_853._dns", "1 dns.example.net. alpn=\"h1\\\\,h3\"", "svcb-dns-missing-dohpath"),
])
def test_svcb_dns_rules(owner, data, code):
    assert verdicts(code, (owner, "SVCB", data)) == (ERROR, WARNING)  # later BIND refuses; 9.18 and Knot load


def test_svcb_dns_valid_forms():
    assert findings(("_dns", "SVCB", "1 dns.example.net. alpn=\"dot\""),
                    ("_dns", "SVCB", "2 dns.example.net. alpn=\"h2\" dohpath=\"/q{?dns}\""),
                    ("_dns", "SVCB", "0 other.example.net.")) == ()


DNSKEY = ("257 3 10 AwEAAbqjg7xdvnU2Q/gtLw5LOfr5cDeTRjYuEbkzGrUiVSOSoxcTxuaoWS/AFPQHuD8OSLiE/CeZ087JowREXl058rRfae8"
          "KMrveY17V0wmKs9N1F1wf/hRDpXiThlRHWlskp8eSEEIqYrrHgWTesy/xDGIEOFM1gwRo0w8jKdRRJeL2hseTMa+m3rTzrYudUsI"
          "0BHLW8PiDUCbG5xgdee8/5YR4847iAAqHIiPJ1Z/IT53OIjMmtv5BUykZ8RYjlJxxX+C+dpRKiK73SQaR3hCBXAYOL9WsDp2/fpm"
          "EZpewavkMkdC+j2CX+z27MCS3ASO0AeKK0lcNXwNDkgreE+Kr7gc=")
CDS_GOOD = "14364 10 2 fd03b2312c8f0fe72c1751efa1007d743c94ec91594ff0047c23c37ce119ba0c"


def test_cds_and_cdnskey_must_match_a_dnskey():
    origin = "example."
    base = (("@", "SOA", SOA), ("@", "NS", "ns1.example.net."), ("@", "NS", "ns2.example.net."),
            ("@", "DNSKEY", DNSKEY))
    assert findings(("@", "CDS", CDS_GOOD), ("@", "CDNSKEY", DNSKEY), base=base, origin=origin) == ()
    assert findings(("@", "CDS", "0 0 0 00"), ("@", "CDNSKEY", "0 3 0 AA=="), base=base, origin=origin) == ()
    # BIND refuses a CDS/CDNSKEY only when no DNSKEY has its algorithm; Knot loads both.
    bad_cds = CDS_GOOD[:-1] + "b"
    assert verdicts("cds-mismatch", ("@", "CDS", bad_cds), base=base, origin=origin) == (WARNING, WARNING)
    other_algorithm = CDS_GOOD.replace(" 10 2 ", " 8 2 ")
    assert verdicts("cds-mismatch", ("@", "CDS", other_algorithm), base=base, origin=origin) == (ERROR, WARNING)
    other_key = DNSKEY.replace("257 3 10", "257 3 8")
    assert verdicts("cdnskey-mismatch", ("@", "CDNSKEY", other_key), base=base, origin=origin) == (ERROR, WARNING)
    same_algorithm = DNSKEY.replace("AwEAAb", "AwEAAc")
    assert verdicts("cdnskey-mismatch", ("@", "CDNSKEY", same_algorithm), base=base, origin=origin) == (WARNING, WARNING)


def test_deprecated_dnssec_algorithms_and_digests_are_warnings():
    found = codes(("@", "DNSKEY", DNSKEY.replace("257 3 10", "257 3 5")),
                  ("sub", "NS", "ns.example.net."), ("sub", "DS", "1 13 1 " + "ab" * 20))
    assert found["dnssec-algorithm-deprecated"] == WARNING and found["ds-digest-deprecated"] == WARNING
    assert findings(("@", "DNSKEY", DNSKEY), ("sub", "NS", "ns.example.net."),
                    ("sub", "DS", "1 13 2 " + "ab" * 32)) == ()


def test_nsec3_owner_must_be_a_hash():
    assert verdicts("nsec3-owner-invalid", ("cpnmu===", "NSEC3", "1 0 12 aabbccdd cpnmu MX")) == (ERROR, WARNING)
    assert "nsec3-owner-invalid" not in codes(("cpnmu", "NSEC3", "1 0 12 aabbccdd cpnmu MX"))


def test_spf_type_is_deprecated():
    assert codes(("@", "SPF", '"v=spf1 -all"'))["spf-record-type"] == WARNING
    from_lua = Zone(ORIGIN, (Record(ORIGIN, "SPF", 3600, '"v=spf1 -all"', "example.com.lua", 3),), "example.com.lua")
    assert validate_zone(from_lua, standalone=False) == ()  # the Lua evaluator warns at the call


# -- findings as a whole --------------------------------------------------------------------------

def test_findings_carry_zone_file_line_and_are_sorted():
    found = findings(("b", "CNAME", "x.example.net."), ("b", "A", "192.0.2.1"), ("@", "CNAME", "y.example.net."))
    assert all(f.zone == ORIGIN and f.file == "zone.db" and f.line > 0 for f in found)
    assert list(found) == sorted(found, key=lambda f: (f.file, f.line, f.code))


def test_every_code_is_in_the_catalogue():
    """The module docstring lists every code the module can emit with both servers' verdicts,
    exactly as the ``_VERDICTS`` table holds them, and nothing else."""
    source = open(validate_module.__file__, encoding="utf-8").read()
    doc = validate_module.__doc__
    rows = re.findall(r"^  ([a-z0-9]+(?:-[a-z0-9]+)+(?::[a-z]+)?)\s+([EW]) ([EW])  ", doc, re.M)
    assert {code: bind + knot for code, bind, knot in rows} == validate_module._VERDICTS
    assert len(rows) == len(validate_module._VERDICTS)
    catalogue = {code.partition(":")[0] for code, _, _ in rows}
    emitted = set(re.findall(r'\.add\(f?"([a-z0-9-{}]+)"', source))
    emitted = {c for c in emitted if "{" not in c}
    emitted |= set(re.findall(r'return \("([a-z-]+)"', source))  # _name_problem's codes
    emitted |= {f"{kind}-target-{what}" for kind in ("ns", "mx", "srv") for what in ("is-cname", "no-address")}
    emitted |= {"ns-target-looks-like-ip", "mx-target-looks-like-ip"}
    assert emitted == catalogue
    assert validate_module.NEWER_BIND <= set(validate_module._VERDICTS)


# -- scale ----------------------------------------------------------------------------------------

def generated_zone(count: int, origin: str = ORIGIN) -> Zone:
    """A realistic zone of ``count`` records: A/AAAA/CNAME/MX/TXT/SRV and delegations with glue.
    Also used by the benchmark."""
    records = [Record(origin, "SOA", 3600, SOA, "big.db", 1), Record(origin, "NS", 3600, f"ns1.{origin}", "big.db", 2),
               Record(origin, "NS", 3600, "ns2.example.net.", "big.db", 3), Record(f"ns1.{origin}", "A", 3600, "192.0.2.1", "big.db", 4)]
    i = 0
    while len(records) < count:
        host, line = f"host{i}.{origin}", len(records) + 1
        kind = i % 10
        if kind < 4:
            records.append(Record(host, "A", 3600, f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}", "big.db", line))
        elif kind == 4:
            records.append(Record(host, "AAAA", 3600, f"2001:db8::{i >> 16:x}:{i & 0xffff:x}", "big.db", line))
        elif kind == 5:
            records.append(Record(host, "CNAME", 3600, f"host{i - 5}.{origin}", "big.db", line))
        elif kind == 6:
            records.append(Record(host, "MX", 3600, f"10 host{i - 6}.{origin}", "big.db", line))
        elif kind == 7:
            records.append(Record(host, "TXT", 3600, f'"v=spf1 ip4:10.0.0.{i & 255} -all"', "big.db", line))
        elif kind == 8:
            records.append(Record(f"_sip._tcp.{host}", "SRV", 3600, f"0 5 5060 host{i - 8}.{origin}", "big.db", line))
        else:
            sub = f"sub{i}.{origin}"
            records.append(Record(sub, "NS", 3600, f"ns.{sub}", "big.db", line))
            records.append(Record(sub, "NS", 3600, "ns.example.net.", "big.db", line + 1))
            records.append(Record(f"ns.{sub}", "A", 3600, "192.0.2.53", "big.db", line + 2))
        i += 1
    return Zone(origin, tuple(records), "big.db")


def test_generated_zone_is_clean_and_injected_mistakes_are_found():
    zone = generated_zone(20000)
    assert validate_zone(zone, standalone=True) == ()
    broken = zone.records + (
        Record("host1.example.com.", "CNAME", 3600, "host2.example.com.", "big.db", 90001),  # beside an A
        Record("host16.example.com.", "MX", 3600, "10 host15.example.com.", "big.db", 90002),  # host15 is a CNAME
        Record("x.sub9.example.com.", "TXT", 3600, '"hidden"', "big.db", 90003),  # below a delegation
        Record("sub19.example.com.", "NS", 3600, "ns2.sub19.example.com.", "big.db", 90004),  # no glue
    )
    found = validate_zone(Zone(ORIGIN, broken, "big.db"), standalone=True)
    assert [(f.code, f.line) for f in found] == [
        ("cname-and-other-data", 90001), ("mx-target-is-cname", 90002),
        ("data-below-delegation", 90003), ("missing-glue", 90004)]
    # Owners grouped in the file or scattered: the same findings (two grouping paths).
    scattered = tuple(sorted(broken, key=lambda r: (r.type, r.data)))
    assert validate_zone(Zone(ORIGIN, scattered, "big.db"), standalone=True) == found


# -- robustness -----------------------------------------------------------------------------------

TYPES = ["A", "AAAA", "NS", "CNAME", "MX", "SRV", "SOA", "DNAME", "DS", "CDS", "CDNSKEY", "DNSKEY", "SVCB",
         "HTTPS", "PTR", "NSEC3", "ALIAS", "TXT", "SPF", "KEY", "RP", "NAPTR"]
NAMES = st.sampled_from(["example.com.", "www.example.com.", "*.example.com.", "a.*.example.com.", "sub.example.com.",
                         "x.sub.example.com.", "_dns.example.com.", "other.org.", ".", "a..example.com.",
                         "_443._dns.example.com.", "b._dns-sd._udp.example.com."])
DATA = st.one_of(st.text(max_size=40), NAMES, st.builds(lambda n, p: f"{p} {n}", NAMES, st.sampled_from(["0", "10", "1 2 3"])))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(NAMES, st.sampled_from(TYPES), st.integers(0, 2**31), DATA), max_size=12),
       st.booleans(), st.sampled_from(validate_module.SERVERS))
def test_validation_never_raises_on_malformed_data(rows, standalone, server):
    """Readers report malformed data; validation must still return findings, never raise."""
    zone = Zone(ORIGIN, tuple(Record(n, t, ttl, d, "zone.db", i + 1) for i, (n, t, ttl, d) in enumerate(rows)))
    found = validate_zone(zone, standalone=standalone, server=server)
    assert all(f.severity in (ERROR, WARNING) and f.zone == ORIGIN for f in found)


# -- end to end with the BIND reader --------------------------------------------------------------

def test_bind_file_with_common_mistakes_reports_each_at_its_line(data_dir):
    from publisher.zone.bind_zone import read_bind_zone

    folder = data_dir / "validate"
    result = read_bind_zone(folder / "mistakes.example.com.zone", ORIGIN, repo=folder,
                            display_file="mistakes.example.com.zone")
    assert result.findings == () and result.zone is not None
    found = validate_zone(result.zone, standalone=True)
    assert {f.file for f in found} == {"mistakes.example.com.zone"}
    assert [(f.line, f.code) for f in found] == [
        (8, "mx-target-is-cname"), (13, "cname-and-other-data"), (15, "cname-and-other-data"),
        (15, "cname-at-apex"), (16, "cname-loop"), (17, "cname-loop"), (18, "srv-target-no-address"),
        (19, "missing-glue"), (21, "data-below-delegation"), (23, "data-below-dname"),
        (24, "wildcard-forbidden-type"), (25, "hostname-syntax"), (25, "wildcard-not-leftmost"), (26, "hostname-syntax"),
        (27, "ds-at-apex"), (29, "owner-outside-zone")]
