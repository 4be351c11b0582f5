"""The plan, apply and import commands through the real CLI entry point."""

from __future__ import annotations

import json
import re
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
            "new": ["192.0.2.2"], "old_ttl": 0} in zone["changes"]

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


# -- plan --format json carries everything the text plan shows (issue 9) -----------------------

MANY = "".join(f'a("h{i}", "192.0.2.{i}")\n' for i in range(20))
FIRST = {"keep.test.lua": 'a("", "192.0.2.1")\n', "gone.test.lua": 'a("", "192.0.2.2")\n',
         "big.test.lua": MANY, "broken.test.lua": 'a("www", "192.0.2.3")\n',
         "edit.test.lua": 'a("", "192.0.2.4", 300)\n'}
SECOND = {"keep.test.lua": FIRST["keep.test.lua"], "big.test.lua": MANY[:MANY.index('a("h10"')],
          "broken.test.lua": 'cname("www", "elsewhere.example.net")\na("www", "192.0.2.3")\n',
          "edit.test.lua": 'a("", "192.0.2.4", 600)\n', "new.test.lua": 'a("", "192.0.2.5")\n',
          "orphan.example.lua": 'a("", "192.0.2.6")\n'}

HEADER = re.compile(r"^(?P<zone>\S+) -> (?P<provider>\S+)(?P<new> \(new zone\))?(?P<delete> \(DELETE ZONE\))?"
                    r"(?:  serial (?P<before>\S+) -> (?P<after>\d+))?(?P<none>  no changes)?$")
CHANGE = re.compile(r"^  (?P<sign>[+-]) (?P<name>\S+) (?P<ttl>\d+) (?P<type>\S+) (?P<data>.+)$")
FINDING = re.compile(r"^(?P<where>\S+): (?P<severity>error|warning): (?P<message>.*) \[(?P<code>[a-z0-9-]+)\]$")
SUMMARY = re.compile(r"^(?P<changes>\d+) change\(s\) in (?P<zones>\d+) zone\(s\); checksum (?P<checksum>[0-9a-f]{64})$")
OUTCOME = re.compile(r"^(?P<zone>\S+) -> (?P<provider>\S+): (?P<status>[a-z-]+)$")


def finding_facts(item: dict) -> tuple:
    return (item["severity"], item["code"], item["message"])


def text_facts(out: str, err: str) -> dict:
    """What the text plan says, read from its lines alone."""
    facts = {"plans": {}, "outcomes": {}, "run_findings": [], "error": None, "summary": None}
    current = None
    for line in out.splitlines():
        if (match := SUMMARY.match(line)):
            facts["summary"] = (int(match["changes"]), int(match["zones"]), match["checksum"])
        elif (match := HEADER.match(line)):
            current = {"create": bool(match["new"]), "delete": bool(match["delete"]), "none": bool(match["none"]),
                       "serials": (match["before"], match["after"]) if match["after"] else None,
                       "changes": [], "findings": []}
            facts["plans"][(match["zone"], match["provider"])] = current
        elif (match := CHANGE.match(line)):
            current["changes"].append((match["sign"], match["name"], int(match["ttl"]), match["type"], match["data"]))
        elif line.startswith("  ") and (match := FINDING.match(line.strip())):
            current["findings"].append((match["severity"], match["code"], match["message"]))
        else:
            raise AssertionError(f"a text plan line this test does not understand: {line!r}")
    for line in err.splitlines():
        if (match := OUTCOME.match(line)):
            current = {"status": match["status"], "findings": [], "error": ""}
            facts["outcomes"][(match["zone"], match["provider"])] = current
        elif line.startswith("  error: "):
            current["error"] = line[len("  error: "):]
        elif line.startswith("  ") and (match := FINDING.match(line.strip())):
            current["findings"].append((match["severity"], match["code"], match["message"]))
        elif line.startswith("error: "):
            facts["error"] = line[len("error: "):]
        elif (match := FINDING.match(line)):
            facts["run_findings"].append((match["severity"], match["code"], match["message"]))
        else:
            raise AssertionError(f"a stderr line this test does not understand: {line!r}")
    return facts


def change_lines(change: dict) -> set[tuple]:
    """The (sign, name, ttl, type, data) facts one JSON change holds."""
    minus = {("-", change["name"], change["old_ttl"] or change["ttl"], change["type"], d) for d in change["old"]}
    plus = {("+", change["name"], change["ttl"], change["type"], d) for d in change["new"]}
    return minus | plus


