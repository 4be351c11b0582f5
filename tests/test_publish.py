"""publish() end to end: a real repository, evaluated by the real engine, published through the
zonefile provider (named-checkzone checks every file) and through RFC 2136 into a real BIND."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from publisher.config import Config, load_config_text
from publisher.model import Record
from publisher.publish.providers import create_provider
from publisher.outcome import APPLIED, BLOCKED, FAILED, KEPT_LAST_GOOD, PLANNED, UNCHANGED
from publisher.publish.orchestrator import publish
from publisher.publish.state import StateStore

NAMESERVERS = '["ns1.nameservers.example.", "ns2.nameservers.example."]'


def make_config(tmp_path: Path, extra: str = "", directory: str = "served", provider_extra: str = "") -> Config:
    text = f"""
[source]
path = "zones"
[defaults]
ttl = 3600
nameservers = {NAMESERVERS}
hostmaster = "hostmaster.nameservers.example."
[[provider]]
name = "files"
type = "zonefile"
directory = "{directory}"
{provider_extra}
[state]
path = "state.db"
{extra}
"""
    return load_config_text(text, base=tmp_path)


def write(repo: Path, name: str, text: str) -> None:
    repo.mkdir(parents=True, exist_ok=True)
    (repo / name).write_text(text)


def served(tmp_path: Path, origin: str, directory: str = "served") -> dict[tuple[str, str], set[str]]:
    """RRsets in the zone file the provider wrote, read back through the provider itself."""
    provider = create_provider(make_config(tmp_path, directory=directory).providers[0])
    snapshot = provider.read(origin)
    rrsets: dict[tuple[str, str], set[str]] = {}
    for record in snapshot.records:
        rrsets.setdefault((record.name, record.type), set()).add(record.data)
    return rrsets


def run(tmp_path: Path, config: Config | None = None, **kwargs):
    config = config or make_config(tmp_path)
    with StateStore(config.state.path) as state:
        return publish(config, tmp_path / "zones", state=state, **kwargs)


def statuses(report) -> dict[str, str]:
    return {o.zone: o.status for o in report.outcomes}


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    zones = tmp_path / "zones"
    write(zones, "example.com.lua", 'a("", "192.0.2.1")\na("www", "192.0.2.2", 300)\nmx("", "mx.example.net", 10)\n'
                                    'ignore("_acme-challenge.%", "TXT")\n')
    write(zones, "example.org.bind", "$TTL 600\n@ IN SOA ns.example.org. me.example.org. 1 2 3 4 5\n"
                                     "@ IN NS ns1.nameservers.example.\n@ IN NS ns2.nameservers.example.\n"
                                     "www IN A 198.51.100.1\n")
    return zones


def test_publish_from_empty_then_nothing_to_do(tmp_path, repo):
    report = run(tmp_path, apply=True)
    assert statuses(report) == {"example.com.": APPLIED, "example.org.": APPLIED}
    assert report.exit_code == 0 and not report.has_problems
    rrsets = served(tmp_path, "example.com.")
    assert rrsets[("www.example.com.", "A")] == {"192.0.2.2"}
    assert rrsets[("example.com.", "NS")] == {"ns1.nameservers.example.", "ns2.nameservers.example."}
    # The BIND zone's own SOA is replaced by the generated one.
    soa = create_provider(make_config(tmp_path).providers[0]).read("example.org.").soa
    assert soa.data.startswith("ns1.nameservers.example. hostmaster.nameservers.example. ")
    assert soa.data.endswith(" 3600 600 1209600 300")

    again = run(tmp_path, apply=False)
    assert statuses(again) == {"example.com.": UNCHANGED, "example.org.": UNCHANGED}
    assert again.plan.change_count == 0 and again.exit_code == 0
    with StateStore(tmp_path / "state.db") as state:
        assert state.zones() == (("files", "example.com."), ("files", "example.org."))
        assert state.serial("files", "example.com.") == report.outcomes[0].serial_after


def test_edit_is_one_update_and_the_serial_increases(tmp_path, repo):
    first = run(tmp_path, apply=True)
    write(repo, "example.com.lua", 'a("", "192.0.2.1")\na("www", "192.0.2.3", 300)\nmx("", "mx.example.net", 10)\n')
    report = run(tmp_path, apply=True)
    (outcome,) = [o for o in report.outcomes if o.zone == "example.com."]
    assert outcome.status == APPLIED
    assert [(c.action, c.name, c.old, c.new) for c in outcome.changes] == [
        ("update", "www.example.com.", ("192.0.2.2",), ("192.0.2.3",))]
    before = [o for o in first.outcomes if o.zone == "example.com."][0].serial_after
    assert outcome.serial_before == before and outcome.serial_after > before
    assert served(tmp_path, "example.com.")[("www.example.com.", "A")] == {"192.0.2.3"}
    assert statuses(report)["example.org."] == UNCHANGED


def test_hand_edit_is_reported_as_drift_and_repaired(tmp_path, repo):
    run(tmp_path, apply=True)
    path = tmp_path / "served" / "example.com.zone"
    text = path.read_text()
    serial = create_provider(make_config(tmp_path).providers[0]).serial("example.com.")
    text = text.replace(f" {serial} ", f" {serial + 5} ").replace("192.0.2.2", "203.0.113.66")
    text += "_acme-challenge.example.com. 60 IN TXT \"token\"\nrogue.example.com. 60 IN A 203.0.113.1\n"
    path.write_text(text)

    report = run(tmp_path, apply=True)
    (outcome,) = [o for o in report.outcomes if o.zone == "example.com."]
    assert "zone-changed-outside" in [f.code for f in outcome.findings] and report.has_problems
    assert {(c.action, c.name) for c in outcome.changes} == {("update", "www.example.com."),
                                                             ("delete", "rogue.example.com.")}
    rrsets = served(tmp_path, "example.com.")
    assert rrsets[("www.example.com.", "A")] == {"192.0.2.2"}
    assert ("rogue.example.com.", "A") not in rrsets
    assert rrsets[("_acme-challenge.example.com.", "TXT")] == {'"token"'}  # ignore(): never deleted
    assert run(tmp_path, apply=False).plan.change_count == 0


def test_broken_zone_keeps_its_last_good_version(tmp_path, repo):
    run(tmp_path, apply=True)
    before = (tmp_path / "served" / "example.com.zone").read_text()
    write(repo, "example.com.lua", 'a("", "192.0.2.1")\ncnae("www", "x")\n')
    write(repo, "example.org.bind", (repo / "example.org.bind").read_text() + "new IN A 198.51.100.2\n")
    report = run(tmp_path, apply=True)
    assert statuses(report) == {"example.com.": KEPT_LAST_GOOD, "example.org.": APPLIED}
    assert report.exit_code == 1 and report.has_problems
    (broken,) = [o for o in report.outcomes if o.zone == "example.com."]
    assert any(f.is_error and f.file == "example.com.lua" and f.line == 2 for f in broken.findings)
    assert "kept-last-good" in [f.code for f in broken.findings]
    assert (tmp_path / "served" / "example.com.zone").read_text() == before


def test_removed_zone_is_deleted_only_when_forced(tmp_path, repo):
    run(tmp_path, apply=True)
    (repo / "example.org.bind").unlink()
    report = run(tmp_path, apply=True)
    (gone,) = [o for o in report.outcomes if o.zone == "example.org."]
    assert gone.status == BLOCKED and "zone-deletion-needs-force" in [f.code for f in gone.findings]
    assert report.exit_code == 1 and (tmp_path / "served" / "example.org.zone").exists()
    assert all(c.action == "delete" for c in gone.changes) and gone.changes

    forced = run(tmp_path, apply=True, force=True)
    assert statuses(forced)["example.org."] == APPLIED and forced.exit_code == 0
    assert not (tmp_path / "served" / "example.org.zone").exists()
    with StateStore(tmp_path / "state.db") as state:
        assert state.zones() == (("files", "example.com."),)


def test_zone_deletion_allowed_by_setting(tmp_path, repo):
    config = make_config(tmp_path, extra='[zones."example.org"]\nallow_deletion = true\n')
    run(tmp_path, config, apply=True)
    (repo / "example.org.bind").unlink()
    assert statuses(run(tmp_path, config, apply=True))["example.org."] == APPLIED


def test_an_empty_repository_never_deletes_everything(tmp_path, repo):
    run(tmp_path, apply=True)
    for path in repo.iterdir():
        path.unlink()
    report = run(tmp_path, apply=True, force=True)
    assert [f.code for f in report.findings] == ["empty-repository"] and report.outcomes == ()
    assert (tmp_path / "served" / "example.com.zone").exists()


def test_apex_ns_change_needs_force(tmp_path, repo):
    run(tmp_path, apply=True)
    write(repo, "example.com.lua", 'a("", "192.0.2.1")\nns("", "ns9.nameservers.example")\n')
    report = run(tmp_path, apply=True)
    (outcome,) = [o for o in report.outcomes if o.zone == "example.com."]
    assert outcome.status == BLOCKED and report.exit_code == 1
    assert "apex-ns-change" in [f.code for f in outcome.findings]
    assert served(tmp_path, "example.com.")[("example.com.", "NS")] == {"ns1.nameservers.example.",
                                                                       "ns2.nameservers.example."}
    forced = run(tmp_path, apply=True, force=True)
    assert statuses(forced)["example.com."] == APPLIED
    assert served(tmp_path, "example.com.")[("example.com.", "NS")] == {"ns9.nameservers.example."}


def test_update_threshold_blocks_only_that_zone(tmp_path, repo):
    hosts = "".join(f'a("h{i}", "192.0.2.{i}")\n' for i in range(20))
    write(repo, "example.com.lua", hosts)
    run(tmp_path, apply=True)
    write(repo, "example.com.lua", "".join(f'a("h{i}", "192.0.2.{i + 100}")\n' for i in range(10)) +
          "".join(f'a("h{i}", "192.0.2.{i}")\n' for i in range(10, 20)))
    write(repo, "example.org.bind", (repo / "example.org.bind").read_text() + "new IN A 198.51.100.2\n")
    report = run(tmp_path, apply=True)
    assert statuses(report) == {"example.com.": BLOCKED, "example.org.": APPLIED}
    (outcome,) = [o for o in report.outcomes if o.zone == "example.com."]
    assert [f.code for f in outcome.findings if f.is_error] == ["too-many-updates"]
    assert served(tmp_path, "example.com.")[("h0.example.com.", "A")] == {"192.0.2.0"}
    # A per-zone threshold lets it through.
    config = make_config(tmp_path, extra='[zones."example.com"]\nupdate_threshold = 0.9\n')
    assert statuses(run(tmp_path, config, apply=True))["example.com."] == APPLIED


def test_checksum_applies_exactly_the_reviewed_plan(tmp_path, repo):
    reviewed = run(tmp_path, apply=False)
    assert statuses(reviewed) == {"example.com.": PLANNED, "example.org.": PLANNED}
    write(repo, "example.org.bind", (repo / "example.org.bind").read_text() + "late IN A 198.51.100.9\n")
    stale = run(tmp_path, apply=True, checksum=reviewed.checksum)
    assert "checksum" in stale.error and stale.exit_code == 1
    assert not (tmp_path / "served").exists() or not list((tmp_path / "served").glob("*.zone"))
    fresh = run(tmp_path, apply=False)
    applied = run(tmp_path, apply=True, checksum=f" sha256:{fresh.checksum.upper()}\n")
    assert applied.error == "" and set(statuses(applied).values()) == {APPLIED}


def test_failing_provider_is_isolated_and_repaired_next_run(tmp_path, repo):
    good = make_config(tmp_path)
    run(tmp_path, good, apply=True)
    write(repo, "example.com.lua", 'a("", "192.0.2.1")\na("www", "192.0.2.9")\n')
    write(repo, "example.org.bind", (repo / "example.org.bind").read_text() + "new IN A 198.51.100.2\n")
    # A reload that fails for example.com only.
    failing = make_config(tmp_path, provider_extra='reload_command = "sh -c \'test {zone} != example.com\'"')
    report = run(tmp_path, failing, apply=True)
    assert statuses(report) == {"example.com.": FAILED, "example.org.": APPLIED}
    (failed,) = [o for o in report.outcomes if o.status == FAILED]
    assert "'files'" in failed.error and "example.com" in failed.error and report.exit_code == 1
    with StateStore(tmp_path / "state.db") as state:
        assert state.get("files", "example.com.") is None  # forgotten: next run reads the server
    repaired = run(tmp_path, good, apply=True)
    assert statuses(repaired)["example.com."] == APPLIED
    assert served(tmp_path, "example.com.")[("www.example.com.", "A")] == {"192.0.2.9"}


def test_unreachable_provider_fails_its_zones_with_a_clear_error(tmp_path, repo):
    text = f"""
