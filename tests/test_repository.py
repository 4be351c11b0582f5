"""The LuaDNS repository layout: zone files, companions, skipped files, layout mistakes."""

from pathlib import Path

from publisher.model import IgnoreRule
from publisher.zone.repository import BIND, LUA, discover, origin_from_file_name, zone_name_problem


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_zone_files_companions_and_skipped(tmp_path):
    repo = write(tmp_path, {
        "example.com.lua": 'a("", "192.0.2.1")\n',
        "example.com.clones": "# comment\nexample.net\n\nEXAMPLE.org.\n",
        "example.io.bind": "",
        "legacy.test.zone": "",
        "legacy.test.yml": "slaves:\n  - 192.0.2.7\n  - 2001:db8::7\n",
        "templates/mail.lua": "",
        "templates.lua": "",
        "README.md": "",
        "scripts/deploy.sh": "",
        ".gitignore": "",
    })
    layout = discover(repo)
    assert [(s.origin, s.kind, s.file) for s in layout.sources] == [
        ("example.com.", LUA, "example.com.lua"),
        ("example.io.", BIND, "example.io.bind"),
        ("legacy.test.", BIND, "legacy.test.zone"),
    ]
    assert layout.sources[0].clones == (("example.net.", 2), ("example.org.", 4))
    assert layout.sources[2].secondaries == ("192.0.2.7", "2001:db8::7")
    assert layout.skipped == ("README.md", "scripts/")
    assert layout.findings == ()


def test_layout_mistakes_are_findings_with_file_and_line(tmp_path):
    repo = write(tmp_path, {
        "example.com.lua": "",
        "example.com.bind": "",
        "example.com.clones": "good.example\nnot a domain\n",
        "bad_-.lua": "",
        "other.test.lua": "",
        "other.test.yml": "slaves: [not-an-ip]\nmasters: []\n",
    })
    codes = {(f.code, f.file, f.line) for f in discover(repo).findings}
    assert ("duplicate-zone", "example.com.lua", 0) in codes
    assert ("invalid-clone-name", "example.com.clones", 2) in codes
    assert ("invalid-zone-file-name", "bad_-.lua", 0) in codes
    assert ("invalid-secondary-address", "other.test.yml", 0) in codes
    assert ("unknown-zone-setting", "other.test.yml", 0) in codes


def test_symlinked_zone_file_outside_repository_is_rejected(tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_text("secret")
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "leak.test.bind").symlink_to(outside)
    layout = discover(repo)
    assert layout.sources == ()
    assert [f.code for f in layout.findings] == ["symlink-outside-repository"]


def test_origin_from_file_name_and_name_problems():
    assert origin_from_file_name("Example.COM.lua") == "example.com."
    assert origin_from_file_name("1.168.192.in-addr.arpa.lua") == "1.168.192.in-addr.arpa."
    assert origin_from_file_name("example.com.db") == "example.com."
    assert zone_name_problem("example.com.") is None
    assert "empty label" in zone_name_problem("example..com.")
    assert "not a valid DNS label" in zone_name_problem("exa mple.com.")
    assert "longer than 255" in zone_name_problem(("a" * 60 + ".") * 5)


def test_ignore_rule_wildcards():
    rule = IgnoreRule("_acme-challenge.%", "TXT")
    assert rule.matches("_acme-challenge.www.example.com.", "TXT")
    assert not rule.matches("_acme-challenge.www.example.com.", "A")
    assert not rule.matches("www.example.com.", "TXT")
    assert IgnoreRule("%.dyn.example.com.", "*").matches("host.dyn.example.com.", "AAAA")
    assert IgnoreRule("exact.example.com.", "A").matches("exact.example.com.", "A")
    assert not IgnoreRule("exact.example.com.", "A").matches("other.example.com.", "A")


# -- hostile repositories: every file confined, bounded, and a finding on its own zone ----------

import os

import pytest

from publisher.zone.repository import MAX_COMPANION_BYTES, MAX_SETTINGS_DEPTH


def findings_of(repo: Path) -> list[tuple[str, str, str]]:
    return [(f.code, f.zone, f.file) for f in discover(repo).findings]


def test_companion_links_outside_are_refused_without_quoting_them(tmp_path):
    secret = tmp_path / "id_ed25519"
    secret.write_text("slaves: [192.0.2.66]\nsecret-key-material\n")
    repo = write(tmp_path / "repo", {"a.test.lua": "", "b.test.lua": ""})
    (repo / "a.test.clones").symlink_to(secret)
    (repo / "a.test.yml").symlink_to("/proc/self/environ")
    (repo / "b.test.yaml").symlink_to("../id_ed25519")
    layout = discover(repo)
    assert [(f.code, f.zone, f.file) for f in layout.findings] == [
        ("symlink-outside-repository", "a.test.", "a.test.clones"),
        ("symlink-outside-repository", "a.test.", "a.test.yml"),
        ("symlink-outside-repository", "b.test.", "b.test.yaml"),
    ]
    assert [s.origin for s in layout.sources] == ["a.test.", "b.test."]
    assert all(s.secondaries == () and s.clones == () for s in layout.sources)
    assert not any("secret" in f.message or "192.0.2.66" in f.message for f in layout.findings)


