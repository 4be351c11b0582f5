"""The octoDNS bridge (``publisher/publish/providers/octodns.py``).

Contract tests use octoDNS's own ``YamlProvider`` (a real provider that keeps zones in YAML files,
no server); Route 53 runs through ``octodns-route53`` against moto in server mode, PowerDNS
through ``octodns-powerdns`` against the real ``pdns_server`` beside the native provider.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("octodns", reason="octodns is not installed (pip install 'zone-publisher[octodns]')")

from publisher.config import ConfigError, load_config_text  # noqa: E402
from publisher.model import Record  # noqa: E402
from publisher.publish.orchestrator import APPLIED, BLOCKED, FAILED, UNCHANGED, publish  # noqa: E402
from publisher.publish.plan import diff_records  # noqa: E402
from publisher.publish.providers import create_provider  # noqa: E402
from publisher.publish.providers.base import ProviderError  # noqa: E402
from publisher.publish.providers.octodns import OctoDNSProvider, fingerprint, pip_package  # noqa: E402
from publisher.publish.state import StateStore  # noqa: E402
from tests.moto_server import FAKE_CREDENTIALS, moto_route53  # noqa: E402,F401
from tests.servers import unique_zone  # noqa: E402

ROOT = Path(__file__).parent.parent
YAML_CLASS = "octodns.provider.yaml.YamlProvider"
ZONE_LUA = """
a("", "192.0.2.1")
a("www", "192.0.2.2")
txt("", "v=spf1 include:_spf.example.net -all")
txt("semi", "a=1; b=2; c=3")
rr("quoted", "TXT", '"she said \\\\"hi\\\\"" "and left"')
mx("", "mail.example.net", 10)
cname("docs", "www.{zone}")
"""


def config_text(provider: str, zone: str, extra: str = "") -> str:
    return f"""