def assert_json_holds_the_text(facts: dict, data: dict) -> None:
    plans = {(p["zone"], p["provider"]): p for p in data["zones"]}
    outcomes = {(o["zone"], o["provider"]): o for o in data["outcomes"]}
    assert set(facts["plans"]) <= set(plans) and set(facts["outcomes"]) <= set(outcomes)
    for key, said in facts["plans"].items():
        plan, outcome = plans[key], outcomes[key]
        assert plan["create_zone"] == said["create"] and plan["delete_zone"] == said["delete"], key
        assert plan["has_changes"] == (not said["none"]), key
        if said["serials"]:
            before, after = said["serials"]
            assert plan["serial_before"] == (None if before == "-" else int(before)), key
            assert plan["serial_after"] == int(after) == outcome["serial_after"], key
        assert set(said["changes"]) <= set().union(*map(change_lines, plan["changes"]), set()), key
        assert set(said["findings"]) <= {finding_facts(f) for f in plan["findings"]}, key
        assert set(said["findings"]) <= {finding_facts(f) for f in outcome["findings"]}, key
        blocked = any(severity == "error" for severity, _, _ in said["findings"])
        assert plan["blocked"] == blocked and (outcome["status"] == "blocked") == blocked, key
        assert outcome["has_problems"] or not blocked, key
    for key, said in facts["outcomes"].items():
        outcome = outcomes[key]
        assert outcome["status"] == said["status"] and outcome["error"] == said["error"] and outcome["has_problems"]
        assert set(said["findings"]) <= {finding_facts(f) for f in outcome["findings"]}, key
    assert set(facts["run_findings"]) == {finding_facts(f) for f in data["findings"]}
    assert data["error"] == (facts["error"] or "")
    if facts["summary"]:
        assert (data["change_count"], data["changed_zones"], data["checksum"]) == facts["summary"]
    statuses = [o["status"] for o in data["outcomes"]]
    assert data["counts"] == {status: statuses.count(status) for status in set(statuses)}


def plan_both_ways(config: str, capsys) -> tuple[dict, dict]:
    assert cli("plan", "--config", config) == 0
    captured = capsys.readouterr()
    facts = text_facts(captured.out, captured.err)
    assert cli("plan", "--config", config, "--format", "json") == 0
    return facts, json.loads(capsys.readouterr().out)


def test_json_plan_carries_creation_deletion_blocked_kept_serials_and_findings(tmp_path, capsys):
    zones = tmp_path / "zones"
    zones.mkdir()
    for name, text in FIRST.items():
        (zones / name).write_text(text)
    (tmp_path / "config.toml").write_text(CONFIG.replace('directory = "served"',
                                                         'directory = "served"\nzones = ["*.test"]'))
    config = str(tmp_path / "config.toml")
    assert cli("apply", "--config", config) == 0
    for path in zones.iterdir():
        path.unlink()
    for name, text in SECOND.items():
        (zones / name).write_text(text)
    capsys.readouterr()

    facts, data = plan_both_ways(config, capsys)
    # The scenario is the one asked for, as the text tells it.
    plans, outcomes = facts["plans"], facts["outcomes"]
    assert plans[("new.test.", "files")]["create"] and plans[("gone.test.", "files")]["delete"]
    assert ("error", "zone-deletion-needs-force") in {f[:2] for f in plans[("gone.test.", "files")]["findings"]}
    assert ("error", "too-many-deletes") in {f[:2] for f in plans[("big.test.", "files")]["findings"]}
    assert plans[("keep.test.", "files")]["none"] and plans[("edit.test.", "files")]["serials"]
    assert ("-", "edit.test.", 300, "A", "192.0.2.4") in plans[("edit.test.", "files")]["changes"]
    assert outcomes[("broken.test.", "files")]["status"] == "kept-last-good"
    assert any(code == "no-provider" for _, code, _ in facts["run_findings"])
    assert_json_holds_the_text(facts, data)
    assert {o["zone"]: o["status"] for o in data["outcomes"]} == {
        "keep.test.": "unchanged", "edit.test.": "planned", "new.test.": "planned", "big.test.": "blocked",
        "gone.test.": "blocked", "broken.test.": "kept-last-good"}
    assert data["status"] == "problems" and data["has_problems"]


def test_json_plan_carries_the_run_error(tmp_path, capsys):
    (tmp_path / "config.toml").write_text(CONFIG)
    (tmp_path / "zones").write_text("a file where the zone directory should be")
    facts, data = plan_both_ways(str(tmp_path / "config.toml"), capsys)
    assert facts["error"] and "not a directory" in facts["error"]
    assert_json_holds_the_text(facts, data)
    assert data["status"] == "failed"