[defaults]
nameservers = {NAMESERVERS}
[[provider]]
name = "down"
type = "rfc2136"
server = "127.0.0.1"
port = 9
timeout = 0.5
[[provider]]
name = "files"
type = "zonefile"
directory = "served"
[state]
path = "state.db"
"""
    config = load_config_text(text, base=tmp_path)
    report = run(tmp_path, config, apply=True)
    by_provider = {(o.zone, o.provider): o for o in report.outcomes}
    assert by_provider[("example.com.", "down")].status == FAILED
    assert "'down'" in by_provider[("example.com.", "down")].error
    assert by_provider[("example.com.", "files")].status == APPLIED


def test_secondaries_services_and_zone_ttl(tmp_path, repo):
    write(repo, "example.com.lua", 'slave("ns3.example.net", "192.0.2.53")\nredirect("go", "https://example.net/")\n'
                                   'a("www", "192.0.2.2")\n')
    config = make_config(tmp_path, extra='[zones."example.com"]\nttl = 120\n')
    report = run(tmp_path, config, apply=True)
    (outcome,) = [o for o in report.outcomes if o.zone == "example.com."]
    assert outcome.status == APPLIED
    assert "service-not-supported" in [f.code for f in outcome.findings]
    include = (tmp_path / "served" / "named.conf.zones").read_text()
    assert "also-notify { 192.0.2.53; }" in include
    provider = create_provider(config.providers[0])
    records = provider.read("example.com.").records
    assert Record("www.example.com.", "A", 120, "192.0.2.2") in records
    assert any(r.type == "A" and r.ttl == 600 for r in provider.read("example.org.").records)
    # slave() adds its NS beside the configured name servers, as on LuaDNS; it does not replace them.
    apex_ns = {r.data for r in records if r.name == "example.com." and r.type == "NS"}
    assert apex_ns == {"ns1.nameservers.example.", "ns2.nameservers.example.", "ns3.example.net."}


def test_unchanged_zones_ask_the_provider_no_secondaries_and_a_removed_secondary_is_still_removed(tmp_path, repo):
    """The secondaries last set are remembered with the zone's state: a plan of unchanged zones
    reads none from the provider, and removing a .yml secondary (no record changes) still
    clears it at the provider."""
    from publisher.publish.providers.zonefile import ZoneFileProvider

    class Counting(ZoneFileProvider):
        asked: list[str] = []

        def secondaries(self, origin):
            self.asked.append(origin)
            return super().secondaries(origin)

    write(repo, "example.com.yml", "slaves:\n  - 192.0.2.53\n")
    config = make_config(tmp_path)
    provider = Counting("files", tmp_path / "served")
    with StateStore(config.state.path) as state:
        def publish_once(apply: bool):
            return publish(config, repo, apply=apply, state=state, providers={"files": provider})

        assert statuses(publish_once(True)) == {"example.com.": APPLIED, "example.org.": APPLIED}
        assert provider.secondaries("example.com.") == ("192.0.2.53",)
        provider.asked.clear()
        assert statuses(publish_once(False)) == {"example.com.": UNCHANGED, "example.org.": UNCHANGED}
        assert provider.asked == []
        write(repo, "example.com.yml", "slaves: []\n")
        removed = publish_once(True)
        assert statuses(removed)["example.com."] == APPLIED and removed.plan.change_count == 0
        assert provider.secondaries("example.com.") == ()
        assert "also-notify" not in (tmp_path / "served" / "named.conf.zones").read_text()
        provider.asked.clear()
        assert statuses(publish_once(False)) == {"example.com.": UNCHANGED, "example.org.": UNCHANGED}
        assert provider.asked == []
        state.forget("files", "example.org.")  # unknown again: the provider is asked, once
        publish_once(True)
        assert provider.asked == ["example.org."]
        provider.asked.clear()
        publish_once(False)
        assert provider.asked == []


def test_zones_go_only_to_matching_providers(tmp_path, repo):
    config = make_config(tmp_path, extra='[zones."example.org"]\nproviders = []\n')
    report = run(tmp_path, config, apply=True)
    assert statuses(report) == {"example.com.": APPLIED}
    assert [f.code for f in report.findings] == ["no-provider"]


def test_report_serialises(tmp_path, repo):
    import json

    data = json.loads(json.dumps(run(tmp_path, apply=False).to_dict()))
    assert data["counts"] == {"planned": 2} and data["checksum"] and "total" in data["timings"]
    assert data["outcomes"][0]["changes"][0]["action"] == "create"


@pytest.mark.slow
def test_rfc2136_publish_edit_and_no_change_plan(tmp_path, named_server):
    origin = named_server.new_zone()
    name = origin.rstrip(".")
    zones = tmp_path / "zones"
    write(zones, f"{name}.lua", 'ns("", concat("ns1", _a))\na("ns1", "127.0.0.1")\n'
                                'a("www", "192.0.2.1")\ntxt("long", string.rep("x", 300))\n')
    config = _bind_config(tmp_path, named_server)
    first = run(tmp_path, config, apply=True)
    assert statuses(first) == {origin: APPLIED}, first.to_text()
    (again,) = run(tmp_path, config, apply=False).outcomes
    assert again.status == UNCHANGED and "zone-changed-outside" not in [f.code for f in again.findings]

    write(zones, f"{name}.lua", 'ns("", concat("ns1", _a))\na("ns1", "127.0.0.1")\na("www", "192.0.2.7")\n')
    edit = run(tmp_path, config, apply=True)
    assert statuses(edit) == {origin: APPLIED}
    provider = create_provider(config.providers[0])
    snapshot = provider.read(origin)
    assert Record(f"www.{origin}", "A", 3600, "192.0.2.7") in snapshot.records
    assert not any(r.name == f"long.{origin}" for r in snapshot.records)
    assert snapshot.serial == edit.outcomes[0].serial_after

    # Without its own NS the zone would get the configured ones: an apex NS change, refused.
    write(zones, f"{name}.lua", 'a("www", "192.0.2.7")\n')
    refused = run(tmp_path, config, apply=True)
    assert statuses(refused) == {origin: BLOCKED}
    assert provider.serial(origin) == snapshot.serial


def _bind_config(tmp_path: Path, named_server, nameservers: str = NAMESERVERS, extra: str = "") -> Config:
    text = f"""
