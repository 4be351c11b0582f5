"""Lua zone evaluation: record functions, names, templates, errors at file:line."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from publisher.lua_zone import evaluate_lua_zone, evaluate_lua_zones
from publisher.model import Record
from publisher.rdata import canonical_rdata

LUA_DATA = Path(__file__).parent / "data" / "lua"


def zone_from(tmp_path: Path, source: str, origin: str = "example.com.", templates: dict[str, str] | None = None,
              **options):
    for name, text in (templates or {}).items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    path = tmp_path / f"{origin.rstrip('.')}.lua"
    path.write_text(source)
    return evaluate_lua_zone(tmp_path, path, origin, **options)


def records(result) -> list[tuple[str, str, int, str]]:
    assert result.zone is not None, [f.to_text() for f in result.findings]
    return [(r.name, r.type, r.ttl, r.data) for r in result.zone.records]


def codes(result) -> list[str]:
    return [f.code for f in result.findings]


def test_basic_records_are_canonical_with_file_and_line(tmp_path):
    result = zone_from(tmp_path, 'a("", "192.0.2.1")\na("www", "192.0.2.2", 300)\n'
                                 'mx("", "MX1.Mail.Example.NET", 10)\n')
    assert records(result) == [
        ("example.com.", "A", 3600, "192.0.2.1"),
        ("www.example.com.", "A", 300, "192.0.2.2"),
        ("example.com.", "MX", 3600, "10 mx1.mail.example.net."),
    ]
    assert [(r.file, r.line) for r in result.zone.records] == [("example.com.lua", 1), ("example.com.lua", 2),
                                                               ("example.com.lua", 3)]
    assert result.findings == ()


def test_bad_priority_is_reported_at_file_and_line(tmp_path):
    result = zone_from(tmp_path, '\n' * 11 + 'mx("", "mx.example.net", "ten")\n')
    (finding,) = result.findings
    assert (finding.file, finding.line, finding.severity) == ("example.com.lua", 12, "error")
    assert finding.message == 'mx: priority must be a number 0..65535, got "ten"'


# ----------------------------------------------------------------------------- a realistic repository

REPO = LUA_DATA / "repo"
REPO_ZONES = [(REPO / "example.com.lua", "example.com."), (REPO / "2.0.192.in-addr.arpa.lua", "2.0.192.in-addr.arpa."),
              (REPO / "example.net.lua", "example.net.")]


@pytest.fixture(scope="module")
def repo_results():
    return {result.origin: result for result in evaluate_lua_zones(REPO, REPO_ZONES)}


def test_realistic_repository_evaluates_cleanly(repo_results):
    for result in repo_results.values():
        assert result.zone is not None and result.findings == (), [f.to_text() for f in result.findings]
    assert len(repo_results["example.com."].zone.records) == 41


def test_every_record_matches_the_dnspython_reference(repo_results):
    for result in repo_results.values():
        for record in result.zone.records:
            if record.type != "ALIAS":
                assert canonical_rdata(record.type, record.data, result.origin) == record.data, record


def test_names_absolute_relative_and_apex(repo_results):
    names = {(r.name, r.data) for r in repo_results["example.com."].zone.records if r.type == "A"}
    assert ("example.com.", "192.0.2.10") in names  # _a
    assert ("example.com.", "192.0.2.11") in names  # the zone name literally
    assert ("mail.example.com.", "192.0.2.25") in names  # absolute without the dot: not doubled
    assert ("smtp.example.com.", "192.0.2.25") in names  # absolute with the dot
    assert ("printer.office.example.com.", "192.0.2.5") in names  # built in a loop over a table


def test_template_helpers_report_their_own_lines(repo_results):
    by_key = {(r.name, r.type): r for r in repo_results["example.com."].zone.records}
    assert (by_key["node1.example.com.", "AAAA"].file, by_key["node1.example.com.", "AAAA"].line) == ("templates/20-web.lua", 4)
    mx = next(r for r in repo_results["example.com."].zone.records if r.type == "MX")
    assert (mx.file, mx.line, mx.data) == ("templates/10-mail.lua", 3, "10 in1-smtp.messagingengine.com.")
    assert by_key["_dmarc.example.com.", "TXT"].data == '"v=DMARC1; p=quarantine; rua=mailto:dmarc@example.com"'
    assert by_key["node1.example.com.", "A"].ttl == 600


def test_long_dkim_text_is_split_into_255_octet_strings(repo_results):
    (dkim,) = [r for r in repo_results["example.com."].zone.records if r.name == "google._domainkey.example.com."]
    strings = re.findall(r'"((?:[^"\\]|\\.)*)"', dkim.data)
    assert [len(s) for s in strings] == [255, 115]  # 18 + 8 * 44 octets
    assert "".join(strings).startswith("v=DKIM1; k=rsa; p=MIIBIjAN")


def test_reverse_zone_with_numeric_names(repo_results):
    ptrs = {r.name: r.data for r in repo_results["2.0.192.in-addr.arpa."].zone.records if r.type == "PTR"}
    assert ptrs["1.2.0.192.in-addr.arpa."] == "gw.office.example.com."
    assert ptrs["24.2.0.192.in-addr.arpa."] == "node4.example.com."
    assert len(ptrs) == 7


def test_services_secondaries_and_ignores(repo_results):
    zone = repo_results["example.com."].zone
    assert zone.secondaries == ("198.51.100.3",)
    assert ("example.com.", "NS", "ns3.example.com.") in {(r.name, r.type, r.data) for r in zone.records}
    assert ("ns3.example.com.", "A", "198.51.100.3") in {(r.name, r.type, r.data) for r in zone.records}
    assert [(s.kind, s.name, s.target, s.mode, s.line) for s in zone.services] == [
        ("redirect", "old.example.com.", "https://www.example.com/", 1, 41),
        ("forward", "info", "owner@example.net", 0, 42)]
    (rule,) = zone.ignores
    assert rule.type == "TXT" and rule.matches("_acme-challenge.www.example.com.", "TXT")
    assert rule.matches("_acme-challenge.example.com.", "TXT") and not rule.matches("www.example.com.", "TXT")


def test_builtin_templates_use_relative_names(repo_results):
    records = {(r.name, r.type, r.data) for r in repo_results["example.net."].zone.records}
    assert ("example.net.", "MX", "1 smtp.google.com.") in records
    assert ("www.example.net.", "CNAME", "example.github.io.") in records
    assert ("example.net.", "AAAA", "2606:50c0:8000::153") in records
    assert all(r.file == "example.net.lua" for r in repo_results["example.net."].zone.records)


@pytest.mark.parametrize("call, expected", [
    ("templates:google_workspace()", ("example.com.", "MX", "1 smtp.google.com.")),
    ('templates:github_pages("me")', ("www.example.com.", "CNAME", "me.github.io.")),
    ('templates:netlify("site")', ("www.example.com.", "CNAME", "site.netlify.app.")),
    ('templates:office365("MS=ms123")', ("example.com.", "MX", "0 example-com.mail.protection.outlook.com.")),
    ("templates:mailgun()", ("example.com.", "MX", "10 mxa.mailgun.org.")),
    ('templates:migadu("abc")', ("key1._domainkey.example.com.", "CNAME", "key1.example.com._domainkey.migadu.com.")),
    ("templates:mailbox_org()", ("example.com.", "MX", "10 mxext1.mailbox.org.")),
    ("templates:shopify()", ("www.example.com.", "CNAME", "shops.myshopify.com.")),
    ('templates:wordpress("blog")', ("www.example.com.", "CNAME", "blog.wordpress.com.")),
])
def test_each_builtin_template(tmp_path, call, expected):
    result = zone_from(tmp_path, f'local templates = require("templates")\n{call}\n')
    assert expected in {(n, t, d) for n, t, _, d in records(result)}
    assert not [f for f in result.findings if f.is_error]
