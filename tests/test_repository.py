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