[source]
path = "zones"
[defaults]
nameservers = {nameservers}
[[provider]]
name = "bind"
type = "rfc2136"
server = "{named_server.address}"
port = {named_server.port}
tsig_keyfile = "{named_server.keyfile}"
timeout = 2
[state]
path = "state.db"
{extra}
"""
    return load_config_text(text, base=tmp_path)


def _bind_zone(tmp_path: Path, origin: str, body: str) -> None:
    write(tmp_path / "zones", f"{origin.rstrip('.')}.lua", 'ns("", concat("ns1", _a))\na("ns1", "127.0.0.1")\n' + body)


def _foreign_update(named_server, origin: str, name: str, address: str) -> None:
    """Someone else changes the zone through the same server (a hand edit with nsupdate)."""
    import dns.query
    import dns.tsigkeyring
    import dns.update

    update = dns.update.UpdateMessage(origin, keyring=named_server.key.to_dnspython())
    update.replace(name, 300, "A", address)
    response = dns.query.tcp(update, named_server.address, port=named_server.port, timeout=5)
    assert response.rcode() == 0


@pytest.mark.slow
def test_rfc2136_concurrent_change_is_detected_not_overwritten(tmp_path, named_server):
    from publisher.publish.providers.rfc2136 import RFC2136Provider

    origin = named_server.new_zone()
    config = _bind_config(tmp_path, named_server)
    _bind_zone(tmp_path, origin, 'a("www", "192.0.2.1")\n')
    assert statuses(run(tmp_path, config, apply=True)) == {origin: APPLIED}

    class RacedProvider(RFC2136Provider):
        """The real provider; someone edits the zone between our read and our write."""

        def apply(self, zone, changes, soa, expected_serial):
            _foreign_update(named_server, zone, f"race.{zone}", "203.0.113.5")
            return super().apply(zone, changes, soa, expected_serial)

    raced = RacedProvider("bind", named_server.address, named_server.port, named_server.key, timeout=2)
    _bind_zone(tmp_path, origin, 'a("www", "192.0.2.2")\n')
    with StateStore(tmp_path / "state.db") as state:
        report = publish(config, tmp_path / "zones", apply=True, state=state, providers={"bind": raced})
    (outcome,) = report.outcomes
    assert outcome.status == FAILED and "'bind'" in outcome.error and origin in outcome.error
    provider = create_provider(config.providers[0])
    records = provider.read(origin).records
    assert Record(f"www.{origin}", "A", 3600, "192.0.2.1") in records  # our change was not forced through
    assert Record(f"race.{origin}", "A", 300, "203.0.113.5") in records  # theirs was not overwritten

    # The next run reads the server again, sees the foreign record, and repairs.
    repaired = run(tmp_path, config, apply=True)
    assert statuses(repaired) == {origin: APPLIED}
    records = provider.read(origin).records
    assert Record(f"www.{origin}", "A", 3600, "192.0.2.2") in records
    assert not any(r.name == f"race.{origin}" for r in records)


@pytest.mark.slow
def test_rfc2136_drift_by_hand_is_reported(tmp_path, named_server):
    origin = named_server.new_zone()
    config = _bind_config(tmp_path, named_server)
    _bind_zone(tmp_path, origin, 'a("www", "192.0.2.1")\n')
    run(tmp_path, config, apply=True)
    _foreign_update(named_server, origin, f"www.{origin}", "203.0.113.9")
    report = run(tmp_path, config, apply=False)
    (outcome,) = report.outcomes
    assert "zone-changed-outside" in [f.code for f in outcome.findings]
    (change,) = outcome.changes
    assert change.old == ("203.0.113.9",) and change.new == ("192.0.2.1",)


@pytest.mark.slow
def test_rfc2136_missing_zone_is_blocked_with_instructions(tmp_path, named_server):
    config = _bind_config(tmp_path, named_server)
    _bind_zone(tmp_path, "absent.bind.test.", 'a("www", "192.0.2.1")\n')
    report = run(tmp_path, config, apply=True)
    (outcome,) = report.outcomes
    assert outcome.status == BLOCKED
    (finding,) = [f for f in outcome.findings if f.is_error]
    assert finding.code == "zone-missing-at-provider" and "cannot create zones" in finding.message


@pytest.mark.slow
def test_rfc2136_server_down_then_back_is_repaired(tmp_path, named_server):
    origin = named_server.new_zone()
    config = _bind_config(tmp_path, named_server)
    _bind_zone(tmp_path, origin, 'a("www", "192.0.2.1")\n')
    run(tmp_path, config, apply=True)
    _bind_zone(tmp_path, origin, 'a("www", "192.0.2.2")\n')
    named_server.stop()
    try:
        report = run(tmp_path, config, apply=True)
    finally:
        named_server.start()
    (outcome,) = report.outcomes
    assert outcome.status == FAILED and "'bind'" in outcome.error and report.exit_code == 1
    assert statuses(run(tmp_path, config, apply=True)) == {origin: APPLIED}
    records = create_provider(config.providers[0]).read(origin).records
    assert Record(f"www.{origin}", "A", 3600, "192.0.2.2") in records


def test_alias_is_flattened_through_the_configured_resolver(tmp_path, repo):
    from tests.test_alias import Responder

    responder = Responder()
    try:
        write(repo, "example.com.lua", 'alias("", "web.example.net")\na("www", "192.0.2.2")\n')
        config = make_config(tmp_path)
        config = replace(config, defaults=replace(config.defaults, resolver=f"127.0.0.1:{responder.port}"))
        report = run(tmp_path, config, apply=True)
    finally:
        responder.close()
    assert statuses(report)["example.com."] == APPLIED
    rrsets = served(tmp_path, "example.com.")
    assert rrsets[("example.com.", "A")] == {"192.0.2.10", "192.0.2.11"}
    assert rrsets[("example.com.", "AAAA")] == {"2001:db8::10"}
    assert not any(rtype == "ALIAS" for _, rtype in rrsets)


@pytest.mark.slow
def test_powerdns_zone_created_published_and_stable(tmp_path, pdns_server, monkeypatch):
    """PowerDNS creates missing zones itself; the API key comes from the environment."""
    from tests.servers import unique_zone

    origin = unique_zone("pdns.test.")
    monkeypatch.setenv("TEST_PDNS_API_KEY", pdns_server.api_key)
    config = load_config_text(f"""
