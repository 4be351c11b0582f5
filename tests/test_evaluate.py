"""Evaluating whole repositories: Lua and BIND side by side, clones, settings, isolation."""

import shutil
from pathlib import Path

import pytest

from publisher.zone.evaluate import evaluate_file, evaluate_repository

REPO_ROOT = Path(__file__).parent.parent
EXAMPLE_ZONES = REPO_ROOT / "zones"


@pytest.fixture
def example_repo(tmp_path) -> Path:
    target = tmp_path / "zones"
    shutil.copytree(EXAMPLE_ZONES, target)
    return target


def by_origin(result):
    return {z.origin: z for z in result.zones}


def test_example_repository_evaluates_without_errors():
    result = evaluate_repository(EXAMPLE_ZONES)
    zones = by_origin(result)
    assert set(zones) == {"example.com.", "example.net.", "example.org.", "example.io.",
                          "2.0.192.in-addr.arpa.", "shop.example."}
    errors = [f.to_text() for z in result.zones for f in z.findings if f.is_error]
    assert errors == []
    assert result.skipped == ("README.md",)
    com = zones["example.com."].zone
    assert ("www.example.com.", "A", "192.0.2.10") in {(r.name, r.type, r.data) for r in com.records}
    assert any(r.name == "fm1._domainkey.example.com." and r.type == "CNAME" for r in com.records)
    assert zones["example.com."].zone.ignores[0].matches("_acme-challenge.www.example.com.", "TXT")
    assert zones["shop.example."].zone.secondaries == ("192.0.2.200",)
    reverse = zones["2.0.192.in-addr.arpa."].zone
    assert ("10.2.0.192.in-addr.arpa.", "PTR", "www.example.com.") in {(r.name, r.type, r.data)
                                                                        for r in reverse.records}


def test_clones_move_owner_names_and_keep_contents():
    zones = by_origin(evaluate_repository(EXAMPLE_ZONES))
    original = zones["example.com."].zone
    clone = zones["example.net."].zone
    assert clone.clone_of == "example.com."
    assert len(clone.records) == len(original.records)
    names = {r.name for r in clone.records}
    assert "www.example.net." in names and "www.example.com." not in names
    status = next(r for r in clone.records if r.name == "status.example.net.")
    assert status.data == "www.example.com."  # contents are copied as they are, like LuaDNS
    assert clone.ignores[0].matches("_acme-challenge.example.net.", "TXT")


def test_a_broken_zone_fails_alone_and_its_clones_with_it(example_repo):
    (example_repo / "example.com.lua").write_text('a("www", "192.0.2.1")\ncnae("docs", "x.example.net")\n')
    zones = by_origin(evaluate_repository(example_repo))
    broken = zones["example.com."]
    assert broken.has_errors
    error = next(f for f in broken.findings if f.is_error)
    assert (error.file, error.line) == ("example.com.lua", 2)
    assert [f.code for f in zones["example.net."].findings] == ["clone-source-has-errors"]
    assert not zones["example.io."].has_errors
    assert not zones["shop.example."].has_errors


def test_validation_findings_carry_file_and_line(example_repo):
    (example_repo / "example.io.bind").write_text(
        "$TTL 300\n@ IN SOA ns1.example.net. h.example.net. 1 3600 600 1209600 300\n"
        "@ IN NS ns1.example.net.\n@ IN NS ns2.example.net.\n"
        "www IN CNAME web\nwww IN A 192.0.2.1\nweb IN A 192.0.2.2\n")
    zone = by_origin(evaluate_repository(example_repo))["example.io."]
    cname_errors = [f for f in zone.findings if f.code == "cname-and-other-data"]
    assert cname_errors and cname_errors[0].file == "example.io.bind" and cname_errors[0].line in (5, 6)


def test_single_bind_file_needs_its_own_soa_and_ns(tmp_path):
    path = tmp_path / "example.test.bind"
    path.write_text("$TTL 300\nwww IN A 192.0.2.1\n")
    result = evaluate_file(path)
    assert result.origin == "example.test."
    assert result.has_errors
    codes = {f.code for f in result.findings if f.is_error}
    assert "soa-missing" in codes


def test_single_lua_file_uses_templates_beside_it(tmp_path):
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "web.lua").write_text('function web(n) a(n, "192.0.2.9") end\n')
    path = tmp_path / "site.test.lua"
    path.write_text('web("www")\n')
    result = evaluate_file(path, display_file="site.test.lua")
    assert not result.has_errors, [f.to_text() for f in result.findings]
    assert [(r.name, r.data) for r in result.zone.records if r.type == "A"] == [("www.site.test.", "192.0.2.9")]


