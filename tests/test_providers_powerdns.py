"""PowerDNS API provider specifics: zone lifecycle, one PATCH per apply, API errors without the key."""

from __future__ import annotations

from types import MappingProxyType

import pytest

from publisher.model import CREATE, Change, Record
from publisher.publish.plan import diff_records
from publisher.publish.providers import create_provider
from publisher.publish.providers.base import ProviderError
from publisher.publish.providers.powerdns import PowerDNSProvider
from tests.servers import LOOPBACK, free_port, query_soa_serial, unique_zone


def soa(origin: str, serial: int) -> Record:
    return Record(origin, "SOA", 300, f"ns1.{origin} hostmaster.{origin} {serial} 3600 600 604800 300")


def test_create_provider_and_repr_hide_the_key() -> None:
    class Table:
        name, type, zones = "pdns", "powerdns", ("*",)
        options = MappingProxyType({"api_url": "http://127.0.0.1:8081", "api_key": "s3cret-key"})

    provider = create_provider(Table(), None)
    assert provider.api_url == "http://127.0.0.1:8081/api/v1"
    assert provider.server_id == "localhost"
    assert provider.capabilities.can_create_zones
    assert "s3cret-key" not in repr(provider)


def test_api_down_is_a_provider_error_naming_provider_and_zone() -> None:
    provider = PowerDNSProvider("pdns", f"http://{LOOPBACK}:{free_port()}", "key", timeout=2)
    with pytest.raises(ProviderError, match="cannot connect") as raised:
        provider.serial("example.com.")
    assert "'pdns'" in str(raised.value) and "example.com." in str(raised.value)


@pytest.mark.slow
def test_wrong_api_key_is_refused_without_echoing_it(pdns_server) -> None:
    provider = PowerDNSProvider("pdns", pdns_server.api_url, "wrong-key-123")
    with pytest.raises(ProviderError, match="HTTP 401") as raised:
        provider.read("example.com.")
    assert "wrong-key-123" not in str(raised.value) and pdns_server.api_key not in str(raised.value)


@pytest.mark.slow
def test_zone_lifecycle(pdns_server) -> None:
    provider = PowerDNSProvider("pdns", pdns_server.api_url, pdns_server.api_key)
    origin = unique_zone("pdns.test.")
    assert provider.read(origin) is None and provider.serial(origin) is None
    provider.create_zone(origin, soa(origin, 7), [Record(origin, "NS", 600, "ns1.example.net."),
                                                   Record(origin, "NS", 600, "ns2.example.net.")])
    snapshot = provider.read(origin)
    assert snapshot.serial == 7 == provider.serial(origin)
    assert snapshot.soa == soa(origin, 7)
    assert sorted(snapshot.records) == [Record(origin, "NS", 600, "ns1.example.net."),
                                        Record(origin, "NS", 600, "ns2.example.net.")]
    assert query_soa_serial(pdns_server.address, pdns_server.port, origin) == 7  # served over DNS
    with pytest.raises(ProviderError, match="HTTP 409") as raised:
        provider.create_zone(origin, soa(origin, 7), [])
    assert str(raised.value).endswith("Conflict")  # PowerDNS's own message is passed on
    provider.delete_zone(origin)
    assert provider.read(origin) is None


@pytest.mark.slow
def test_apply_is_one_patch_and_keeps_the_planned_serial(pdns_server) -> None:
    provider = PowerDNSProvider("pdns", pdns_server.api_url, pdns_server.api_key)
    origin = pdns_server.new_zone()
    methods: list[str] = []
    provider._session.hooks["response"].append(lambda response, **_: methods.append(response.request.method))
    desired = [Record(origin, "NS", 300, f"ns1.{origin}")] + [
        Record(f"h{i}.{origin}", "A", 300, f"192.0.2.{i % 250}") for i in range(2000)]
    before = provider.read(origin)
    methods.clear()
    served = provider.apply(origin, diff_records(desired, before.records), soa(origin, 2026112801), before.serial)
    assert methods.count("PATCH") == 1
    assert served == 2026112801 == provider.serial(origin)