[source]
path = "zones"
[defaults]
nameservers = {NAMESERVERS}
[[provider]]
name = "pdns"
type = "powerdns"
api_url = "{pdns_server.api_url}"
api_key = "env:TEST_PDNS_API_KEY"
server_id = "{pdns_server.server_id}"
[state]
path = "state.db"
""", base=tmp_path)
    write(tmp_path / "zones", f"{origin.rstrip('.')}.lua",
          'a("www", "192.0.2.1")\ncname("docs", "example.github.io")\ntxt("long", string.rep("y", 400))\n'
          'slave("ns3.example.net", "192.0.2.53")\n')
    report = run(tmp_path, config, apply=True)
    assert statuses(report) == {origin: APPLIED}, report.to_text()
    provider = create_provider(config.providers[0])
    assert provider.secondaries(origin) == ("192.0.2.53",)
    again = run(tmp_path, config, apply=False)
    assert statuses(again) == {origin: UNCHANGED} and again.plan.change_count == 0
    # A CNAME replaced by an A record, and back: delete first, then add, with no server error.
    write(tmp_path / "zones", f"{origin.rstrip('.')}.lua", 'cname("www", "web.example.net")\na("docs", "192.0.2.5")\n'
          'slave("ns3.example.net", "192.0.2.53")\n')
    assert statuses(run(tmp_path, config, apply=True)) == {origin: APPLIED}
    records = create_provider(config.providers[0]).read(origin).records
    assert Record(f"www.{origin}", "CNAME", 3600, "web.example.net.") in records
    assert Record(f"docs.{origin}", "A", 3600, "192.0.2.5") in records
    assert run(tmp_path, config, apply=False).plan.change_count == 0


@pytest.mark.slow
def test_knot_publish_edit_and_no_drift_afterwards(tmp_path, knot_server):
    """The serial Knot serves after our update is the one we store: no false drift next run."""
    origin = knot_server.new_zone()
    config = _bind_config(tmp_path, knot_server)
    _bind_zone(tmp_path, origin, 'a("www", "192.0.2.1")\ntxt("long", string.rep("z", 600))\n')
    assert statuses(run(tmp_path, config, apply=True)) == {origin: APPLIED}
    _bind_zone(tmp_path, origin, 'a("www", "192.0.2.1", 60)\n')  # TTL-only change, and a delete
    edit = run(tmp_path, config, apply=True)
    assert statuses(edit) == {origin: APPLIED}
    again = run(tmp_path, config, apply=False)
    (outcome,) = again.outcomes
    assert outcome.status == UNCHANGED
    assert "zone-changed-outside" not in [f.code for f in outcome.findings]
    records = create_provider(config.providers[0]).read(origin).records
    assert Record(f"www.{origin}", "A", 60, "192.0.2.1") in records
    assert not any(r.name == f"long.{origin}" for r in records)


def test_embedded_default_publishes_the_example_repository(tmp_path):
    """What `make run` does: the repository's own zones/ into var/zones, every zone accepted by
    named-checkzone (the default name servers need no glue in any example zone)."""
    config = Config.default(tmp_path)
    zones = Path(__file__).parent.parent / "zones"
    report = publish(config, zones, apply=True)
    assert report.outcomes and {o.status for o in report.outcomes} == {APPLIED}, report.to_text()
    assert (tmp_path / "var" / "state.db").exists()
    assert sorted(p.name for p in (tmp_path / "var" / "zones").glob("*.zone")) == sorted(
        f"{o.zone.rstrip('.')}.zone" for o in report.outcomes)
    assert publish(config, zones, apply=False).plan.change_count == 0


def _with_timers(config: Config, **timers) -> Config:
    return replace(config, defaults=replace(config.defaults, **timers))


def test_soa_settings_change_is_applied_without_record_changes(tmp_path, repo):
    config = make_config(tmp_path)
    run(tmp_path, config, apply=True)
    report = run(tmp_path, _with_timers(config, refresh=7777), apply=True)
    assert statuses(report) == {"example.com.": APPLIED, "example.org.": APPLIED}
    assert all(not o.changes for o in report.outcomes)
    soa = create_provider(config.providers[0]).read("example.com.").soa
    assert soa.data.split()[3] == "7777"
    assert set(statuses(run(tmp_path, _with_timers(config, refresh=7777), apply=False)).values()) == {UNCHANGED}


@pytest.mark.slow
def test_rfc2136_soa_settings_change(tmp_path, named_server):
    origin = named_server.new_zone()
    config = _bind_config(tmp_path, named_server)
    _bind_zone(tmp_path, origin, 'a("www", "192.0.2.1")\n')
    run(tmp_path, config, apply=True)
    changed = _with_timers(config, retry=1234)
    assert statuses(run(tmp_path, changed, apply=True)) == {origin: APPLIED}
    snapshot = create_provider(config.providers[0]).read(origin)
    assert snapshot.soa.data.split()[4] == "1234"
    assert statuses(run(tmp_path, changed, apply=False)) == {origin: UNCHANGED}


@pytest.mark.slow
def test_rfc2136_10k_records_with_a_new_soa_then_one_edit(tmp_path, named_server):
    """A big first publish whose SOA (from configuration) is longer than the zone's old one: every
    UPDATE message must still fit in 64 KiB; then a one-record edit is one change."""
    origin = named_server.new_zone("big.bench.")
    config = _with_timers(_bind_config(tmp_path, named_server), hostmaster="hostmaster.nameservers.example.",
                          nameservers=("ns1.nameservers.example.",))
    hosts = "".join(f'a("h{i}", "10.0.{i >> 8}.{i & 255}")\n' for i in range(10_000))
    _bind_zone(tmp_path, origin, hosts)
    first = run(tmp_path, config, apply=True)
    assert statuses(first) == {origin: APPLIED}, first.to_text()[-500:]
    _bind_zone(tmp_path, origin, hosts.replace('a("h5", "10.0.0.5")', 'a("h5", "10.9.9.9")'))
    edit = run(tmp_path, config, apply=True)
    (outcome,) = edit.outcomes
    assert outcome.status == APPLIED and len(outcome.changes) == 1
    snapshot = create_provider(config.providers[0]).read(origin)
    assert len(snapshot.records) == 10_002 and Record(f"h5.{origin}", "A", 3600, "10.9.9.9") in snapshot.records
    assert snapshot.soa.data.startswith("ns1.nameservers.example. ")


@pytest.mark.slow
def test_rfc2136_signed_zone_keeps_its_dnssec_records(tmp_path, named_server):
    """BIND signs the zone itself (dnssec-policy): its RRSIG/NSEC/DNSKEY are neither deleted nor
    counted against the thresholds, and a plan after apply is empty."""
    import time

    from tests.servers import minimal_zone_text, query_soa_serial, unique_zone

    origin = unique_zone("bind.test.")
    name = origin.rstrip(".")
    (named_server.directory / "dynamic" / f"{name}.db").write_text(minimal_zone_text(origin))
    named_server.rndc("addzone", name, f'{{ type primary; file "dynamic/{name}.db"; '
                                       f'allow-update {{ key "{named_server.key.name}"; }}; '
                                       f'allow-transfer {{ key "{named_server.key.name}"; }}; dnssec-policy default; }};')
    deadline = time.monotonic() + 30
    provider_config = _bind_config(tmp_path, named_server).providers[0]
    provider = create_provider(provider_config)
    while time.monotonic() < deadline:
        snapshot = provider.read(origin) if query_soa_serial(named_server.address, named_server.port, origin) else None
        if snapshot and any(r.type == "RRSIG" for r in snapshot.records):
            break
        time.sleep(0.1)
    else:
        pytest.fail("named did not sign the zone")
    config = _bind_config(tmp_path, named_server)
    _bind_zone(tmp_path, origin, "".join(f'a("h{i}", "192.0.2.{i}")\n' for i in range(12)))
    first = run(tmp_path, config, apply=True)
    assert statuses(first) == {origin: APPLIED}, first.to_text()
    assert all(c.type not in ("RRSIG", "NSEC", "DNSKEY") for c in first.outcomes[0].changes)
    (again,) = run(tmp_path, config, apply=False).outcomes
    assert again.changes == () and again.status == UNCHANGED
    snapshot = provider.read(origin)
    assert any(r.type == "DNSKEY" for r in snapshot.records) and any(r.type == "RRSIG" for r in snapshot.records)
    assert Record(f"h3.{origin}", "A", 3600, "192.0.2.3") in snapshot.records


def test_deleting_a_zone_already_gone_from_the_provider_just_forgets_it(tmp_path, repo):
    run(tmp_path, apply=True)
    (repo / "example.org.bind").unlink()
    (tmp_path / "served" / "example.org.zone").unlink()
    report = run(tmp_path, apply=True, force=True)
    assert statuses(report)["example.org."] == APPLIED
    with StateStore(tmp_path / "state.db") as state:
        assert state.zones() == (("files", "example.com."),)
    assert "example.org." not in statuses(run(tmp_path, apply=False))


def test_a_new_zone_is_filled_under_a_newer_serial_than_the_empty_one(tmp_path, repo):
    """Secondaries may transfer the freshly created, empty zone: the filled one must be newer."""
    from publisher.publish.providers.zonefile import ZoneFileProvider
    from publisher.publish.soa import serial_gt

    class Recording(ZoneFileProvider):
        created: list[int] = []

        def create_zone(self, origin, soa, nameservers):
            self.created.append(int(soa.data.split()[2]))
            super().create_zone(origin, soa, nameservers)

    config = make_config(tmp_path)
    provider = Recording("files", tmp_path / "served")
    # A provider that creates a zone with its apex NS only, then takes the rest as an apply.
    provider.capabilities = provider.capabilities._replace(creates_filled_zones=False)
    with StateStore(config.state.path) as state:
        report = publish(config, repo, apply=True, state=state, providers={"files": provider})
    assert statuses(report) == {"example.com.": APPLIED, "example.org.": APPLIED}
    assert len(provider.created) == 2
    for created, outcome in zip(provider.created, report.outcomes):
        assert serial_gt(outcome.serial_after, created)
        assert provider.serial(outcome.zone) == outcome.serial_after


def test_a_provider_that_creates_filled_zones_gets_every_record_in_one_call(tmp_path, repo):
    """``creates_filled_zones``: no empty zone is ever served, the state is the created zone and
    the next plan is empty without reading the zone."""
    from publisher.publish.providers.zonefile import ZoneFileProvider

    class Recording(ZoneFileProvider):
        created: dict[str, tuple] = {}
        applied: list[str] = []

        def create_zone(self, origin, soa, records):
            self.created[origin] = (soa, tuple(records))
            return super().create_zone(origin, soa, records)

        def apply(self, origin, changes, soa, expected_serial):
            self.applied.append(origin)
            return super().apply(origin, changes, soa, expected_serial)

    config = make_config(tmp_path)
    provider = Recording("files", tmp_path / "served")
    with StateStore(config.state.path) as state:
        report = publish(config, repo, apply=True, state=state, providers={"files": provider})
        assert statuses(report) == {"example.com.": APPLIED, "example.org.": APPLIED}
        assert provider.applied == []
        for outcome in report.outcomes:
            soa, records = provider.created[outcome.zone]
            assert int(soa.data.split()[2]) == outcome.serial_after == provider.serial(outcome.zone)
            def rows(records):
                return sorted((r.name, r.type, r.ttl, r.data) for r in records)

            assert rows(records) == rows(provider.read(outcome.zone).records)
            assert rows(state.get("files", outcome.zone).records) == rows(records)
            assert any(r.type == "A" and r.name != outcome.zone for r in records)  # not only apex NS and glue
        again = publish(config, repo, apply=False, state=state, providers={"files": provider})
    assert statuses(again) == {"example.com.": UNCHANGED, "example.org.": UNCHANGED}


def test_a_new_zone_with_its_own_in_zone_name_servers_loads(tmp_path):
    """named refuses a zone whose in-zone name server has no address: the new zone is created with
    its apex NS and their glue together, so named-checkzone passes from the first write."""
    zones = tmp_path / "zones"
    write(zones, "inzone.test.lua", 'ns("", "ns1.inzone.test")\nns("", "ns2.inzone.test")\n'
                                    'a("ns1", "192.0.2.1")\na("ns2", "192.0.2.2")\na("www", "192.0.2.3")\n')
    report = run(tmp_path, apply=True)
    assert statuses(report) == {"inzone.test.": APPLIED}, report.to_text()
    rrsets = served(tmp_path, "inzone.test.")
    assert rrsets[("inzone.test.", "NS")] == {"ns1.inzone.test.", "ns2.inzone.test."}
    assert rrsets[("www.inzone.test.", "A")] == {"192.0.2.3"}


def test_sandbox_limits_come_from_configuration_and_stop_one_zone_only(tmp_path, repo):
    write(repo, "loop.test.lua", 'a("www", "192.0.2.1")\nwhile true do end\n')
    config = make_config(tmp_path, extra="[sandbox]\ncpu_seconds = 0.5\nwall_seconds = 10\n")
    report = run(tmp_path, config, apply=True)
    outcomes = {o.zone: o for o in report.outcomes}
    assert outcomes["example.com."].status == APPLIED
    assert outcomes["loop.test."].status == KEPT_LAST_GOOD
    [limit] = [f for f in outcomes["loop.test."].findings if f.code == "lua-cpu-limit"]
    assert "0.5 s" in limit.message and (limit.file, limit.line) == ("loop.test.lua", 2)


MIGRATED_BIND = ("$TTL 600\n@ IN SOA ns1.oldprovider.example. admin.oldprovider.example. 2021010101 7200 900 "
                 "604800 86400\n@ IN NS ns1.oldprovider.example.\n@ IN NS ns2.oldprovider.example.\n"
                 "www IN A 198.51.100.1\n")


def test_a_bind_file_publishes_the_configured_name_servers_and_says_which_it_replaced(tmp_path):
    """LuaDNS semantics: a migrated file that still lists the old provider's NS publishes ours."""
    write(tmp_path / "zones", "example.net.bind", MIGRATED_BIND)
    write(tmp_path / "zones", "example.net.clones", "example.info\n")
    report = run(tmp_path, apply=True)
    assert statuses(report) == {"example.net.": APPLIED, "example.info.": APPLIED}, report.to_text()
    for origin in ("example.net.", "example.info."):
        rrsets = served(tmp_path, origin)
        assert rrsets[(origin, "NS")] == {"ns1.nameservers.example.", "ns2.nameservers.example."}
        soa = create_provider(make_config(tmp_path).providers[0]).read(origin).soa
        assert soa.data.split()[:2] == ["ns1.nameservers.example.", "hostmaster.nameservers.example."]
        assert soa.data.split()[3:] == ["3600", "600", "1209600", "300"]  # the file's timers are ignored
    (outcome,) = [o for o in report.outcomes if o.zone == "example.net."]
    (warning,) = [f for f in outcome.findings if f.code == "apex-ns-replaced"]
    assert warning.severity == "warning" and (warning.file, warning.line) == ("example.net.bind", 3)
    assert "ns1.oldprovider.example., ns2.oldprovider.example." in warning.message
    assert 'keep_nameservers = true' in warning.message and not outcome.has_problems


