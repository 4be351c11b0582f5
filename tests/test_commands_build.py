"""`zone-publisher build` as a user runs it: the SOA and apex NS that `apply` publishes, from
--config or the embedded default, in canonical order, loadable by named-checkzone."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import dns.rdatatype
import dns.zone

from publisher.config import Config

REPO_ROOT = Path(__file__).parent.parent

CONFIG = """
[source]
path = "zones"
[defaults]
ttl = 1800
nameservers = ["ns1.dns.example.", "ns2.dns.example."]
hostmaster = "dns-admin@example.org"
refresh = 7200
retry = 900
expire = 1209600
minimum = 120
[[provider]]
name = "files"
type = "zonefile"
directory = "served"
[state]
path = "state.db"
[zones."example.org"]
ttl = 900
"""

ZONES = {
    "example.com.lua": 'a("www", "192.0.2.1")\nmx("", "mx20.example.net", 20)\nmx("", "mx5.example.net", 5)\n'
                       'mx("", "mx10.example.net", 10)\n',
    # Migrated from another provider: its SOA and NS must not survive.
    "example.org.bind": "$TTL 600\n@ IN SOA ns1.oldprovider.example. admin.oldprovider.example. 7 7200 900 "
                        "604800 86400\n@ IN NS ns1.oldprovider.example.\n@ IN NS ns2.oldprovider.example.\n"
                        "www IN A 198.51.100.1\n",
}


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "publisher", *args], cwd=cwd or REPO_ROOT,
                          capture_output=True, text=True, timeout=120)


def make_repo(root: Path) -> Path:
    zones = root / "zones"
    zones.mkdir(parents=True)
    for name, text in ZONES.items():
        (zones / name).write_text(text)
    (root / "config.toml").write_text(CONFIG)
    return zones


def records(path: Path, origin: str) -> set[tuple[str, str, int, str]]:
    zone = dns.zone.from_file(str(path), origin=origin, relativize=False)
    return {(name.to_text(), dns.rdatatype.to_text(rdataset.rdtype), rdataset.ttl, rdata.to_text())
            for name, rdataset in zone.iterate_rdatasets() for rdata in rdataset}


def without_serial(found: set[tuple[str, str, int, str]]) -> set[tuple]:
    return {(n, t, ttl, " ".join(d.split()[:2] + d.split()[3:]) if t == "SOA" else d) for n, t, ttl, d in found}


def test_build_with_config_writes_what_apply_publishes(tmp_path):
    zones = make_repo(tmp_path)
    applied = run_cli("apply", "--config", str(tmp_path / "config.toml"))
    assert applied.returncode == 0, applied.stdout + applied.stderr
    built = run_cli("build", str(zones), "--out", str(tmp_path / "out"), "--config", str(tmp_path / "config.toml"))
    assert built.returncode == 0, built.stdout + built.stderr
    assert "[apex-ns-replaced]" in built.stderr  # the same warning apply gives
    for origin in ("example.com.", "example.org."):
        name = origin.rstrip(".")
        ours, served = tmp_path / "out" / f"{name}.zone", tmp_path / "served" / f"{name}.zone"
        assert without_serial(records(ours, origin)) == without_serial(records(served, origin))
        text = ours.read_text()
        assert f"from configuration {tmp_path / 'config.toml'}" in text and "oldprovider" not in text
    org = records(tmp_path / "out" / "example.org.zone", "example.org.")
    (soa,) = [d for n, t, _, d in org if t == "SOA"]
    assert soa.split()[:2] == ["ns1.dns.example.", "dns-admin.example.org."]
    assert soa.split()[3:] == ["7200", "900", "1209600", "120"]
    assert {(t, ttl) for n, t, ttl, _ in org if n == "example.org." and t in ("SOA", "NS")} == {("SOA", 900),
                                                                                             ("NS", 900)}
    check = subprocess.run(["named-checkzone", "example.org", str(tmp_path / "out" / "example.org.zone")],
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stdout


def test_build_without_config_uses_the_embedded_default_and_says_so(tmp_path):
    zones = make_repo(tmp_path)
    built = run_cli("build", str(zones), "--out", str(tmp_path / "out"))
    assert built.returncode == 0, built.stdout + built.stderr
    default = Config.default()
    text = (tmp_path / "out" / "example.com.zone").read_text()
    assert ".invalid." not in text and "embedded default configuration (publisher/default.toml)" in text
    found = records(tmp_path / "out" / "example.com.zone", "example.com.")
    assert {d for n, t, _, d in found if t == "NS"} == set(default.defaults.nameservers)
    (soa,) = [d for n, t, _, d in found if t == "SOA"]
    assert soa.split()[:2] == [default.defaults.nameservers[0], default.defaults.hostmaster]
    # Canonical order: MX by preference as on the wire, not as text (10, 20, 5).
    assert [line.split()[-2] for line in text.splitlines() if " MX " in line] == ["5", "10", "20"]
    check = subprocess.run(["named-checkzone", "example.com", str(tmp_path / "out" / "example.com.zone")],
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stdout


def test_build_with_an_unreadable_config_exits_2_and_names_it(tmp_path):
    zones = make_repo(tmp_path)
    (tmp_path / "bad.toml").write_text("[defaults]\nttl = \"soon\"\n")
    built = run_cli("build", str(zones), "--out", str(tmp_path / "out"), "--config", str(tmp_path / "bad.toml"))
    assert built.returncode == 2 and "bad.toml" in built.stderr and "ttl" in built.stderr
    assert "Traceback" not in built.stderr and not (tmp_path / "out").exists()