@pytest.mark.slow
def test_api_rejection_reports_the_api_message(pdns_server) -> None:
    provider = PowerDNSProvider("pdns", pdns_server.api_url, pdns_server.api_key)
    origin = pdns_server.new_zone()
    conflicting = [Change(CREATE, f"www.{origin}", "A", 300, new=("192.0.2.1",)),
                   Change(CREATE, f"www.{origin}", "CNAME", 300, new=(f"{origin}",))]
    with pytest.raises(ProviderError, match="HTTP 422") as raised:
        provider.apply(origin, conflicting, soa(origin, 2), 1)
    message = str(raised.value)
    assert origin in message and "'pdns'" in message and "CNAME" in message
    assert pdns_server.api_key not in message
    assert provider.serial(origin) == 1  # the PATCH is all or nothing


@pytest.mark.slow
def test_secondaries_become_zone_metadata(pdns_server) -> None:
    provider = PowerDNSProvider("pdns", pdns_server.api_url, pdns_server.api_key)
    origin = pdns_server.new_zone()
    assert provider.secondaries(origin) == ()
    provider.set_secondaries(origin, ["192.0.2.20", "2001:db8::20", "192.0.2.20"])
    assert provider.secondaries(origin) == ("192.0.2.20", "2001:db8::20")
    provider.set_secondaries(origin, [])
    assert provider.secondaries(origin) == ()


@pytest.mark.slow
def test_a_plan_over_the_request_limit_is_split_into_patches(pdns_server) -> None:
    provider = PowerDNSProvider("pdns", pdns_server.api_url, pdns_server.api_key, max_body_size=30_000)
    origin = pdns_server.new_zone()
    methods: list[str] = []
    provider._session.hooks["response"].append(lambda response, **_: methods.append(response.request.method))
    desired = [Record(origin, "NS", 300, f"ns1.{origin}")] + [
        Record(f"h{i}.{origin}", "TXT", 300, f'"{i:0200}"') for i in range(600)]
    before = provider.read(origin)
    served = provider.apply(origin, diff_records(desired, before.records), soa(origin, 2), before.serial)
    patches = methods.count("PATCH")
    assert patches >= 5
    assert served == 1 + patches == provider.serial(origin)  # one serial step per PATCH
    assert diff_records(desired, provider.read(origin).records) == ()


def test_create_provider_from_the_documented_configuration(tmp_path, monkeypatch) -> None:
    from publisher.config import load_config_text

    monkeypatch.setenv("TEST_PDNS_KEY", "key-from-env")
    (tmp_path / "pdns.key").write_text("key-from-file\n")
    config = load_config_text("""
[source]
path = "zones"
[[provider]]
name = "pdns"
type = "powerdns"
api_url = "http://127.0.0.1:8081/"
api_key = "env:TEST_PDNS_KEY"
server_id = "other"
[[provider]]
name = "pdns2"
type = "powerdns"
api_url = "http://127.0.0.1:8082/api/v1"
api_key = "file:pdns.key"
""", base=tmp_path)
    first = create_provider(config.provider("pdns"), config)
    assert (first.api_url, first.server_id) == ("http://127.0.0.1:8081/api/v1", "other")
    assert first._session.headers["X-API-Key"] == "key-from-env"
    second = create_provider(config.provider("pdns2"), config)
    assert second.api_url == "http://127.0.0.1:8082/api/v1" and second.server_id == "localhost"
    assert second._session.headers["X-API-Key"] == "key-from-file"


# ------------------------------------------------------------------ thousands of zones (issue 9)

def _count_requests(provider: PowerDNSProvider) -> list[tuple[str, str]]:
    """(method, path) of every request the provider's session sends from now on."""
    seen: list[tuple[str, str]] = []
    provider._session.hooks["response"].append(
        lambda response, **_: seen.append((response.request.method, response.request.path_url.split("?")[0])))
    return seen


@pytest.mark.slow
def test_the_serial_listing_equals_each_zones_serial(pdns_server) -> None:
    provider = PowerDNSProvider("pdns", pdns_server.api_url, pdns_server.api_key)
    origins = [pdns_server.new_zone() for _ in range(5)]
    for index, origin in enumerate(origins):
        before = provider.read(origin)
        provider.apply(origin, [], soa(origin, 100 + index), before.serial)
    absent = unique_zone("pdns.test.")
    requests_seen = _count_requests(provider)
    listed = provider.serials(origins + [absent])
    assert requests_seen == [("GET", "/api/v1/servers/localhost/zones")]
    assert listed == {**{origin: provider.serial(origin) for origin in origins}, absent: None}
    assert [listed[o] for o in origins] == [100, 101, 102, 103, 104]
    assert provider.capabilities.bulk_serials


