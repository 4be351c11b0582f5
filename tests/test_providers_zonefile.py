"""Zone-file provider specifics: atomic checked writes, reload and rollback, the named.conf include."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from types import MappingProxyType

import pytest

from publisher.model import CREATE, DELETE, Change, Record
from publisher.publish.providers import create_provider
from publisher.publish.providers.base import ConcurrentChangeError, ProviderError
from publisher.publish.providers.zonefile import HEADER, ZoneFileProvider
from tests.servers import unique_zone, wait_for_serial

DATA = Path(__file__).parent / "data" / "providers"
ORIGIN = "example.test."
LONG_TXT = '"' + "t" * 255 + '" "' + "u" * 45 + '"'  # 300 octets, canonical split
needs_checkzone = pytest.mark.skipif(shutil.which("named-checkzone") is None, reason="named-checkzone missing")


def soa(serial: int, origin: str = ORIGIN) -> Record:
    return Record(origin, "SOA", 300, f"ns1.{origin} hostmaster.{origin} {serial} 3600 600 604800 300")


def nameservers(origin: str = ORIGIN) -> list[Record]:
    return [Record(origin, "NS", 300, f"ns1.{origin}"), Record(f"ns1.{origin}", "A", 300, "192.0.2.53")]


def files_in(directory: Path) -> set[str]:
    return {path.name for path in directory.iterdir()}


def test_create_then_apply_writes_canonical_text(tmp_path: Path) -> None:
    provider = ZoneFileProvider("files", tmp_path, check_command="")
    provider.create_zone(ORIGIN, soa(1), nameservers())
    assert provider.serial(ORIGIN) == 1
    serial = provider.apply(ORIGIN, [Change(CREATE, f"www.{ORIGIN}", "A", 60, new=("192.0.2.2", "192.0.2.1")),
                                     Change(CREATE, f"{ORIGIN}", "TXT", 300, new=(LONG_TXT,))],
                            soa(2), 1)
    assert serial == 2
    text = (tmp_path / "example.test.zone").read_text()
    assert text == HEADER + "$ORIGIN example.test.\n" + (
        "example.test. 300 IN SOA ns1.example.test. hostmaster.example.test. 2 3600 600 604800 300\n"
        "example.test. 300 IN NS ns1.example.test.\n"
        f"example.test. 300 IN TXT {LONG_TXT}\n"
        "ns1.example.test. 300 IN A 192.0.2.53\n"
        "www.example.test. 60 IN A 192.0.2.1\n"
        "www.example.test. 60 IN A 192.0.2.2\n")
    snapshot = provider.read(ORIGIN)
    assert snapshot.serial == 2 and len(snapshot.records) == 5
    provider.apply(ORIGIN, [Change(DELETE, f"www.{ORIGIN}", "A", 60, old=("192.0.2.1", "192.0.2.2"))], soa(3), 2)
    assert f"www.{ORIGIN}" not in {r.name for r in provider.read(ORIGIN).records}
    assert not {name for name in files_in(tmp_path) if name.endswith(".tmp")}


@needs_checkzone
def test_a_zone_named_checkzone_refuses_is_never_written(tmp_path: Path) -> None:
    provider = ZoneFileProvider("files", tmp_path)
    provider.create_zone(ORIGIN, soa(1), nameservers())
    before = (tmp_path / "example.test.zone").read_bytes()
    bad = [Change(CREATE, f"www.{ORIGIN}", "A", 300, new=("192.0.2.1",)),
           Change(CREATE, f"www.{ORIGIN}", "CNAME", 300, new=(f"{ORIGIN}",))]
    with pytest.raises(ProviderError, match="zone check failed") as raised:
        provider.apply(ORIGIN, bad, soa(2), 1)
    assert "CNAME" in str(raised.value) and "'files'" in str(raised.value)
    assert (tmp_path / "example.test.zone").read_bytes() == before
    assert not {name for name in files_in(tmp_path) if name.endswith(".tmp")}


def test_failed_reload_puts_the_previous_file_back(tmp_path: Path) -> None:
    provider = ZoneFileProvider("files", tmp_path, check_command="",
                                reload_command=f'{sys.executable} -c "import sys; sys.exit(3)" {{zone}}')
    provider.create_zone(ORIGIN, soa(1), nameservers())
    before = (tmp_path / "example.test.zone").read_bytes()
    with pytest.raises(ProviderError, match="reload failed .*exited 3"):
        provider.apply(ORIGIN, [Change(CREATE, f"new.{ORIGIN}", "A", 300, new=("192.0.2.9",))], soa(2), 1)
    assert (tmp_path / "example.test.zone").read_bytes() == before  # the next run applies again


def test_commands_run_without_a_shell(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    script = "import sys; open(sys.argv[1], 'w').write(sys.argv[2])"
    provider = ZoneFileProvider("files", tmp_path / "zones", check_command="",
                                reload_command=f'{sys.executable} -c "{script}" {marker} "{{zone}};touch pwned"')
    provider.create_zone(ORIGIN, soa(1), nameservers())
    provider.apply(ORIGIN, [], soa(2), 1)
    assert marker.read_text() == "example.test;touch pwned"
    assert not (tmp_path / "pwned").exists() and not Path("pwned").exists()


def test_a_hand_edit_is_a_concurrent_change(tmp_path: Path) -> None:
    provider = ZoneFileProvider("files", tmp_path, check_command="")
    provider.create_zone(ORIGIN, soa(1), nameservers())
    path = tmp_path / "example.test.zone"
    path.write_text(path.read_text().replace(" 1 3600", " 5 3600") + "hand.example.test. 300 IN A 192.0.2.7\n")
    with pytest.raises(ConcurrentChangeError):
        provider.apply(ORIGIN, [Change(CREATE, f"x.{ORIGIN}", "A", 300, new=("192.0.2.1",))], soa(2), 1)
    assert "hand.example.test." in path.read_text() and "x.example.test." not in path.read_text()


def test_reads_a_zone_file_it_did_not_write(tmp_path: Path) -> None:
    shutil.copy(DATA / "handwritten.zone", tmp_path / "example.test.zone")
    provider = ZoneFileProvider("files", tmp_path, check_command="")
    assert provider.serial(ORIGIN) == 2024010101
    snapshot = provider.read(ORIGIN)
    assert snapshot.soa.data == "ns1.example.test. hostmaster.example.test. 2024010101 3600 600 604800 300"
    assert set(snapshot.records) == {
        Record("example.test.", "NS", 3600, "ns1.example.test."),
        Record("example.test.", "MX", 3600, "10 mail.example.test."),
        Record("ns1.example.test.", "A", 3600, "192.0.2.53"),
        Record("www.example.test.", "CNAME", 600, "example.test."),
        Record("txt.example.test.", "TXT", 3600, '"Hello" "World"'),
    }


def test_named_conf_include_lists_zones_and_secondaries(tmp_path: Path) -> None:
    provider = ZoneFileProvider("files", tmp_path, check_command="")
    provider.create_zone(ORIGIN, soa(1), nameservers())
    provider.create_zone("other.test.", soa(1, "other.test."), nameservers("other.test."))
    provider.set_secondaries(ORIGIN, ["192.0.2.20", "2001:db8::20", "192.0.2.20"])
    include = (tmp_path / "named.conf.zones").read_text()
    assert f'zone "example.test" {{\n    type primary;\n    file "{tmp_path.resolve()}/example.test.zone";\n' \
           "    notify explicit;\n    also-notify { 192.0.2.20; 2001:db8::20; };\n" \
           "    allow-transfer { 192.0.2.20; 2001:db8::20; };\n};\n" in include
    assert f'zone "other.test" {{\n    type primary;\n    file "{tmp_path.resolve()}/other.test.zone";\n}};' in include
    assert provider.secondaries(ORIGIN) == ("192.0.2.20", "2001:db8::20")
    provider.delete_zone(ORIGIN)
    assert provider.read(ORIGIN) is None and provider.serial(ORIGIN) is None
    assert "example.test" not in (tmp_path / "named.conf.zones").read_text()
    assert provider.capabilities.configures_secondaries and provider.capabilities.can_create_zones


def test_create_provider_zonefile(tmp_path: Path) -> None:
    class Table:
        name, type, zones = "files", "zonefile", ("*",)
        options = MappingProxyType({"directory": str(tmp_path), "reload_command": "rndc reload {zone}",
                                    "named_conf": str(tmp_path / "zones.conf")})

    provider = create_provider(Table(), None)
    assert isinstance(provider, ZoneFileProvider)
    assert provider.named_conf == tmp_path / "zones.conf" and provider.reload_command == "rndc reload {zone}"


@pytest.mark.slow
def test_named_loads_the_include_with_secondaries(named_server) -> None:
    rndc = " ".join(named_server.rndc_command)
    provider = ZoneFileProvider("files", named_server.zonefile_dir, reload_command=f"{rndc} reload {{zone}}",
                                reconfig_command=f"{rndc} reconfig")
    origin = unique_zone("files.test.")
    provider.create_zone(origin, soa(1, origin), nameservers(origin))
    assert wait_for_serial(named_server.address, named_server.port, origin, 1) == 1
    provider.set_secondaries(origin, ["127.0.0.2"])  # reconfig fails loudly if named rejects the include
    provider.apply(origin, [Change(CREATE, f"www.{origin}", "A", 300, new=("192.0.2.1",))], soa(2, origin), 1)
    assert wait_for_serial(named_server.address, named_server.port, origin, 2) == 2
    provider.set_secondaries(origin, [])
    provider.delete_zone(origin)
    assert wait_for_serial(named_server.address, named_server.port, origin, None) is None


def test_create_provider_from_the_documented_configuration(tmp_path: Path) -> None:
    from publisher.config import load_config_text

    config = load_config_text("""
[source]
path = "zones"
[[provider]]
name = "files"
type = "zonefile"
directory = "served"
reload_command = "rndc reload {zone}"
reconfig_command = "rndc reconfig"
named_conf = "named.conf.publisher"
""", base=tmp_path)
    provider = create_provider(config.provider("files"), config)
    assert provider.directory == tmp_path / "served"
    assert provider.named_conf == tmp_path / "named.conf.publisher"
    assert (provider.reload_command, provider.reconfig_command) == ("rndc reload {zone}", "rndc reconfig")


@needs_checkzone
def test_default_check_never_resolves_names_outside_the_zone(tmp_path: Path) -> None:
    """named-checkzone's default integrity mode looks up out-of-zone MX/NS targets through the system
    resolver: the provider's default must keep it to the zone itself (-i local)."""
    provider = ZoneFileProvider("files", tmp_path)
    assert provider.check_command.split()[:3] == ["named-checkzone", "-i", "local"]
