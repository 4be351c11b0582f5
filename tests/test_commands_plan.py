"""The plan, apply and import commands through the real CLI entry point."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from publisher.cli import main

CONFIG = """
[source]
path = "zones"
[defaults]
nameservers = ["ns1.nameservers.example.", "ns2.nameservers.example."]
hostmaster = "hostmaster.nameservers.example."
[[provider]]
name = "files"
type = "zonefile"
directory = "served"
[state]
path = "state.db"
"""

ZONE = """a("", "192.0.2.1")
a("www", "192.0.2.2", 300)
aaaa("www", "2001:db8::2", 300)
mx("", "mx.example.net", 10)
srv("_sip._tcp", "sip.example.net", 5060, 10, 20)
caa("", "letsencrypt.org")
txt("", "v=spf1 -all")
txt("long", string.rep("abcdefghij", 40))
rr("two", "TXT", '"first" "second"')
cname("docs", "example.github.io")
sshfp("www", 4, "0123456789abcdef0123456789abcdef01234567", 1)
tlsa("_443._tcp.www", 3, "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", 1, 1)
ds("sub", 12345, "0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF", 13, 2)
ns("sub", "ns.sub.example.com")
a("ns.sub", "192.0.2.53")
ptr("1.rev", "host.example.com")
"""


@pytest.fixture
def setup(tmp_path: Path) -> Path:
    (tmp_path / "zones").mkdir()
    (tmp_path / "zones" / "example.com.lua").write_text(ZONE)
    (tmp_path / "config.toml").write_text(CONFIG)
    return tmp_path


def cli(*args: str) -> int:
    return main(list(args))


def test_plan_formats_and_exit_status(setup, capsys):
    config = str(setup / "config.toml")
    assert cli("plan", "--config", config, "--format", "json") == 0
    data = json.loads(capsys.readouterr().out)
    assert {"zones", "checksum", "outcomes", "findings", "error", "counts", "status"} <= set(data)
    (zone,) = data["zones"]
    assert (zone["zone"], zone["provider"]) == ("example.com.", "files")
    assert {"action": "create", "name": "www.example.com.", "type": "A", "ttl": 300, "old": [],
            "new": ["192.0.2.2"]} in zone["changes"]

    assert cli("plan", "--config", config) == 0
    text = capsys.readouterr().out
    assert "+ www.example.com. 300 A 192.0.2.2" in text and data["checksum"] in text
    assert cli("plan", "--config", config, "--format", "markdown") == 0
    assert "### `example.com.` → files" in capsys.readouterr().out
    assert not (setup / "served").exists() or not list((setup / "served").glob("*.zone"))  # plan applies nothing


def test_apply_with_checksum_then_plan_is_empty(setup, capsys):
    config = str(setup / "config.toml")
    cli("plan", "--config", config, "--format", "json")
    checksum = json.loads(capsys.readouterr().out)["checksum"]
    assert cli("apply", "--config", config, "--checksum", "0" * 64) == 1
    assert "checksum" in capsys.readouterr().out
    assert cli("apply", "--config", config, "--checksum", checksum) == 0
    assert "example.com. -> files: applied" in capsys.readouterr().out
    assert cli("plan", "--config", config, "--format", "json") == 0
    assert json.loads(capsys.readouterr().out)["zones"][0]["changes"] == []


def test_apply_exits_1_on_an_unsafe_plan(setup, capsys):
    config = str(setup / "config.toml")
    assert cli("apply", "--config", config) == 0
    (setup / "zones" / "example.com.lua").write_text(ZONE + 'ns("", "ns9.nameservers.example")\n')
    assert cli("apply", "--config", config) == 1
    assert "apex-ns-change" in capsys.readouterr().out
    assert cli("apply", "--config", config, "--force") == 0


def test_bad_configuration_exits_2_without_a_traceback(setup, capsys):
    (setup / "bad.toml").write_text("[defaults]\nttl = 'soon'\n")
    assert cli("plan", "--config", str(setup / "bad.toml")) == 2
    assert "ttl must be int" in capsys.readouterr().err
    assert cli("apply", "--config", str(setup / "missing.toml")) == 2


@pytest.mark.parametrize("fmt, name", [("lua", "example.com.lua"), ("bind", "example.com.bind")])
def test_import_round_trips_through_the_repository(setup, capsys, fmt, name):
    """Import what the provider serves, commit it as the zone file: the plan is then empty."""
    config = str(setup / "config.toml")
    assert cli("apply", "--config", config) == 0
    capsys.readouterr()
    assert cli("import", "--config", config, "--provider", "files", "--zone", "example.com", "--format", fmt) == 0
    imported = capsys.readouterr().out
    if fmt == "lua":
        assert 'a("www", "192.0.2.2", 300)' in imported and 'mx("", "mx.example.net", 10)' in imported
        assert 'srv("_sip._tcp", "sip.example.net", 5060, 10, 20)' in imported
        assert 'rr("two", "TXT", "\\"first\\" \\"second\\"")' in imported and "\"SOA\"" not in imported
    else:
        assert "IN SOA" in imported
    (setup / "zones" / "example.com.lua").unlink()
    (setup / "zones" / name).write_text(imported)
    assert cli("plan", "--config", config, "--format", "json") == 0
    assert json.loads(capsys.readouterr().out)["zones"][0]["changes"] == []


def test_import_of_an_unknown_zone_or_provider(setup, capsys):
    config = str(setup / "config.toml")
    assert cli("import", "--config", config, "--provider", "files", "--zone", "nowhere.example") == 1
    assert "does not serve zone nowhere.example." in capsys.readouterr().err
    assert cli("import", "--config", config, "--provider", "ghost", "--zone", "example.com") == 1
    assert "no provider named 'ghost'" in capsys.readouterr().err