@pytest.mark.slow
def test_a_new_zone_is_created_with_all_its_records_in_one_post(pdns_server) -> None:
    provider = PowerDNSProvider("pdns", pdns_server.api_url, pdns_server.api_key)
    origin = unique_zone("pdns.test.")
    records = [Record(origin, "NS", 300, f"ns1.{origin}"), Record(f"ns1.{origin}", "A", 300, "192.0.2.53"),
               Record(origin, "MX", 300, f"10 ns1.{origin}")] + [
        Record(f"h{i}.{origin}", "A", 60, f"192.0.2.{i + 1}") for i in range(20)]
    requests_seen = _count_requests(provider)
    assert provider.create_zone(origin, soa(origin, 2026120101), records) == 2026120101
    assert requests_seen == [("POST", "/api/v1/servers/localhost/zones")]
    snapshot = provider.read(origin)
    assert snapshot.serial == 2026120101 and diff_records(records, snapshot.records) == ()
    assert query_soa_serial(pdns_server.address, pdns_server.port, origin) == 2026120101


@pytest.mark.slow
def test_a_new_zone_over_the_body_limit_is_filled_after_its_creation(pdns_server) -> None:
    provider = PowerDNSProvider("pdns", pdns_server.api_url, pdns_server.api_key, max_body_size=30_000)
    origin = unique_zone("pdns.test.")
    records = [Record(origin, "NS", 300, f"ns1.{origin}")] + [
        Record(f"t{i}.{origin}", "TXT", 300, f'"{i:0200}"') for i in range(300)]
    requests_seen = _count_requests(provider)
    served = provider.create_zone(origin, soa(origin, 10), records)
    methods = [method for method, _ in requests_seen]
    assert methods[0] == "POST" and methods.count("PATCH") >= 2
    assert served == provider.serial(origin) and served > 10  # newer than the zone holding only its NS
    assert diff_records(records, provider.read(origin).records) == ()


@pytest.mark.slow
def test_a_no_change_plan_of_many_zones_lists_serials_once(pdns_server, tmp_path) -> None:
    """publish() to PowerDNS: the first apply creates each zone in one POST; a plan then sends one
    listing for all serials and reads nothing else (the secondaries set are remembered in the state)."""
    from publisher.config import load_config_text
    from publisher.publish.orchestrator import APPLIED, UNCHANGED, publish
    from publisher.publish.state import StateStore

    zones = tmp_path / "zones"
    zones.mkdir()
    origins = [unique_zone("pdns.test.") for _ in range(8)]
    for origin in origins:
        (zones / f"{origin}lua").write_text('a("www", "192.0.2.1")\nmx("", "mail.example.net", 10)\n')
    config = load_config_text(f"""
[source]
path = "zones"
[defaults]
nameservers = ["ns1.example.net."]
hostmaster = "hostmaster.example.net."
[[provider]]
name = "pdns"
type = "powerdns"
api_url = "{pdns_server.api_url}"
api_key = "unused: the instance is handed over"
[state]
path = "state.db"
""", base=tmp_path)
    provider = PowerDNSProvider("pdns", pdns_server.api_url, pdns_server.api_key)
    requests_seen = _count_requests(provider)
    with StateStore(config.state.path) as state:
        first = publish(config, zones, apply=True, state=state, providers={"pdns": provider})
        assert {o.status for o in first.outcomes} == {APPLIED}
        assert [m for m, _ in requests_seen].count("POST") == len(origins)
        assert {m for m, _ in requests_seen} == {"GET", "POST"}  # the listing, then POSTs only
        requests_seen.clear()
        again = publish(config, zones, apply=False, state=state, providers={"pdns": provider})
    assert {o.status for o in again.outcomes} == {UNCHANGED}
    # One listing; no zone, SOA or secondaries (metadata) read zone by zone.
    assert requests_seen == [("GET", "/api/v1/servers/localhost/zones")]