def test_companion_links_inside_the_repository_are_followed(tmp_path):
    repo = write(tmp_path, {"a.test.lua": "", "shared/clones.txt": "a.example\n", "shared/s.yml": "slaves: 192.0.2.5\n"})
    (repo / "a.test.clones").symlink_to("shared/clones.txt")
    (repo / "a.test.yml").symlink_to("shared/s.yml")
    [source] = discover(repo).sources
    assert source.clones == (("a.example.", 1),) and source.secondaries == ("192.0.2.5",)


def test_a_fifo_companion_is_refused_without_blocking(tmp_path):
    repo = write(tmp_path, {"a.test.lua": ""})
    os.mkfifo(repo / "a.test.clones")
    assert findings_of(repo) == [("file-not-regular", "a.test.", "a.test.clones")]


def test_oversized_files_are_refused(tmp_path):
    repo = write(tmp_path, {"a.test.lua": "", "big.test.bind": "x" * 5000,
                            "a.test.clones": "a.example\n" * (MAX_COMPANION_BYTES // 10 + 1)})
    layout = discover(repo, max_zone_bytes=4096)
    assert [(f.code, f.file, f.message) for f in layout.findings] == [
        ("file-too-large", "a.test.clones", "a.test.clones is larger than the limit of 1 MiB"),
        ("file-too-large", "big.test.bind", "big.test.bind is larger than the limit of 4 KiB"),
    ]
    assert [s.origin for s in layout.sources] == ["a.test."]


def test_symlink_loops_are_findings(tmp_path):
    repo = write(tmp_path, {"a.test.lua": ""})
    (repo / "loop.test.bind").symlink_to("loop.test.bind")
    (repo / "a.test.yml").symlink_to("a.test.yml")
    assert findings_of(repo) == [("file-unreadable", "a.test.", "a.test.yml"),
                                 ("file-unreadable", "loop.test.", "loop.test.bind")]


@pytest.mark.parametrize("text, message", [
    ("a: &a [x, x]\nslaves: [*a, *a]\n", "YAML aliases (*name) are not accepted"),
    ("slaves: " + "[" * 5000 + "]" * 5000 + "\n", f"nested more than {MAX_SETTINGS_DEPTH} levels deep"),
    ("slaves: 5\n", "slaves must be a list of IP addresses, e.g. 'slaves: [192.0.2.1]', not 5"),
    ("slaves: {a: 1}\n", "slaves must be a list of IP addresses, e.g. 'slaves: [192.0.2.1]', not a mapping"),
    ("slaves: [2001-02-30]\n", "not valid YAML: day is out of range for month"),
    ("slaves: [\n", "not valid YAML"),
], ids=["alias", "depth", "int", "mapping", "bad-date", "syntax"])
def test_hostile_settings_are_findings(tmp_path, text, message):
    repo = write(tmp_path, {"a.test.bind": "", "a.test.yml": text})
    [finding] = discover(repo).findings
    assert (finding.code, finding.zone, finding.file) == ("invalid-zone-settings", "a.test.", "a.test.yml")
    assert finding.message.startswith(message)


def test_settings_that_are_not_addresses_are_described_not_expanded(tmp_path):
    repo = write(tmp_path, {"a.test.bind": "", "a.test.yml": "slaves: [[1, 2], 7, 192.0.2.1]\n"})
    layout = discover(repo)
    assert [f.message for f in layout.findings] == ["slaves: a list is not an IP address",
                                                    "slaves: 7 is not an IP address"]
    assert layout.sources[0].secondaries == ("192.0.2.1",)


def test_companions_that_are_not_utf8_are_findings_with_the_line(tmp_path):
    repo = write(tmp_path, {"a.test.bind": ""})
    (repo / "a.test.yml").write_bytes(b"# ok\nslaves: [\xff]\n")
    (repo / "a.test.clones").write_bytes(b"\xfe.test\n")
    assert [(f.code, f.file, f.message) for f in discover(repo).findings] == [
        ("file-not-utf8", "a.test.clones", "a.test.clones is not valid UTF-8 (line 1)"),
        ("file-not-utf8", "a.test.yml", "a.test.yml is not valid UTF-8 (line 2)"),
    ]


def test_file_names_that_are_not_utf8_print_as_escapes(tmp_path):
    repo = write(tmp_path, {"a.test.lua": ""})
    (repo / os.fsdecode(b"b\xff.test.bind")).write_text("")
    (repo / os.fsdecode(b"notes\xff.txt")).write_text("")
    layout = discover(repo)
    assert [(f.code, f.zone, f.file) for f in layout.findings] == [
        ("invalid-zone-file-name", "b\\xff.test.", "b\\xff.test.bind")]
    assert layout.skipped == ("notes\\xff.txt",)
    assert [s.origin for s in layout.sources] == ["a.test."]


def test_companions_of_no_zone_are_warnings(tmp_path):
    repo = write(tmp_path, {"example.com.lua": "", "example.com.lua.clones": "x.test\n",
                            "EXAMPLE.COM.yaml": "", "orphan.test.yml": "", "example.com.clones": ""})
    findings = [(f.severity, f.code, f.zone, f.file) for f in discover(repo).findings]
    assert findings == [
        ("warning", "companion-without-zone", "example.com.", "EXAMPLE.COM.yaml"),
        ("warning", "companion-without-zone", "example.com.", "example.com.lua.clones"),
        ("warning", "companion-without-zone", "", "orphan.test.yml"),
    ]
