"""Lua zone evaluation: record functions, names, templates, errors at file:line."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from publisher.zone.lua_zone import evaluate_lua_zone, evaluate_lua_zones
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
        assert result.zone is not None, [f.to_text() for f in result.findings]
    # The only findings: redirect() and forward() are LuaDNS services this tool does not publish.
    assert [(f.severity, f.code, f.line) for f in repo_results["example.com."].findings] == [
        ("warning", "service-not-published", 41), ("warning", "service-not-published", 42)]
    assert "not published by this tool (until a provider serves them)" in repo_results["example.com."].findings[0].message
    assert repo_results["example.net."].findings == () and repo_results["2.0.192.in-addr.arpa."].findings == ()
    assert len(repo_results["example.com."].zone.records) == 42


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
    assert ("example.net.", "MX", "1 aspmx.l.google.com.") in records
    assert ("mail.example.net.", "CNAME", "ghs.googlehosted.com.") in records
    assert ("example.net.", "ALIAS", "example.github.io.") in records
    assert all(r.file == "example.net.lua" for r in repo_results["example.net."].zone.records)


# The records of docs/lua-zone-language.md ("Built-in templates"), written as the record calls
# the table gives: each template must produce exactly these, in this order.
BUILTIN_TEMPLATES = {
    "templates:google_workspace()": [
        'cname("mail", "ghs.googlehosted.com")', 'cname("calendar", "ghs.googlehosted.com")',
        'mx("", "aspmx.l.google.com", 1)', 'mx("", "alt1.aspmx.l.google.com", 5)', 'mx("", "alt2.aspmx.l.google.com", 5)',
        'mx("", "alt3.aspmx.l.google.com", 10)', 'mx("", "alt4.aspmx.l.google.com", 10)'],
    'templates:office365("MS=ms123", "example-com")': [
        'txt("", "MS=ms123")', 'cname("autodiscover", "autodiscover.outlook.com")',
        'mx("", "example-com" .. ".mail.protection.outlook.com")',
        'cname("enterpriseregistration", "enterpriseregistration.windows.net")',
        'cname("enterpriseenrollment", "enterpriseenrollment.manage.microsoft.com")',
        'cname("sip", "sipdir.online.lync.com")', 'cname("lyncdiscover", "webdir.online.lync.com")',
        'srv("_sip._tls", "sipdir.online.lync.com", 443, 100, 1)',
        'srv("_sipfederationtls._tcp", "sipfed.online.lync.com", 5061, 100, 1)'],
    'templates:github_pages("me")': ['alias("", "me" .. ".github.io")'],
    'templates:netlify("site")': ['alias("", "site" .. ".netlify.app")', 'cname("www", "site" .. ".netlify.app")'],
    'templates:wordpress("blog")': ['alias("", "blog" .. ".wordpress.com")'],
    "templates:shopify()": ['a("", "23.227.38.65")', 'cname("www", "shops.myshopify.com")'],
    "templates:mailgun()": ['cname("email", "mailgun.org")', 'mx("", "mxa.mailgun.org", 10)', 'mx("", "mxb.mailgun.org", 10)'],
    "templates:mailbox_org()": [
        'mx("", "mxext1.mailbox.org", 10)', 'mx("", "mxext2.mailbox.org", 20)', 'mx("", "mxext3.mailbox.org", 30)'] + [
        f'cname("MBO000{n}._domainkey", "MBO000{n}._domainkey.mailbox.org")' for n in range(1, 5)],
    'templates:migadu("abc")': [
        'mx("", "aspmx1.migadu.com", 10)', 'mx("", "aspmx2.migadu.com", 20)'] + [
        f'cname("key{n}._domainkey", "key{n}." .. _a .. "._domainkey.migadu.com.")' for n in range(1, 4)] + [
        'txt("", "hosted-email-verify=" .. "abc")', 'srv("_submissions._tcp", "smtp.migadu.com", 465)',
        'srv("_imaps._tcp", "imap.migadu.com", 993)'],
}


@pytest.mark.parametrize("call", BUILTIN_TEMPLATES)
def test_each_builtin_template_adds_exactly_the_documented_records(tmp_path, call):
    template = zone_from(tmp_path, f'local templates = require("templates")\n{call}\n')
    written = zone_from(tmp_path, "\n".join(BUILTIN_TEMPLATES[call]) + "\n")
    assert records(template) == records(written)
    assert template.findings == written.findings == ()
    assert all((r.file, r.line) == ("example.com.lua", 2) for r in template.zone.records)


@pytest.mark.parametrize("call", BUILTIN_TEMPLATES)
def test_builtin_templates_return_their_record_tables(tmp_path, call):
    source = (f'local templates = require("templates")\nlocal added = {call}\n'
              'for i, r in ipairs(added) do\n'
              '  txt("r" .. i, r.type .. " " .. r.ttl .. " " .. (string.gsub(r.content, \'"\', "")))\nend\n')
    result = zone_from(tmp_path, source)
    added = [r for r in result.zone.records if r.type != "TXT" or r.line == 2]
    returned = [r.data.strip('"') for r in result.zone.records if r.line == 4]
    assert len(added) == len(BUILTIN_TEMPLATES[call]) == len(returned)
    assert returned == [f"{r.type} {r.ttl} {r.data.replace(chr(34), '')}" for r in added]


@pytest.mark.parametrize("call, words", [
    ('templates:office365("MS=ms123")', "mx_host"),
    ("templates:github_pages()", "username"),
    ("templates:migadu()", "verification"),
])
def test_builtin_template_without_a_required_argument_names_the_zone_line(tmp_path, call, words):
    result = zone_from(tmp_path, f'local templates = require("templates")\n\n{call}\n')
    (finding,) = result.findings
    assert (finding.file, finding.line, finding.severity) == ("example.com.lua", 3, "error")
    assert words in finding.message and "must be a string" in finding.message


# ----------------------------------------------------------------------------- written as LuaDNS's docs write zones

LUADNS_STYLE = LUA_DATA / "luadns-style"


def test_zones_in_the_style_of_luadns_docs_lint_clean():
    from publisher.zone.evaluate import evaluate_repository

    result = evaluate_repository(LUADNS_STYLE)
    assert [z.origin for z in result.zones] == ["10.168.192.in-addr.arpa.", "example.com.", "example.net.", "example.org."]
    assert all(z.zone is not None for z in result.zones)
    errors = [(f.file, f.line, f.code) for z in result.zones for f in z.findings if f.is_error]
    # An MX target in the zone without an address (LuaDNS's own example, `mx("*.user",
    # concat("mail", _a))`) is a warning: BIND loads the zone and logs it.
    assert errors == [], errors


def test_luadns_example_shapes_evaluate_as_on_luadns():
    zones = {r.origin: r.zone for r in evaluate_lua_zones(LUADNS_STYLE, [
        (LUADNS_STYLE / "example.net.lua", "example.net."), (LUADNS_STYLE / "example.com.lua", "example.com.")])}
    net = {(r.name, r.type, r.data) for r in zones["example.net."].records}
    assert {("example.net.", "NS", "ns1.example.net."), ("ns1.example.net.", "A", "192.168.20.1"),
            ("example.net.", "NS", "ns2.example.net."), ("ns2.example.net.", "A", "192.168.20.2"),
            ("example.net.", "NS", "ns1.secondary-dns.example."),
            ("*.user.example.net.", "MX", "0 mail.example.net.")} <= net
    assert [r.type for r in zones["example.net."].records].count("NS") == 2 + 3  # osaka x2, three servers
    assert zones["example.net."].secondaries == ("192.168.20.1", "192.168.20.2")
    com = {(r.name, r.type, r.data, r.file, r.line) for r in zones["example.com."].records}
    assert ("shop.example.com.", "CNAME", "calm-river-1234.herokudns.com.", "templates/heroku.lua", 2) in com
    assert ("example.com.", "MX", "1 aspmx.l.google.com.", "templates.lua", 5) in com
    assert ("gamma.example.com.", "A", "192.0.2.13", "example.com.lua", 12) in com


# ----------------------------------------------------------------------------- common mistakes

MISTAKES = [
    # (source, line, code, words the message must contain)
    ('a("", "192.0.2.1")\nfunction web(name):\n  a(name, "192.0.2.2")\nend\n', 2, "lua-syntax-error", "Python"),
    ('local x = 1\nif x:\n  a("", "192.0.2.2")\nend\n', 2, "lua-syntax-error", "Python"),
    ('a("", "192.0.2.1")\n# the web server\na("www", "192.0.2.2")\n', 2, "lua-syntax-error", "comments start with --"),
    ('a("", "192.0.2.1")\na("www", "192.0.2.2",)\n', 2, "lua-syntax-error", "trailing comma"),
    ('a("", "192.0.2.1")\ncnae("www", "example.net")\n', 2, "lua-undefined-function", "did you mean cname?"),
    ('a("", "192.0.2.1")\ncname("www", concact("web", _a))\n', 2, "lua-undefined-function", "did you mean concat?"),
    ('a("", "192.0.2.1")\naname("", "lb.example.net")\n', 2, "lua-undefined-function", "alias(name, target)"),
    ('a("", "192.0.2.1")\ntxt("", "v=spf1 -all)\na("x", "192.0.2.3")\n', 2, "lua-syntax-error", "unterminated string"),
    ('a("", "192.0.2.1")\ntxt(google._domainkey, "v=DKIM1; p=abc")\n', 2, "lua-unquoted-name",
     'write "google._domainkey"'),
    ('a("", 192.0.2.1)\n', 1, "lua-syntax-error", 'quoted strings'),
    ('local t = require("templates")\nt:gogle_workspace()\n', 2, "lua-undefined-function", "google_workspace"),
    ('a("", "192.0.2.1")\nlocal s = string.rep()\n', 2, "lua-runtime-error", "bad argument #1 to 'rep'"),
    ('a("", "192.0.2.1")\n\nerror("custom failure")\n', 3, "lua-runtime-error", "custom failure"),
    ('setmetatable({}, {__gc = print})\n', 1, "lua-runtime-error", "__gc"),
]


@pytest.mark.parametrize("source, line, code, words", MISTAKES)
def test_common_mistakes_are_reported_at_file_and_line(tmp_path, source, line, code, words):
    result = zone_from(tmp_path, source)
    assert result.zone is None
    (finding,) = result.findings
    assert (finding.file, finding.line, finding.code, finding.severity) == ("example.com.lua", line, code, "error")
    assert words in finding.message


def test_ipv4_in_aaaa_is_a_record_finding_that_hides_nothing(tmp_path):
    result = zone_from(tmp_path, 'a("", "192.0.2.1")\naaaa("www", "192.0.2.2")\naaaa("v6", "zzz")\n'
                                 'a("bad", "300.1.1.1")\na("ok", "192.0.2.9")\n')
    assert [(f.line, f.code) for f in result.findings] == [(2, "ipv4-in-aaaa"), (3, "invalid-ipv6"), (4, "invalid-ipv4")]
    assert 'use a() for IPv4' in result.findings[0].message
    assert [r.name for r in result.zone.records] == ["example.com.", "ok.example.com."]
    assert result.has_errors


def test_errors_in_templates_name_the_template(tmp_path):
    result = zone_from(tmp_path, 'helper()\n', templates={"templates/mail.lua": "function helper()\n  mx('', nil)\n  boom()\nend\n"})
    assert [(f.file, f.line, f.code) for f in result.findings] == [
        ("templates/mail.lua", 2, "nil-name"), ("templates/mail.lua", 3, "lua-undefined-function")]
    assert result.findings[0].message.startswith("mx: exchanger is nil")


def test_an_error_in_a_template_helper_names_the_template_line_and_the_zone_line(tmp_path):
    helpers = {"templates/mail.lua": "function mail(domain)\n  mx(domain, nil)\n  boom()\nend\n"}
    result = zone_from(tmp_path, 'a("", "192.0.2.1")\n\nmail(_a)\n', templates=helpers)
    assert [(f.file, f.line, f.code) for f in result.findings] == [
        ("templates/mail.lua", 2, "nil-name"), ("templates/mail.lua", 3, "lua-undefined-function")]
    assert all(f.message.endswith("(called from example.com.lua:3)") for f in result.findings), result.findings


def test_unknown_type_in_ignore_is_an_error_at_its_line(tmp_path):
    result = zone_from(tmp_path, 'a("", "192.0.2.1")\nignore("_acme-challenge.%", "TXTT")\nignore("x", "txt")\n')
    (finding,) = result.findings
    assert (finding.line, finding.code, finding.severity) == (2, "unknown-type", "error")
    assert "'TXTT'" in finding.message
    assert result.zone.ignores == (("x.example.com.", "TXT"),)


def test_redirect_and_forward_are_reported_as_not_published(tmp_path):
    result = zone_from(tmp_path, 'redirect("old", "https://www.example.com/", 1)\nforward("*", "me@example.net")\n')
    assert [(f.severity, f.code, f.line) for f in result.findings] == [
        ("warning", "service-not-published", 1), ("warning", "service-not-published", 2)]
    assert all("not published by this tool (until a provider serves them)" in f.message for f in result.findings)
    assert [s.kind for s in result.zone.services] == ["redirect", "forward"]


def test_syntax_error_in_a_template(tmp_path):
    result = zone_from(tmp_path, 'a("", "192.0.2.1")\n', templates={"templates.lua": "x = 1\ny = = 2\n"})
    (finding,) = result.findings
    assert (finding.file, finding.line, finding.code) == ("templates.lua", 2, "lua-syntax-error")


# ----------------------------------------------------------------------------- names

@pytest.mark.parametrize("written, absolute", [
    ('""', "example.com."), ("_a", "example.com."), ('"example.com"', "example.com."), ('"Example.COM."', "example.com."),
    ('"www"', "www.example.com."), ('"*.dev"', "*.dev.example.com."), ('"_sip._tcp"', "_sip._tcp.example.com."),
    ('"mail.example.com"', "mail.example.com."), ('"Mail.Example.com."', "mail.example.com."),
    ("7", "7.example.com."), ("7.0", "7.example.com."), ('concat("a", "b")', "a.b.example.com."),
    ('concat("www", _a)', "www.example.com."), ('concat(1, 2)', "1.2.example.com."),
])
def test_owner_name_rules(tmp_path, written, absolute):
    result = zone_from(tmp_path, f'a({written}, "192.0.2.1")\n')
    assert records(result) == [(absolute, "A", 3600, "192.0.2.1")]
    assert result.findings == ()


@pytest.mark.parametrize("written, code, words", [
    ('"@"', "at-sign-name", 'write "" or _a'),
    ("nil", "nil-name", "the name is nil"),
    ("undefined_variable", "nil-name", "the name is nil"),
    ('"www.example.org."', "name-outside-zone", "outside the zone example.com."),
    ('"a..b"', "invalid-name", "empty label"),
    ('"bad name"', "invalid-name", "characters not allowed"),
    ('"bücher"', "invalid-name", "xn--"),
    ('string.rep("x", 64)', "invalid-name", "longer than 63"),
    ("{}", "invalid-name", "must be a string"),
])
def test_bad_owner_names(tmp_path, written, code, words):
    result = zone_from(tmp_path, f'\na({written}, "192.0.2.1")\n')
    (finding,) = result.findings
    assert (finding.line, finding.code) == (2, code)
    assert finding.message.startswith("a: ") and words in finding.message
    assert result.zone is not None and result.zone.records == ()


def test_targets_are_fully_qualified(tmp_path):
    result = zone_from(tmp_path, 'cname("a", "Target.Example.NET")\ncname("b", "target.example.net.")\n'
                                 'mx("", ".", 0)\nsrv("_x._tcp", ".", 0)\nns("", "ns1.example.com")\n')
    assert [d for _, _, _, d in records(result)] == ["target.example.net.", "target.example.net.", "0 .",
                                                     "0 0 0 .", "ns1.example.com."]
    assert result.findings == ()


def test_single_label_target_warns_with_concat_hint(tmp_path):
    result = zone_from(tmp_path, 'cname("autodiscover", "autodiscover")\n')
    assert records(result) == [("autodiscover.example.com.", "CNAME", 3600, "autodiscover.")]
    (finding,) = result.findings
    assert (finding.severity, finding.code, finding.line) == ("warning", "single-label-target", 1)
    assert 'concat("autodiscover", _a)' in finding.message


# ----------------------------------------------------------------------------- record functions

def test_argument_orders_and_defaults(tmp_path):
    source = """