def test_keep_nameservers_publishes_the_bind_file_s_own_apex_ns(tmp_path):
    write(tmp_path / "zones", "example.net.bind", MIGRATED_BIND)
    config = make_config(tmp_path, extra='[zones."example.net"]\nkeep_nameservers = true\n')
    report = run(tmp_path, config, apply=True)
    (outcome,) = report.outcomes
    assert outcome.status == APPLIED and "apex-ns-replaced" not in [f.code for f in outcome.findings]
    assert served(tmp_path, "example.net.")[("example.net.", "NS")] == {"ns1.oldprovider.example.",
                                                                      "ns2.oldprovider.example."}


def test_a_bind_file_listing_the_configured_name_servers_gets_no_warning(tmp_path, repo):
    report = run(tmp_path, apply=False)
    (outcome,) = [o for o in report.outcomes if o.zone == "example.org."]
    assert outcome.status == PLANNED and "apex-ns-replaced" not in [f.code for f in outcome.findings]
    ns = [c for c in outcome.changes if c.type == "NS"]
    assert [c.new for c in ns] == [("ns1.nameservers.example.", "ns2.nameservers.example.")]
    assert ns[0].ttl == 600  # the file's own records, TTL included, are kept as they are


@pytest.mark.slow
def test_rfc2136_migrated_bind_file_publishes_the_configured_ns(tmp_path, named_server):
    """Into a real BIND: the old provider's NS never reach the server; with keep_nameservers
    (and --force, as any apex NS change needs) they do."""
    origin = named_server.new_zone()  # served by named with NS ns1.<origin> (127.0.0.1)
    name = origin.rstrip(".")
    write(tmp_path / "zones", f"{name}.bind", MIGRATED_BIND + "ns1 IN A 127.0.0.1\n")
    config = _bind_config(tmp_path, named_server, nameservers=f'["ns1.{origin}"]')
    report = run(tmp_path, config, apply=True)
    (outcome,) = report.outcomes
    assert outcome.status == APPLIED, report.to_text()
    assert "apex-ns-replaced" in [f.code for f in outcome.findings]
    snapshot = create_provider(config.providers[0]).read(origin)
    assert {r.data for r in snapshot.records if r.name == origin and r.type == "NS"} == {f"ns1.{origin}"}
    assert Record(f"www.{origin}", "A", 600, "198.51.100.1") in snapshot.records
    assert snapshot.soa.data.split()[0] == f"ns1.{origin}" and snapshot.serial == outcome.serial_after

    kept = _bind_config(tmp_path, named_server, nameservers=f'["ns1.{origin}"]',
                        extra=f'[zones."{name}"]\nkeep_nameservers = true\n')
    assert statuses(run(tmp_path, kept, apply=True)) == {origin: BLOCKED}  # apex NS change needs force
    assert statuses(run(tmp_path, kept, apply=True, force=True)) == {origin: APPLIED}
    snapshot = create_provider(kept.providers[0]).read(origin)
    assert {r.data for r in snapshot.records if r.name == origin and r.type == "NS"} == {
        "ns1.oldprovider.example.", "ns2.oldprovider.example."}