[source]
path = "zones"
[defaults]
ttl = 300
nameservers = ["ns1.publisher.example.", "ns2.publisher.example."]
hostmaster = "hostmaster.publisher.example."
{provider}
[state]
path = "state.db"
{extra}
"""


def yaml_provider(directory: str, extra: str = "") -> str:
    """octoDNS's YamlProvider; its parameters are the class's, so a path is taken as octoDNS takes
    it (relative to the working directory): the tests give absolute ones."""
    return f'[[provider]]\nname = "octo"\ntype = "octodns"\nclass = "{YAML_CLASS}"\ndirectory = "{directory}"\n{extra}'


def write_zone(tmp_path: Path, zone: str, text: str = ZONE_LUA) -> None:
    zones = tmp_path / "zones"
    zones.mkdir(exist_ok=True)
    (zones / f"{zone.rstrip('.')}.lua").write_text(text.replace("{zone}", zone.rstrip(".")))


def run(tmp_path: Path, text: str, **kwargs):
    config = load_config_text(text, base=tmp_path)
    with StateStore(config.state.path) as state:
        report = publish(config, tmp_path / "zones", state=state, **kwargs)
    return report


def only(report):
    (outcome,) = report.outcomes
    return outcome


# -- configuration ------------------------------------------------------------------------------


def test_missing_package_is_a_configuration_error_naming_the_pip_install(tmp_path) -> None:
    with pytest.raises(ConfigError) as raised:
        load_config_text('[[provider]]\nname = "cf"\ntype = "octodns"\nclass = "octodns_cloudflarex.CloudflareProvider"\n'
                         'token = "secret-token-value"\n', base=tmp_path)
    message = str(raised.value)
    assert "'cf'" in message and "pip install" in message and "octodns-cloudflarex" in message
    assert "secret-token-value" not in message
    with pytest.raises(ConfigError, match="has no octoDNS provider or source named Route53Providr"):
        load_config_text('[[provider]]\nname = "r"\ntype = "octodns"\nclass = "octodns_route53.Route53Providr"\n',
                         base=tmp_path)
    with pytest.raises(ConfigError, match="missing class"):
        load_config_text('[[provider]]\nname = "r"\ntype = "octodns"\n', base=tmp_path)
    assert pip_package("octodns_route53.Route53Provider") == "octodns-route53"
    assert pip_package("octodns.provider.yaml.YamlProvider") == "octodns"


def test_root_ns_management_needs_a_class_that_supports_it(tmp_path) -> None:
    # TinyDnsFileSource is an octoDNS source without root NS support (SUPPORTS_ROOT_NS false).
    with pytest.raises(ConfigError, match="SUPPORTS_ROOT_NS"):
        load_config_text('[[provider]]\nname = "t"\ntype = "octodns"\nclass = "octodns.source.tinydns.TinyDnsFileSource"\n'
                         'directory = "x"\nmanage_root_ns = true\n', base=tmp_path)


def test_every_parameter_is_resolved_and_masked_in_reprs_and_logs(tmp_path, monkeypatch, caplog) -> None:
    secret_dir = tmp_path / "secret-directory-value"
    monkeypatch.setenv("OCTO_DIRECTORY", str(secret_dir))
    (tmp_path / "token").write_text("file-secret-value\n")
    text = config_text(yaml_provider("env:OCTO_DIRECTORY", 'supports_root_ns = true\n'
                                                           'default_ttl = 300\n'), "example.com.")
    config = load_config_text(text, base=tmp_path)
    (provider_config,) = config.providers
    assert provider_config.options["directory"] == str(secret_dir)  # env: resolved for a key we never heard of
    assert str(secret_dir) not in repr(config) and str(secret_dir) not in repr(provider_config)
    nested = load_config_text('[[provider]]\nname = "n"\ntype = "octodns"\nclass = "' + YAML_CLASS + '"\n'
                              'directory = "d"\nextra = ["file:token"]\n', base=tmp_path).providers[0]
    assert nested.options["extra"] == ["file-secret-value"]  # inside lists too
    with caplog.at_level(logging.DEBUG):
        provider = create_provider(provider_config)
        assert provider.serial("example.com.") is None
    assert str(secret_dir) not in repr(provider)
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "YamlProvider" not in logged or "directory=***" in logged  # the filter rewrote octoDNS's own line
    assert str(secret_dir) not in logged
    assert any("***" in record.getMessage() for record in caplog.records)


def test_a_bad_parameter_names_the_provider_not_the_value(tmp_path) -> None:
    with pytest.raises(ProviderError) as raised:
        OctoDNSProvider("octo", YAML_CLASS, {"directory": str(tmp_path), "no_such_parameter": "hidden-value"})
    message = str(raised.value)
    assert "'octo'" in message and "no_such_parameter" in message and "hidden-value" not in message


# -- the plan stays ours (YamlProvider) -----------------------------------------------------------


def test_publish_then_nothing_to_do_then_drift_is_seen_by_reading(tmp_path) -> None:
    zone = "example.com."
    write_zone(tmp_path, zone)
    text = config_text(yaml_provider(f"{tmp_path}/octo"), zone)
    first = only(run(tmp_path, text, apply=True))
    assert first.status == APPLIED, first
    assert len(first.changes) == 7  # apex NS are the host's; everything else created
    assert "NS" not in {c.type for c in first.changes}
    again = only(run(tmp_path, text, apply=True))
    assert again.status == UNCHANGED and again.changes == ()
    # What octoDNS wrote is what the repository says (TXT ';' unescaped, '"' kept).
    served = create_provider(load_config_text(text, base=tmp_path).providers[0]).read(zone)
    assert {(r.name, r.data) for r in served.records if r.type == "TXT"} == {
        (zone, '"v=spf1 include:_spf.example.net -all"'), (f"semi.{zone}", '"a=1; b=2; c=3"'),
        (f"quoted.{zone}", '"she said \\"hi\\"and left"')}
    # Someone edits the zone at the host: the next plan reads it, warns, and puts it back.
    yaml_file = tmp_path / "octo" / "example.com.yaml"
    yaml_file.write_text(yaml_file.read_text().replace("192.0.2.2", "203.0.113.9"))
    drift = only(run(tmp_path, text, apply=True))
    assert "zone-changed-outside" in [f.code for f in drift.findings]
    assert [(c.name, c.new) for c in drift.changes] == [(f"www.{zone}", ("192.0.2.2",))]
    assert only(run(tmp_path, text, apply=True)).status == UNCHANGED


def test_joined_txt_strings_are_a_warning_and_published_in_the_hosts_form(tmp_path) -> None:
    zone = "example.com."
    write_zone(tmp_path, zone)
    outcome = only(run(tmp_path, config_text(yaml_provider(f"{tmp_path}/octo"), zone), apply=False))
    (joined,) = [f for f in outcome.findings if f.code == "host-normalises-record"]
    assert "quoted.example.com." in joined.message
    (change,) = [c for c in outcome.changes if c.name == f"quoted.{zone}"]
    assert change.new == ('"she said \\"hi\\"and left"',)


def test_what_the_host_cannot_hold_is_a_finding_before_anything_is_sent(tmp_path) -> None:
    zone = "example.com."
    write_zone(tmp_path, zone, 'a("", "192.0.2.1")\ntxt("cafe", "caf\\195\\169")\n')
    outcome = only(run(tmp_path, config_text(yaml_provider(f"{tmp_path}/octo"), zone), apply=True))
    assert outcome.status == BLOCKED
    (finding,) = [f for f in outcome.findings if f.code == "host-rejects-record"]
    assert finding.severity == "error" and "cafe.example.com." in finding.message and "ASCII" in finding.message
    assert not (tmp_path / "octo" / "example.com.yaml").exists()


def test_apex_ns_declared_in_the_zone_are_left_to_the_host_with_a_warning(tmp_path) -> None:
    zone = "example.com."
    write_zone(tmp_path, zone, 'ns("", "ns1.elsewhere.example")\na("", "192.0.2.1")\n')
    outcome = only(run(tmp_path, config_text(yaml_provider(f"{tmp_path}/octo"), zone), apply=False))
    assert "apex-ns-left-to-host" in [f.code for f in outcome.findings]
    assert "NS" not in {c.type for c in outcome.changes}
    managed = only(run(tmp_path, config_text(yaml_provider(f"{tmp_path}/octo", extra="manage_root_ns = true\nsupports_root_ns = true\n"),
                                             zone), apply=False))
    assert ("NS", ("ns1.elsewhere.example.",)) in [(c.type, c.new) for c in managed.changes]


def test_a_host_error_names_provider_zone_and_record(tmp_path) -> None:
    zone = "example.com."
    write_zone(tmp_path, zone, 'a("www", "192.0.2.1")\n')
    (tmp_path / "octo").write_text("a file where octoDNS wants a directory")
    outcome = only(run(tmp_path, config_text(yaml_provider(f"{tmp_path}/octo"), zone), apply=True))
    assert outcome.status == FAILED
    assert "'octo'" in outcome.error and "example.com." in outcome.error and "www.example.com. A" in outcome.error


def test_concurrent_change_between_read_and_apply_is_refused(tmp_path) -> None:
    provider = OctoDNSProvider("octo", YAML_CLASS, {"directory": str(tmp_path)})
    zone = "example.com."
    soa = Record(zone, "SOA", 300, "ns. host. 1 1 1 1 1")
    provider.apply(zone, diff_records([Record(zone, "A", 300, "192.0.2.1")], ()), soa, None)
    before = provider.read(zone)
    provider.apply(zone, diff_records([Record(zone, "A", 300, "192.0.2.7")], before.records), soa, before.serial)
    from publisher.publish.providers.base import ConcurrentChangeError

    with pytest.raises(ConcurrentChangeError, match="example.com."):
        provider.apply(zone, diff_records([Record(zone, "A", 300, "192.0.2.9")], before.records), soa, before.serial)
    assert [r.data for r in provider.read(zone).records] == ["192.0.2.7"]
    assert provider.read(zone).serial == fingerprint((Record(zone, "A", 300, "192.0.2.7"),))


def test_a_source_can_be_imported_but_not_published_to(tmp_path) -> None:
    data = tmp_path / "tinydns"
    data.mkdir()
    (data / "data").write_text("+www.example.com:192.0.2.5:300\n'txt.example.com:hello world:300\n")
    config = load_config_text(config_text(f'[[provider]]\nname = "tiny"\ntype = "octodns"\n'
                                          f'class = "octodns.source.tinydns.TinyDnsFileSource"\ndirectory = "{data}"\n',
                                          "example.com."), base=tmp_path)
    provider = create_provider(config.providers[0])
    snapshot = provider.read("example.com.")
    assert {(r.name, r.type, r.data) for r in snapshot.records} == {
        ("www.example.com.", "A", "192.0.2.5"), ("txt.example.com.", "TXT", '"hello world"')}
    with pytest.raises(ProviderError, match="source"):
        provider.apply("example.com.", (), Record("example.com.", "SOA", 1, "a. b. 1 1 1 1 1"), snapshot.serial)


def test_plan_json_stays_json_while_octodns_logs(tmp_path) -> None:
    zone = "example.com."
    write_zone(tmp_path, zone)
    (tmp_path / "config.toml").write_text(config_text(yaml_provider(f"{tmp_path}/octo"), zone))
    result = subprocess.run([sys.executable, "-W", "always", "-m", "publisher", "plan", "--config",
                             str(tmp_path / "config.toml"), "--format", "json"],
                            capture_output=True, text=True, cwd=tmp_path, timeout=120,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode in (0, 1), result.stderr
    plan = json.loads(result.stdout)  # nothing but the plan on stdout
    assert plan["zones"][0]["zone"] == zone and plan["zones"][0]["changes"]
    assert "octodns" in result.stderr.lower() or "validators" in result.stderr  # octoDNS did speak, on stderr


# -- Route 53 through octodns-route53, against moto --------------------------------------------


def route53_provider(extra: str = "") -> str:
    return ('[[provider]]\nname = "r53"\ntype = "octodns"\nclass = "octodns_route53.Route53Provider"\n'
            'access_key_id = "env:TEST_AWS_KEY_ID"\nsecret_access_key = "env:TEST_AWS_SECRET"\n' + extra)


@pytest.fixture
def aws_keys(monkeypatch):
    monkeypatch.setenv("TEST_AWS_KEY_ID", FAKE_CREDENTIALS["access_key_id"])
    monkeypatch.setenv("TEST_AWS_SECRET", FAKE_CREDENTIALS["secret_access_key"])


def txt_strings(presentation: str) -> tuple[bytes, ...]:
    import dns.rdata

    return dns.rdata.from_text("IN", "TXT", presentation).strings


def hosted_rrsets(moto, zone: str) -> dict[tuple[str, str], list[str]]:
    client = moto.client()
    (zone_id,) = [z["Id"] for z in client.list_hosted_zones()["HostedZones"] if z["Name"] == zone]
    sets = client.list_resource_record_sets(HostedZoneId=zone_id)["ResourceRecordSets"]
    return {(s["Name"], s["Type"]): sorted(r["Value"] for r in s.get("ResourceRecords", ())) for s in sets}


@pytest.mark.slow
def test_route53_publish_replan_empty_host_keeps_its_ns_and_soa(tmp_path, moto_route53, aws_keys) -> None:
    zone = unique_zone("r53.test.")
    write_zone(tmp_path, zone)
    text = config_text(route53_provider(), zone)
    first = only(run(tmp_path, text, apply=True))
    assert first.status == APPLIED, first.error
    served = hosted_rrsets(moto_route53, zone)
    assert served[(f"www.{zone}", "A")] == ["192.0.2.2"]
    # octoDNS sends ';' as '\;' (a valid presentation escape: DNS answers carry a plain ';').
    assert [txt_strings(v) for v in served[(f"semi.{zone}", "TXT")]] == [(b"a=1; b=2; c=3",)]
    assert [txt_strings(v) for v in served[(f"quoted.{zone}", "TXT")]] == [(b'she said "hi"and left',)]
    host_ns = served[(zone, "NS")]
    assert len(host_ns) == 4 and not any("publisher.example" in ns for ns in host_ns)  # Route 53's own
    soa_before = served[(zone, "SOA")]
    # The plan after the apply is empty: the ';' and '"' traps do not re-plan, the NS stay the host's.
    for _ in range(2):
        again = only(run(tmp_path, text, apply=True))
        assert again.status == UNCHANGED and again.changes == (), again.changes
    assert hosted_rrsets(moto_route53, zone)[(zone, "SOA")] == soa_before


@pytest.mark.slow
def test_route53_change_at_the_console_is_seen_and_repaired(tmp_path, moto_route53, aws_keys, caplog) -> None:
    """With one provider instance kept across runs, as the service keeps them: octodns-route53
    caches what it read per instance, so a run that reused its instance would not see the edit."""
    zone = unique_zone("r53.test.")
    write_zone(tmp_path, zone)
    text = config_text(route53_provider(), zone)
    instances: dict = {}
    with caplog.at_level(logging.DEBUG):
        assert only(run(tmp_path, text, apply=True, providers=instances)).status == APPLIED
    assert "r53" in instances
    octodns_logged = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("Route53Provider["))
    assert "access_key_id=***" in octodns_logged  # octodns-route53 logs it at INFO in __init__: masked
    assert FAKE_CREDENTIALS["access_key_id"] not in octodns_logged
    # botocore's own DEBUG lines carry the key id as the Authorization header does on the wire;
    # the secret key appears nowhere.
    assert FAKE_CREDENTIALS["secret_access_key"] not in "\n".join(r.getMessage() for r in caplog.records)
    client = moto_route53.client()
    (zone_id,) = [z["Id"] for z in client.list_hosted_zones()["HostedZones"] if z["Name"] == zone]
    client.change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch={"Changes": [{
        "Action": "UPSERT", "ResourceRecordSet": {"Name": f"www.{zone}", "Type": "A", "TTL": 300,
                                                  "ResourceRecords": [{"Value": "203.0.113.50"}]}}]})
    drift = only(run(tmp_path, text, apply=True, providers=instances))
    assert "zone-changed-outside" in [f.code for f in drift.findings] and drift.status == APPLIED
    assert hosted_rrsets(moto_route53, zone)[(f"www.{zone}", "A")] == ["192.0.2.2"]


@pytest.mark.slow
def test_route53_unsupported_type_is_a_finding_at_plan_time(tmp_path, moto_route53, aws_keys) -> None:
    zone = unique_zone("r53.test.")
    write_zone(tmp_path, zone, 'a("", "192.0.2.1")\nsshfp("host", 1, "123456789abcdef67890123456789abcdef67890", 1)\n')
    outcome = only(run(tmp_path, config_text(route53_provider(), zone), apply=True))
    assert outcome.status == BLOCKED
    (finding,) = [f for f in outcome.findings if f.code == "unsupported-record-type"]
    assert "SSHFP" in finding.message and "'r53'" in finding.message
    assert zone not in [z["Name"] for z in moto_route53.client().list_hosted_zones()["HostedZones"]]


@pytest.mark.slow
def test_import_from_route53_gives_a_zone_file_that_publishes_back_unchanged(tmp_path, moto_route53, aws_keys) -> None:
    zone = unique_zone("r53.test.")
    client = moto_route53.client()
    zone_id = client.create_hosted_zone(Name=zone, CallerReference=zone)["HostedZone"]["Id"]
    records = [("", "A", ["192.0.2.10"]), ("www", "CNAME", [zone]), ("", "MX", ["10 mx.example.net."]),
               ("dkim._domainkey", "TXT", ['"v=DKIM1; k=rsa; p=' + "A" * 250 + '" "BBBB"'])]
    client.change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch={"Changes": [
        {"Action": "CREATE", "ResourceRecordSet": {"Name": f"{name}.{zone}" if name else zone, "Type": rtype,
                                                   "TTL": 300, "ResourceRecords": [{"Value": v} for v in values]}}
        for name, rtype, values in records]})
    (tmp_path / "config.toml").write_text(config_text(route53_provider(), zone))
    result = subprocess.run([sys.executable, "-m", "publisher", "import", "--config", str(tmp_path / "config.toml"),
                             "--provider", "r53", "--zone", zone], capture_output=True, text=True, timeout=120,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stderr
    write_zone(tmp_path, zone, result.stdout)
    assert 'mx("", "mx.example.net", 10' in result.stdout and "ns(" not in result.stdout  # the host's NS stay there
    outcome = only(run(tmp_path, config_text(route53_provider(), zone), apply=True))
    assert outcome.status == UNCHANGED and outcome.changes == (), outcome.changes
    # The BIND form too (no SOA: the host keeps its own; the publisher generates one anyway).
    bind = subprocess.run([sys.executable, "-m", "publisher", "import", "--config", str(tmp_path / "config.toml"),
                           "--provider", "r53", "--zone", zone, "--format", "bind"], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert bind.returncode == 0, bind.stderr
    (tmp_path / "zones" / f"{zone.rstrip('.')}.lua").unlink()
    (tmp_path / "zones" / f"{zone}bind").write_text(bind.stdout)
    outcome = only(run(tmp_path, config_text(route53_provider(), zone), apply=True))
    assert outcome.status == UNCHANGED and outcome.changes == (), (outcome.changes, outcome.findings)


# -- PowerDNS through octodns-powerdns, beside the native provider --------------------------------


@pytest.mark.slow
def test_powerdns_through_octodns_serves_what_the_native_provider_serves(tmp_path, pdns_server) -> None:
    pytest.importorskip("octodns_powerdns")
    from urllib.parse import urlsplit

    native_zone, bridged_zone = unique_zone("native.test."), unique_zone("bridged.test.")
    # octodns-powerdns sends TXT as f'"{value}"' (``_records_for_quoted``): a '"' inside is
    # refused by PowerDNS (422) and text over 255 octets is stored as one over-long string, so
    # those records stay out of this comparison.
    lua = ZONE_LUA.replace("rr(\"quoted\"", "-- rr(\"quoted\"") + 'srv("_sip._tcp", "sip.example.net", 5060, 0, 5)\ncaa("", "letsencrypt.org", "issue", 0)\n' \
        'aaaa("v6", "2001:db8::1")\ntxt("dkim._domainkey", "v=DKIM1; k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GN")\n'
    for zone in (native_zone, bridged_zone):
        write_zone(tmp_path, zone, lua)
    api = urlsplit(pdns_server.api_url)
    providers = f"""