mx("", "mx.example.net")
srv("_imaps._tcp", "imap.example.net", 993)
srv("_sip._tcp", "sip.example.net", 5060, 10, 20, 60)
caa("", "letsencrypt.org")
caa("", "pki.example.net", "issuewild", 128)
sshfp("h", 1, "0123456789abcdef0123456789abcdef01234567")
tlsa("_443._tcp", 3, string.rep("ab", 32))
ds("child", 12345, "0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF")
alias("", "LB.example.net")
dname("old", "new.example.net")
svcb("_dns", 1, "dns.example.net", "alpn=dot port=853")
https("www", 0, "cdn.example.net")
rr("txtrr", "txt", '"one" "two"', 120)
ptr("1.2", "host.example.com")
"""
    result = zone_from(tmp_path, source)
    assert records(result) == [
        ("example.com.", "MX", 3600, "0 mx.example.net."),
        ("_imaps._tcp.example.com.", "SRV", 3600, "0 0 993 imap.example.net."),
        ("_sip._tcp.example.com.", "SRV", 60, "10 20 5060 sip.example.net."),
        ("example.com.", "CAA", 3600, '0 issue "letsencrypt.org"'),
        ("example.com.", "CAA", 3600, '128 issuewild "pki.example.net"'),
        ("h.example.com.", "SSHFP", 3600, "1 1 0123456789abcdef0123456789abcdef01234567"),
        ("_443._tcp.example.com.", "TLSA", 3600, "3 1 1 " + "ab" * 32),
        ("child.example.com.", "DS", 3600,
         "12345 13 2 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"),
        ("example.com.", "ALIAS", 3600, "lb.example.net."),
        ("old.example.com.", "DNAME", 3600, "new.example.net."),
        ("_dns.example.com.", "SVCB", 3600, canonical_rdata("SVCB", "1 dns.example.net. alpn=dot port=853", "example.com.")),
        ("www.example.com.", "HTTPS", 3600, "0 cdn.example.net."),
        ("txtrr.example.com.", "TXT", 120, '"one" "two"'),
        ("1.2.example.com.", "PTR", 3600, "host.example.com."),
    ]
    assert result.findings == ()


def test_record_functions_return_the_record(tmp_path):
    source = ('local r = a("www", "192.0.2.1", 60)\n'
              'txt("check", r.name .. " " .. r.type .. " " .. r.content .. " " .. r.ttl)\n'
              'local m = mx("", "mx.example.net", 5)\ntxt("m", m.content)\n'
              'local c = caa("", "letsencrypt.org")\nlocal s = slave("ns1", "192.0.2.53")\n'
              'txt("types", c.type .. " " .. s.type .. " " .. s.content)\n')
    result = zone_from(tmp_path, source)
    texts = {n: d for n, t, _, d in records(result) if t == "TXT"}
    assert texts["check.example.com."] == '"www A 192.0.2.1 60"'
    assert texts["m.example.com."] == '"5 mx.example.net."'
    assert texts["types.example.com."] == '"CAA NS ns1.example.com."'


@pytest.mark.parametrize("ttl, ok", [("300.0", 300), ("0", 0), ("2147483647", 2147483647), ("300.5", None),
                                     ("0/0", None), ("-1", None), ("2^31", None), ('"ten"', None)])
def test_ttl_rules(tmp_path, ttl, ok):
    result = zone_from(tmp_path, f'a("www", "192.0.2.1", {ttl})\n')
    if ok is None:
        assert [f.code for f in result.findings] == ["invalid-ttl"]
        assert result.zone.records == ()
    else:
        assert records(result) == [("www.example.com.", "A", ok, "192.0.2.1")]


def test_default_ttl_is_configurable(tmp_path):
    assert records(zone_from(tmp_path, 'a("", "192.0.2.1")\n', default_ttl=900)) == [("example.com.", "A", 900, "192.0.2.1")]


def test_txt_splitting_and_escaping_agree_with_dnspython(tmp_path):
    source = ('txt("long", string.rep("0123456789", 60))\n'
              'txt("quote", "say \\"hi\\" \\\\ back")\n'
              'txt("utf8", "caf\\195\\169 \\1 tab\\tend")\n'
              'txt("empty", "")\n'
              'txt("exact", string.rep("x", 255))\n'
              'txt("multi", {"first", "second"})\n')
    result = zone_from(tmp_path, source)
    for name, _, _, data in records(result):
        assert canonical_rdata("TXT", data, "example.com.") == data
    texts = {n: d for n, _, _, d in records(result)}
    assert texts["long.example.com."].count('"') == 6  # 255 + 255 + 90
    assert texts["quote.example.com."] == '"say \\"hi\\" \\\\ back"'
    assert texts["utf8.example.com."] == '"caf\\195\\169 \\001 tab\\009end"'
    assert texts["empty.example.com."] == '""'
    assert texts["exact.example.com."].count('"') == 2
    assert texts["multi.example.com."] == '"first" "second"'


def test_spf_warns_and_suggests_txt(tmp_path):
    result = zone_from(tmp_path, 'spf("", "v=spf1 -all")\n')
    assert records(result) == [("example.com.", "SPF", 3600, '"v=spf1 -all"')]
    (finding,) = result.findings
    assert (finding.severity, finding.code) == ("warning", "spf-record-type") and "txt()" in finding.message


def test_slave_outside_the_zone_adds_no_address(tmp_path):
    result = zone_from(tmp_path, 'slave("ns.partner.net", "203.0.113.5")\nslave("ns2", "2001:db8::5")\n'
                                 'slave("ns3.example.com", "192.0.2.53")\n')
    assert records(result) == [("example.com.", "NS", 3600, "ns.partner.net."),
                               ("example.com.", "NS", 3600, "ns2.example.com."),
                               ("ns2.example.com.", "AAAA", 3600, "2001:db8::5"),
                               ("example.com.", "NS", 3600, "ns3.example.com."),
                               ("ns3.example.com.", "A", 3600, "192.0.2.53")]
    assert result.zone.secondaries == ("203.0.113.5", "2001:db8::5", "192.0.2.53")
    assert result.findings == ()


def test_slave_with_a_relative_name_gets_ns_and_address(tmp_path):
    # LuaDNS: "required A and NS records are created automatically".
    result = zone_from(tmp_path, 'slave("ns1", "1.1.1.1")\n')
    assert records(result) == [("example.com.", "NS", 3600, "ns1.example.com."), ("ns1.example.com.", "A", 3600, "1.1.1.1")]
    assert result.zone.secondaries == ("1.1.1.1",) and result.zone.secondary_nameservers == ("ns1.example.com.",)


def test_one_slave_with_two_addresses_is_one_ns_and_two_permissions(tmp_path):
    result = zone_from(tmp_path, 'slave("ns1.third-party.net", "1.1.1.1")\nslave("ns1.third-party.net", "1.1.1.2")\n'
                                 'slave("ns2", "192.0.2.1")\nslave("ns2", "192.0.2.2")\n')
    assert records(result) == [("example.com.", "NS", 3600, "ns1.third-party.net."),
                               ("example.com.", "NS", 3600, "ns2.example.com."),
                               ("ns2.example.com.", "A", 3600, "192.0.2.1"), ("ns2.example.com.", "A", 3600, "192.0.2.2")]
    assert result.zone.secondaries == ("1.1.1.1", "1.1.1.2", "192.0.2.1", "192.0.2.2")
    assert result.findings == ()  # no line is a duplicate: each carries an address of its own


def test_a_repeated_slave_line_is_a_duplicate(tmp_path):
    result = zone_from(tmp_path, 'slave("ns1", "1.1.1.1")\nslave("ns1", "1.1.1.1")\n')
    assert records(result) == [("example.com.", "NS", 3600, "ns1.example.com."), ("ns1.example.com.", "A", 3600, "1.1.1.1")]
    (finding,) = result.findings
    assert (finding.severity, finding.code, finding.line) == ("warning", "duplicate-slave", 2)
    assert "remove one of the two lines" in finding.message


def test_ignore_patterns_are_absolute(tmp_path):
    result = zone_from(tmp_path, 'ignore("_acme-challenge.%", "TXT")\nignore("legacy")\nignore("%", "*")\n'
                                 'ignore("", "mx")\nignore("Host.Example.com", "a")\n')
    assert result.zone.ignores == (("_acme-challenge.%.", "TXT"), ("legacy.example.com.", "*"), ("%.", "*"),
                                   ("example.com.", "MX"), ("host.example.com.", "A"))


def test_rdata_errors_from_rr_and_soa(tmp_path):
    result = zone_from(tmp_path, 'rr("x", "CAA", "0 bad tag value")\nrr("y", "FOO", "1")\nrr("", "SOA", "x")\n'
                                 'a("ok", "192.0.2.1")\n')
    assert [(f.line, f.code, f.message.split(":")[0]) for f in result.findings] == [
        (1, "invalid-rdata", "rr"), (2, "invalid-rdata", "rr"), (3, "soa-in-lua", "rr")]
    assert [r.name for r in result.zone.records] == ["ok.example.com."]


def test_lua51_compatibility(tmp_path):
    source = ('local t = {"192.0.2.1", "192.0.2.2"}\nlocal x, y = unpack(t)\na("u", y)\n'
              'a("n" .. table.getn(t), x)\na("m" .. math.mod(7, 3), x)\n'
              'a("p" .. tostring(math.pow(2, 3)), x)\na("d" .. tostring(10 / 2), x)\n'
              'a(10 / 2, x, 600 / 2)\n')
    assert [(n, ttl) for n, _, ttl, _ in records(zone_from(tmp_path, source))] == [
        ("u.example.com.", 3600), ("n2.example.com.", 3600), ("m1.example.com.", 3600),
        ("p8.example.com.", 3600), ("d5.example.com.", 3600), ("5.example.com.", 300)]


def test_templates_run_in_order_in_a_fresh_environment(tmp_path):
    templates = {"templates.lua": 'order = "root"\n', "templates/b.lua": 'order = order .. ",b"\n',
                 "templates/a.lua": 'order = order .. ",a"\ncounter = (counter or 0) + 1\n'}
    for name, text in templates.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    (tmp_path / "one.test.lua").write_text('txt("", order .. "," .. counter)\n')
    (tmp_path / "two.test.lua").write_text('txt("", order .. "," .. counter)\n')
    one, two = evaluate_lua_zones(tmp_path, [(tmp_path / "one.test.lua", "one.test."), (tmp_path / "two.test.lua", "two.test.")])
    assert records(one) == [("one.test.", "TXT", 3600, '"root,a,b,1"')]
    assert records(two) == [("two.test.", "TXT", 3600, '"root,a,b,1"')]


def test_missing_zone_file_is_a_finding(tmp_path):
    result = evaluate_lua_zone(tmp_path, tmp_path / "nope.test.lua", "nope.test.")
    assert result.zone is None and [f.code for f in result.findings] == ["zone-file-unreadable"]


def test_symlinked_template_outside_the_repository_is_refused(tmp_path):
    outside = tmp_path / "outside.lua"
    outside.write_text("x = 1\n")
    repo = tmp_path / "repo"
    (repo / "templates").mkdir(parents=True)
    (repo / "templates" / "evil.lua").symlink_to(outside)
    (repo / "example.com.lua").write_text('a("", "192.0.2.1")\n')
    result = evaluate_lua_zone(repo, repo / "example.com.lua", "example.com.")
    assert [f.code for f in result.findings] == ["template-not-regular-file"]


# ----------------------------------------------------------------------------- fast paths agree with dnspython

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import dns.rdataclass  # noqa: E402
import dns.rdatatype  # noqa: E402
import dns.rdtypes.ANY.TXT  # noqa: E402

from publisher.rdata import RdataError  # noqa: E402


def lua_literal(data: bytes) -> str:
    return '"' + "".join(f"\\{byte:03d}" for byte in data) + '"'


def evaluate_source(source: str):
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "example.com.lua"
        path.write_text(source)
        return evaluate_lua_zone(Path(folder), path, "example.com.")


octet = st.one_of(st.integers(0, 255).map(str), st.sampled_from(["256", "01", "00", "999", "-1", ""]))
ipv4_text = st.lists(octet, min_size=3, max_size=5).map(".".join)
label = st.text("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_", min_size=1, max_size=20)
target = st.lists(label, min_size=2, max_size=4).map(".".join).flatmap(lambda n: st.sampled_from([n, n + "."]))
ipv6_text = st.binary(min_size=16, max_size=16).flatmap(lambda b: st.sampled_from([
    __import__("ipaddress").IPv6Address(b).compressed, __import__("ipaddress").IPv6Address(b).exploded.upper(),
    "::ffff:" + ".".join(str(x) for x in b[12:])]))


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(ipv4_text, min_size=1, max_size=20))
def test_ipv4_fast_path_accepts_exactly_what_dnspython_accepts(addresses):
    source = "".join(f'a("h{i}", "{text}")\n' for i, text in enumerate(addresses))
    result = evaluate_source(source)
    accepted = {r.name: r.data for r in result.zone.records}
    for i, text in enumerate(addresses):
        try:
            expected = canonical_rdata("A", text, "example.com.")
        except RdataError:
            expected = None
        assert accepted.get(f"h{i}.example.com.") == expected, text


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(ipv6_text, min_size=1, max_size=20))
def test_ipv6_matches_dnspython(addresses):
    result = evaluate_source("".join(f'aaaa("h{i}", "{text}")\n' for i, text in enumerate(addresses)))
    assert [r.data for r in result.zone.records] == [canonical_rdata("AAAA", t, "example.com.") for t in addresses]


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(target, st.integers(0, 65535), st.integers(0, 65535)), min_size=1, max_size=10))
def test_name_types_match_dnspython(entries):
    lines = []
    for i, (name, number, port) in enumerate(entries):
        lines += [f'cname("c{i}", "{name}")', f'ns("n{i}", "{name}")', f'ptr("p{i}", "{name}")',
                  f'mx("m{i}", "{name}", {number})', f'srv("s{i}", "{name}", {port}, {number}, {port})',
                  f'dname("d{i}", "{name}")']
    result = evaluate_source("\n".join(lines) + "\n")
    assert not [f for f in result.findings if f.is_error]
    for record in result.zone.records:
        written = record.data  # already canonical: dnspython must leave it unchanged
        assert canonical_rdata(record.type, written, "example.com.") == written
    for i, (name, number, port) in enumerate(entries):
        absolute = name if name.endswith(".") else name + "."
        by_name = {(r.name, r.type): r.data for r in result.zone.records}
        assert by_name[f"m{i}.example.com.", "MX"] == canonical_rdata("MX", f"{number} {absolute}", "example.com.")
        assert by_name[f"s{i}.example.com.", "SRV"] == canonical_rdata("SRV", f"{number} {port} {port} {absolute}",
                                                                       "example.com.")


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.binary(max_size=700), min_size=1, max_size=8))
def test_txt_split_and_escape_match_dnspython(texts):
    result = evaluate_source("".join(f"txt(\"t{i}\", {lua_literal(text)})\n" for i, text in enumerate(texts)))
    for i, text in enumerate(texts):
        chunks = [text[k:k + 255] for k in range(0, len(text), 255)] or [b""]
        expected = dns.rdtypes.ANY.TXT.TXT(dns.rdataclass.IN, dns.rdatatype.TXT, chunks).to_text()
        (record,) = [r for r in result.zone.records if r.name == f"t{i}.example.com."]
        assert record.data == expected
        assert canonical_rdata("TXT", record.data, "example.com.") == expected


# ----------------------------------------------------------------------------- huge files: split closures
# The record functions exist once, in the prelude.  A big file is offered to Lua 5.1 split into
# closures (sandbox.split_constant_tables); these tests hold the split file to the file as written.

import publisher.zone.sandbox as sandbox_module  # noqa: E402

literal_owner = st.one_of(st.from_regex(r"[a-z0-9_-]{0,12}", fullmatch=True),
                          st.from_regex(r"[A-Za-z0-9_*-]{1,8}(\.[A-Za-z0-9_-]{1,8}){0,2}", fullmatch=True),
                          st.sampled_from(["example.com", "www.example.com", "Mail.Example.COM", "x.example.org"]))
literal_line = st.one_of(
    st.tuples(st.just("a"), literal_owner, ipv4_text),
    st.tuples(st.sampled_from(["srv", "caa"]), literal_owner, target),
    st.tuples(st.just("txt"), literal_owner, st.text("abcdefghij =;:/+-[]", max_size=700)),
    st.tuples(st.just("aaaa"), st.from_regex(r"[a-z0-9]{0,8}", fullmatch=True), ipv6_text),
    st.tuples(st.sampled_from(["cname", "ns", "ptr", "mx"]), st.from_regex(r"[a-z0-9_-]{1,12}", fullmatch=True), target),
    st.tuples(st.just("txt"), st.from_regex(r"[a-z0-9_-]{0,12}", fullmatch=True),
              st.text(st.characters(min_codepoint=32, max_codepoint=126, blacklist_characters='"\\'), max_size=300)),
).flatmap(lambda call: st.tuples(st.just(call), st.sampled_from(["", ", 300", ", 0300", ", 4294967296"]),
                                 st.sampled_from(["", ", 10", ", 70000"])))
other_line = st.sampled_from(["", "-- a comment", "--[[ a(\"in\", \"192.0.2.9\")", "]]", "local x = [==[",
                              "]==]", "for i = 1, 2 do", "end", 'local s = "a\\', 'b"', "while", "do end", "t = {",
                              "}", "local r =", "txt(\"multi\", [[", "a(\"h\", \"192.0.2.1\"),"])


def render_literal(entries) -> str:
    lines = []
    for (function, name, value), ttl, priority in entries:
        if function == "mx":
            extra = priority + ttl
        elif function == "srv":
            extra = ", 5060" + (priority + ", 60" + ttl if priority else "")
        elif function == "caa":
            extra = ', "iodef"' + (", 128" + ttl if ttl else "") if priority else ""
        else:
            extra = ttl
        lines.append(f'{function}("{name}", "{value}"{extra})')
    return "\n".join(lines) + "\n"


def evaluate_both(folder: Path, source: str | bytes, monkeypatch) -> tuple:
    """The zone of ``source`` compiled as written and compiled split (threshold 0)."""
    path = folder / "example.com.lua"
    path.write_bytes(source.encode() if isinstance(source, str) else source)
    monkeypatch.setattr(sandbox_module, "SPLIT_THRESHOLD", 1 << 40)
    whole = evaluate_lua_zone(folder, path, "example.com.")
    monkeypatch.setattr(sandbox_module, "SPLIT_THRESHOLD", 0)
    split = evaluate_lua_zone(folder, path, "example.com.")
    return whole, split


def assert_same(whole, split) -> None:
    assert split.findings == whole.findings
    assert (split.zone is None) == (whole.zone is None)
    if whole.zone is not None:
        assert split.zone == whole.zone


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.lists(st.one_of(literal_line.map(lambda entry: render_literal([entry])), other_line.map(lambda l: l + "\n")),
                min_size=1, max_size=40))
def test_split_file_means_what_the_file_says(tmp_path_factory, monkeypatch, lines):
    # Literal calls mixed with lines that open strings, comments and blocks across lines.
    whole, split = evaluate_both(tmp_path_factory.mktemp("split"), "".join(lines), monkeypatch)
    assert_same(whole, split)


def lua_files_of_the_tests() -> list[Path]:
    return sorted(p for p in (Path(__file__).parent / "data").rglob("*.lua") if p.parent.name != "templates")


@pytest.mark.parametrize("path", lua_files_of_the_tests(), ids=lambda p: p.relative_to(Path(__file__).parent).as_posix())
def test_split_equals_whole_on_every_lua_file_of_the_tests(tmp_path, monkeypatch, path):
    repo = path.parent
    origin = path.name[:-4] + "."
    monkeypatch.setattr(sandbox_module, "SPLIT_THRESHOLD", 1 << 40)
    whole = evaluate_lua_zone(repo, path, origin)
    monkeypatch.setattr(sandbox_module, "SPLIT_THRESHOLD", 0)
    split = evaluate_lua_zone(repo, path, origin)
    assert_same(whole, split)


def test_split_equals_whole_on_a_generated_zone(tmp_path, monkeypatch):
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_generate", Path(__file__).parent.parent / "bench" / "generate.py")
    generate = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generate)
    path = generate.generate(3000, tmp_path, formats=("lua",))["lua"]
    source = path.read_bytes()
    assert sandbox_module.split_constant_tables(source) is not None
    whole, split = evaluate_both(tmp_path, source, monkeypatch)
    assert_same(whole, split)
    assert len(whole.zone.records) == 2999


def test_a_file_too_big_for_one_lua_function_evaluates_split(tmp_path, monkeypatch):
    # 150,000 distinct owners and addresses: 300,000 constants, over Lua 5.1's 2^18 per function.
    lines = [f'a("host{i}", "10.{i >> 16}.{(i >> 8) & 255}.{i & 255}")' for i in range(150_000)]
    lines[0] = "-- generated"
    source = ("\n".join(lines) + "\n").encode()
    path = tmp_path / "example.com.lua"
    path.write_bytes(source)
    with sandbox_module.LuaSandbox(split_threshold=1 << 40) as sandbox:
        whole = sandbox.evaluate("example.com.", [sandbox_module.Chunk("example.com.lua", source)])
    assert whole.status == "syntax" and "constant table overflow" in whole.error
    result = evaluate_lua_zone(tmp_path, path, "example.com.")
    assert result.findings == () and len(result.zone.records) == 149_999
    assert result.zone.records[-1] == Record("host149999.example.com.", "A", 3600, "10.2.73.239", "example.com.lua", 150_000)


@pytest.mark.parametrize("source, wrapped", [
    ('a("h1", "192.0.2.1")\n' * 5, 1),
    ('--[[\n' + 'a("h1", "192.0.2.1")\n' * 5 + ']]\n', 0),
    ('local s = [==[\n' + 'a("h1", "192.0.2.1")\n' * 5 + ']==]\n' + 'a("h2", "192.0.2.2")\n' * 3, 1),
    ('local s = "x\\\n' + 'a("h1", "192.0.2.1")\n' * 2 + '"\n', 0),
    ('txt("t", "-- not a comment [[ nor a string")\n' * 4, 1),
    ('a("h1", "192.0.2.1")\n' * 2, 0),
])
def test_split_wraps_only_runs_of_call_lines_in_code(source, wrapped):
    split = sandbox_module.split_constant_tables(source.encode())
    if not wrapped:
        assert split is None
        return
    assert split.count(sandbox_module.OPEN_CLOSURE) == wrapped
    assert split.count(b"\n") == source.count("\n")  # line numbers kept


def test_split_refuses_a_file_with_an_unfinished_long_comment():
    assert sandbox_module.split_constant_tables(b'--[[ never closed\n' + b'a("h", "192.0.2.1")\n' * 5) is None


@pytest.mark.parametrize("source", [
    # A while whose condition is a record call: the file is wrong, and splitting must not fix it.
    'while\n' + 'a("h1", "192.0.2.1")\n' * 5 + 'do end\n',
    # Calls in a table constructor, separated by ";": valid, and the split must not change it.
    't = {\n' + 'a("h1", "192.0.2.1");\n' * 5 + '}\ntxt("n", tostring(#t))\n',
    # A local record function becomes an upvalue of the closure: the same variable.
    'local count, real = 0, a\nlocal function a(n, ip) count = count + 1; return real(n, ip) end\n'
    + 'a("h1", "192.0.2.1")\n' * 5 + 'txt("count", tostring(count))\n',
    # An error raised by a redefined record function names the same line.
    'function a() error("boom", 2) end\n' + 'a("h1", "192.0.2.1")\n' * 5,
    'local r =\n' + 'a("h1", "192.0.2.1")\n' * 5,
])
def test_split_keeps_the_meaning_of_tricky_files(tmp_path, monkeypatch, source):
    whole, split = evaluate_both(tmp_path, source, monkeypatch)
    assert_same(whole, split)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.binary(max_size=300), st.from_regex(r"[A-Za-z0-9]{1,16}", fullmatch=True),
                          st.integers(0, 255)), min_size=1, max_size=10))
def test_caa_matches_dnspython(entries):
    source = "".join(f'caa("c{i}", {lua_literal(value)}, "{tag}", {flag})\n' for i, (value, tag, flag) in enumerate(entries))
    result = evaluate_source(source)
    assert not result.findings
    for record in result.zone.records:
        assert canonical_rdata("CAA", record.data, "example.com.") == record.data


# -- several sandbox workers side by side ------------------------------------------------------------


def test_sandbox_workers_follow_the_zone_count_and_the_cpus(monkeypatch):
    from publisher.zone import lua_zone

    monkeypatch.setattr(lua_zone.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3, 4, 5, 6, 7})
    assert [lua_zone.sandbox_workers(n) for n in (1, 31, 32, 64, 96, 10_000)] == [1, 1, 1, 2, 3, 4]
    monkeypatch.setattr(lua_zone.os, "sched_getaffinity", lambda pid: {0})
    assert lua_zone.sandbox_workers(10_000) == 1


def test_zones_evaluated_by_several_workers_equal_one_worker_in_order_and_failures(tmp_path, monkeypatch):
    """Many zones split over sandbox workers give exactly what one worker gives, zone by zone, in
    the order asked, and a zone that breaks (syntax, runtime error, CPU limit) fails alone."""
    from publisher.zone import lua_zone
    from publisher.zone.sandbox import SandboxLimits

    monkeypatch.setattr(lua_zone.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    (tmp_path / "templates.lua").write_text('function web(ip)\n  a("www", ip)\n  mx(_a, "mail.example.net.", 10)\nend\n')
    zones = []
    for index in range(80):
        origin = f"z{index:03d}.example."
        body = f'a(_a, "192.0.2.{index % 250}")\nweb("198.51.100.{index % 250}")\ntxt(_a, "zone {index}")\n'
        if index == 7:
            body = 'a(_a, "192.0.2.1"\n'  # syntax error
        elif index == 41:
            body = 'error("broken on purpose")\n'
        elif index == 66:
            body = "while true do end\n"  # the CPU limit
        path = tmp_path / f"{origin}lua"
        path.write_text(body)
        zones.append((path, origin))
    limits = SandboxLimits(cpu_seconds=1.0, wall_seconds=10.0)
    assert lua_zone.sandbox_workers(len(zones)) == 2
    parallel = evaluate_lua_zones(tmp_path, zones, limits=limits)
    monkeypatch.setattr(lua_zone.os, "sched_getaffinity", lambda pid: {0})
    serial = evaluate_lua_zones(tmp_path, zones, limits=limits)
    assert [r.origin for r in parallel] == [origin for _, origin in zones]
    assert parallel == serial
    broken = {r.origin for r in parallel if r.zone is None}
    assert broken == {"z007.example.", "z041.example.", "z066.example."}
    assert {len(r.zone.records) for r in parallel if r.zone is not None} == {4}
    assert not any(f.is_error for r in parallel if r.zone is not None for f in r.findings)