def test_a_provider_that_talks_to_knot_keeps_a_zone_knot_would_refuse(tmp_path):
    """A delegation whose in-bailiwick name server has no glue: BIND loads the zone (a warning),
    Knot refuses it ("missing glue record"). The BIND-backed provider publishes it; the one
    declared ``checks = "knot"`` keeps what it serves and says why (issue 7)."""
    zones = tmp_path / "zones"
    write(zones, "example.com.lua", 'a("", "192.0.2.1")\nns("dev", "ns1.dev.example.com")\n')
    config = make_config(tmp_path, extra='''
[[provider]]
name = "knot"
type = "zonefile"
directory = "served-knot"
checks = "knot"
''')
    report = run(tmp_path, config, apply=True)
    by_provider = {o.provider: o for o in report.outcomes}
    assert by_provider["files"].status == APPLIED
    assert by_provider["knot"].status == KEPT_LAST_GOOD
    assert [(f.severity, f.code) for f in by_provider["files"].findings] == [("warning", "missing-glue")]
    assert [(f.severity, f.code) for f in by_provider["knot"].findings] == [("error", "missing-glue"),
                                                                           ("warning", "kept-last-good")]
    assert served(tmp_path, "example.com.")[("dev.example.com.", "NS")] == {"ns1.dev.example.com."}
    assert not (tmp_path / "served-knot" / "example.com.zone").exists()