[[provider]]
name = "native"
type = "powerdns"
zones = ["{native_zone.rstrip('.')}"]
api_url = "{pdns_server.api_url}"
api_key = "{pdns_server.api_key}"
[[provider]]
name = "bridge"
type = "octodns"
zones = ["{bridged_zone.rstrip('.')}"]
class = "octodns_powerdns.PowerDnsProvider"
host = "{api.hostname}"
port = {api.port}
api_key = "{pdns_server.api_key}"
manage_root_ns = true
"""
    text = config_text(providers, native_zone)
    report = run(tmp_path, text, apply=True)
    assert {o.provider: o.status for o in report.outcomes} == {"native": APPLIED, "bridge": APPLIED}, \
        [o.error for o in report.outcomes]
    assert {o.provider: o.status for o in run(tmp_path, text, apply=True).outcomes} == {
        "native": UNCHANGED, "bridge": UNCHANGED}
    reader = create_provider(load_config_text(text, base=tmp_path).providers[0])

    def served(zone: str) -> set[tuple[str, str, int, str]]:
        return {(r.name.removesuffix(zone), r.type, r.ttl, r.data.replace(zone, "@"))
                for r in reader.read(zone).records}

    assert served(native_zone) == served(bridged_zone)
    assert len(served(native_zone)) >= 12