def test_single_bind_file_without_ttl_falls_back_like_named_checkzone(tmp_path):
    path = tmp_path / "nottl.test.zone"
    path.write_text("@ IN SOA ns1.example.net. h.example.net. 1 3600 600 1209600 300\n"
                    "@ IN NS ns1.example.net.\n@ IN NS ns2.example.net.\nwww IN A 192.0.2.1\n")
    result = evaluate_file(path)
    assert not result.has_errors
    assert "ttl-from-soa-minimum" in {f.code for f in result.findings}
    assert {r.ttl for r in result.zone.records} == {300}


def test_the_realistic_test_repositories_lint_clean():
    """The LuaDNS-style repositories the tests use are themselves valid zones (clones included)."""
    for repo in (REPO_ROOT / "tests" / "data" / "lua" / "repo", REPO_ROOT / "tests" / "data" / "bind" / "repo"):
        result = evaluate_repository(repo)
        assert result.error_count == 0, [f.to_text() for z in result.zones for f in z.findings if f.is_error]
        assert len(result.zones) >= 1


# -- hostile repositories -------------------------------------------------------------------------

from publisher.model import ERROR, MAX_FINDINGS_PER_ZONE, MAX_MESSAGE_CHARS, WARNING, Finding, cap_findings
from publisher.zone.evaluate import EvaluationOptions
from publisher.zone.sandbox import SandboxLimits

SOA = "$TTL 60\n@ SOA ns1 hm 1 7200 3600 1209600 300\n@ NS ns1\n@ NS ns2\nns1 A 192.0.2.1\nns2 A 192.0.2.2\n"


def test_clones_count_against_the_record_limit(tmp_path):
    (tmp_path / "a.test.bind").write_text(SOA)  # 5 records
    (tmp_path / "a.test.clones").write_text("b.test\nc.test\n")
    (tmp_path / "d.test.lua").write_text('a("www", "192.0.2.9")\n')
    within = by_origin(evaluate_repository(tmp_path, EvaluationOptions(lua_limits=SandboxLimits(max_records=15))))
    assert not within["c.test."].has_errors and len(within["c.test."].zone.records) == 5
    over = by_origin(evaluate_repository(tmp_path, EvaluationOptions(lua_limits=SandboxLimits(max_records=14))))
    assert [(f.code, f.file, f.message) for f in over["a.test."].findings] == [
        ("zone-record-limit", "a.test.clones",
         "more than 14 records, the configured maximum: 5 records cloned 2 times make 15; remove clones or records")]
    assert [f.code for f in over["b.test."].findings] == ["clone-source-has-errors"]
    assert not over["d.test."].has_errors


def test_bind_zones_share_the_lua_record_limit(tmp_path):
    (tmp_path / "a.test.bind").write_text(SOA + "$GENERATE 1-10 h$ A 192.0.2.1\n")
    result = evaluate_repository(tmp_path, EvaluationOptions(lua_limits=SandboxLimits(max_records=10)))
    [zone] = result.zones
    assert zone.zone is None and [f.code for f in zone.findings] == ["zone-record-limit"]


def test_findings_are_capped_in_count_and_length():
    findings = [Finding(WARNING, "w", "a.test.", "a.test.lua", i, "x" * 2000) for i in range(150)]
    findings.append(Finding(ERROR, "e", "a.test.", "a.test.lua", 999, "late error"))
    capped = cap_findings(findings)
    assert len(capped) == MAX_FINDINGS_PER_ZONE + 1
    assert all(len(f.message) < MAX_MESSAGE_CHARS + 40 for f in capped)
    assert capped[0].message.endswith("... (1500 more characters)")
    summary = capped[-1]
    assert (summary.severity, summary.code) == (ERROR, "too-many-findings")  # a hidden error stays an error
    assert summary.message.startswith("51 more findings not shown (1 of them errors)")
    assert cap_findings(findings[:3]) == tuple(f._replace(message=f.message[:MAX_MESSAGE_CHARS] + "... (1500 more characters)")
                                               for f in findings[:3])


def test_repository_without_zones_has_a_repository_error(tmp_path):
    (tmp_path / "README.md").write_text("")
    (tmp_path / "x.test.yml").write_text("")
    result = evaluate_repository(tmp_path)
    assert result.zones == ()
    assert [(f.severity, f.code) for f in result.findings] == [("warning", "companion-without-zone"),
                                                               ("error", "no-zones")]
    assert (result.error_count, result.warning_count) == (1, 1)


def test_single_file_over_the_size_limit_is_refused(tmp_path):
    path = tmp_path / "big.test.lua"
    path.write_text('a("www", "192.0.2.1")\n' * 100)
    result = evaluate_file(path, options=EvaluationOptions(max_file_bytes=1024))
    assert result.zone is None and [f.code for f in result.findings] == ["file-too-large"]