def test_checks_must_name_a_server(tmp_path):
    from publisher.config import ConfigError
    with pytest.raises(ConfigError, match='checks must be "bind" or "knot"'):
        make_config(tmp_path, provider_extra='checks = "nsd"')


def test_repository_findings_reach_the_run(tmp_path, repo):
    """A finding about the repository as a whole (here a settings file beside no zone) is reported
    by a publish run as lint reports it, not dropped with the zone-less results."""
    write(repo, "stray.yml", "slaves: [192.0.2.53]\n")
    report = run(tmp_path, apply=False)
    assert [(f.code, f.file) for f in report.findings] == [("companion-without-zone", "stray.yml")]


def test_parallel_applies_keep_each_zone_isolated(tmp_path, repo):
    """``parallel_applies``: zones go to the provider several at a time; one that fails fails
    alone (its state forgotten), the others are applied and remembered."""
    import threading

    from publisher.publish.providers.base import ProviderError
    from publisher.publish.providers.zonefile import ZoneFileProvider

    class Parallel(ZoneFileProvider):
        threads: set[int] = set()

        def create_zone(self, origin, soa, records):
            self.threads.add(threading.get_ident())
            if origin == "example.org.":
                raise ProviderError(f"provider 'files', zone {origin}: refused for the test")
            return super().create_zone(origin, soa, records)

    for index in range(6):
        write(repo, f"extra{index}.example.lua", 'a("www", "192.0.2.9")\n')
    config = make_config(tmp_path)
    provider = Parallel("files", tmp_path / "served")
    provider.capabilities = provider.capabilities._replace(parallel_applies=3, batches_runs=False)
    with StateStore(config.state.path) as state:
        report = publish(config, repo, apply=True, state=state, providers={"files": provider})
        found = statuses(report)
        assert found.pop("example.org.") == FAILED and set(found.values()) == {APPLIED} and len(found) == 7
        assert state.get("files", "example.org.") is None and state.get("files", "extra3.example.") is not None
    assert threading.get_ident() not in provider.threads and len(provider.threads) >= 2
