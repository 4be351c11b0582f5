"""Zone-file provider specifics: atomic checked writes, reload and rollback, the named.conf include."""

from __future__ import annotations

import os
import shutil
import subprocess
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


# ------------------------------------------------------------------ a run of many zones (issue 9)

def _logging_tool(directory: Path, name: str, log: Path) -> None:
    """A ``name`` on PATH that appends its arguments to ``log``, then runs the real tool."""
    real = shutil.which(name)
    script = directory / name
    script.write_text(f"#!{sys.executable}\nimport os, sys\nopen({str(log)!r}, 'a').write({name!r} + ' ' + "
                      f"' '.join(sys.argv[1:]) + '\\n')\nos.execv({real!r}, [{real!r}] + sys.argv[1:])\n")
    script.chmod(0o755)


def _logging_command(log: Path, label: str, command: list[str]) -> str:
    """A command template that appends ``label`` and its arguments to ``log``, then runs ``command``."""
    script = ("import subprocess, sys; open(sys.argv[1], 'a').write(sys.argv[2] + ' ' + ' '.join(sys.argv[3:]) + "
              "'\\n'); sys.exit(subprocess.run(sys.argv[3:]).returncode)")
    return " ".join([sys.executable, "-c", f'"{script}"', str(log), label, *command])


def _zone_records(origin: str, hosts: int = 3) -> list[Record]:
    return nameservers(origin) + [Record(f"h{i}.{origin}", "A", 300, f"192.0.2.{i + 1}") for i in range(hosts)]


@pytest.fixture
def counted_tools(tmp_path: Path, monkeypatch) -> Path:
    """named-checkconf and named-checkzone on PATH that log each run to the returned file."""
    if not (shutil.which("named-checkconf") and shutil.which("named-checkzone")):
        pytest.skip("named-checkconf / named-checkzone missing")
    log = tmp_path / "tools.log"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("named-checkconf", "named-checkzone"):
        _logging_tool(bin_dir, tool, log)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    return log


def _lines(log: Path, prefix: str) -> list[str]:
    return [line for line in log.read_text().splitlines() if line.startswith(prefix)] if log.exists() else []


@pytest.mark.slow
def test_a_run_of_many_zones_is_checked_reconfigured_and_reloaded_once(named_server, counted_tools, tmp_path) -> None:
    log = tmp_path / "commands.log"
    rndc = named_server.rndc_command
    provider = ZoneFileProvider("files", named_server.zonefile_dir,
                                reload_command=_logging_command(log, "reload-one", rndc + ["reload", "{zone}"]),
                                reload_all_command=_logging_command(log, "reload-all", rndc + ["reload"]),
                                reconfig_command=_logging_command(log, "reconfig", rndc + ["reconfig"]))
    origins = [unique_zone("batch.test.") for _ in range(12)]
    provider.begin_run()
    for origin in origins:
        assert provider.create_zone(origin, soa(1, origin), _zone_records(origin)) == 1
    assert provider.read(origins[0]).serial == 1  # the run sees what it staged
    assert not (named_server.zonefile_dir / f"{origins[0].rstrip('.')}.zone").exists()  # not in place yet
    assert provider.finish_run() == {}
    assert len(_lines(counted_tools, "named-checkconf")) == 1 and _lines(counted_tools, "named-checkzone") == []
    assert [line.split()[0] for line in log.read_text().splitlines()] == ["reconfig"]
    for origin in origins:  # real named loaded every file
        assert wait_for_serial(named_server.address, named_server.port, origin, 1) == 1

    counted_tools.unlink()
    log.unlink()
    provider.begin_run()
    for origin in origins:
        provider.apply(origin, [Change(CREATE, f"new.{origin}", "A", 300, new=("192.0.2.99",))], soa(2, origin), 1)
    assert provider.finish_run() == {}
    assert len(_lines(counted_tools, "named-checkconf")) == 1 and _lines(counted_tools, "named-checkzone") == []
    assert [line.split()[0] for line in log.read_text().splitlines()] == ["reload-all"]
    for origin in origins:
        assert wait_for_serial(named_server.address, named_server.port, origin, 2) == 2
    for origin in origins:
        provider.delete_zone(origin)


@pytest.mark.slow
def test_one_zone_failing_the_run_check_keeps_its_old_file_served_and_the_others_publish(named_server, counted_tools,
                                                                                         tmp_path) -> None:
    rndc = " ".join(named_server.rndc_command)
    provider = ZoneFileProvider("files", named_server.zonefile_dir, reload_all_command=f"{rndc} reload",
                                reconfig_command=f"{rndc} reconfig")
    origins = [unique_zone("onebad.test.") for _ in range(6)]
    for origin in origins:
        provider.create_zone(origin, soa(1, origin), _zone_records(origin))
    for origin in origins:
        assert wait_for_serial(named_server.address, named_server.port, origin, 1) == 1
    bad, new_bad = origins[2], unique_zone("onebad.test.")
    before = provider.path(bad).read_bytes()
    counted_tools.unlink(missing_ok=True)
    provider.begin_run()
    for origin in origins:
        changes = [Change(CREATE, f"www.{origin}", "A", 300, new=("192.0.2.80",))]
        if origin == bad:
            changes.append(Change(CREATE, f"www.{origin}", "CNAME", 300, new=(origin,)))
        provider.apply(origin, changes, soa(2, origin), 1)
    provider.create_zone(new_bad, soa(1, new_bad), _zone_records(new_bad) + [
        Record(f"h0.{new_bad}", "CNAME", 300, new_bad)])
    failures = provider.finish_run()
    assert set(failures) == {bad, new_bad}
    assert "CNAME and other data" in failures[bad] and bad in failures[bad] and "'files'" in failures[bad]
    assert "<zone file>" in failures[bad] and ".tmp" not in failures[bad]
    assert len(_lines(counted_tools, "named-checkconf")) == 1  # the failure did not cost a check per zone
    assert provider.path(bad).read_bytes() == before and provider.serial(bad) == 1
    assert not provider.path(new_bad).exists() and new_bad.rstrip(".") not in provider.named_conf.read_text()
    assert wait_for_serial(named_server.address, named_server.port, bad, 1) == 1  # named still serves the old one
    for origin in origins:
        if origin != bad:
            assert wait_for_serial(named_server.address, named_server.port, origin, 2) == 2
    assert not [p for p in named_server.zonefile_dir.iterdir() if p.name.endswith(".tmp")]
    for origin in origins:
        provider.delete_zone(origin)


@needs_checkzone
def test_the_run_check_agrees_with_named_checkzone(tmp_path: Path) -> None:
    """named-checkconf -z over many zones gives each zone named-checkzone -i local's verdict."""
    cases = {
        "ok.test.": [],
        "cname.test.": [Record("www.cname.test.", "A", 300, "192.0.2.1"), Record("www.cname.test.", "CNAME", 300, "x.example.")],
        "underscore.test.": [Record("_x.underscore.test.", "A", 300, "192.0.2.1")],  # check-names warns only
        "mxnoaddr.test.": [Record("mxnoaddr.test.", "MX", 300, "10 mx.mxnoaddr.test.")],  # a warning for both
        "nsnoglue.test.": [Record("nsnoglue.test.", "NS", 300, "ns2.nsnoglue.test.")],
        "dname.test.": [Record("d.dname.test.", "DNAME", 300, "x.example."), Record("a.d.dname.test.", "A", 300, "192.0.2.1")],
    }
    if shutil.which("named-checkconf") is None:
        pytest.skip("named-checkconf missing")
    provider = ZoneFileProvider("files", tmp_path / "zones")
    provider.begin_run()
    for origin, extra in cases.items():
        provider.create_zone(origin, soa(1, origin), nameservers(origin) + extra)
    staged = {origin: provider.path(origin) for origin in cases}
    oracle = {}
    for origin, entry in provider._staged.items():
        result = subprocess.run(["named-checkzone", "-i", "local", origin.rstrip("."), str(entry.temporary)],
                                capture_output=True, text=True)
        oracle[origin] = result.returncode == 0
    failures = provider.finish_run()
    assert {origin: origin not in failures for origin in cases} == oracle
    assert oracle == {"ok.test.": True, "cname.test.": False, "underscore.test.": True, "mxnoaddr.test.": True,
                      "nsnoglue.test.": False, "dname.test.": True}  # data under a DNAME: occluded, loaded
    assert {origin for origin, path in staged.items() if path.exists()} == {o for o, ok in oracle.items() if ok}


def test_a_run_end_failure_is_reported_on_its_zone_through_publish(tmp_path: Path) -> None:
    """The orchestrator: a zone refused at the run end (here by a per-zone check command) fails on
    its own outcome with its state forgotten; the other zones are applied and remembered."""
    from publisher.config import load_config_text
    from publisher.publish.orchestrator import APPLIED, FAILED, UNCHANGED, publish
    from publisher.publish.state import StateStore

    zones = tmp_path / "zones"
    zones.mkdir()
    for name in ("a.test", "b.test", "c.test"):
        (zones / f"{name}.lua").write_text('a("www", "192.0.2.1")\n')
    config = load_config_text("""
[source]
path = "zones"
[defaults]
nameservers = ["ns1.example.net."]
hostmaster = "hostmaster.example.net."
[[provider]]
name = "files"
type = "zonefile"
directory = "served"
[state]
path = "state.db"
""", base=tmp_path)
    log = tmp_path / "checks.log"
    refuse_b = ("import sys; open(sys.argv[1], 'a').write(sys.argv[2] + '\\n'); "
                "sys.exit(3 if sys.argv[2] == 'b.test' else 0)")
    provider = ZoneFileProvider("files", tmp_path / "served",
                                check_command=f'{sys.executable} -c "{refuse_b}" {log} {{zone}} {{file}}')
    with StateStore(config.state.path) as state:
        report = publish(config, zones, apply=True, state=state, providers={"files": provider})
        outcomes = {o.zone: o for o in report.outcomes}
        assert {z: o.status for z, o in outcomes.items()} == {"a.test.": APPLIED, "b.test.": FAILED, "c.test.": APPLIED}
        assert "b.test." in outcomes["b.test."].error and "exited 3" in outcomes["b.test."].error
        assert state.get("files", "b.test.") is None and state.get("files", "a.test.") is not None
        assert not provider.path("b.test.").exists() and provider.serial("a.test.") is not None
        assert sorted(log.read_text().split()) == ["a.test", "b.test", "c.test"]  # checked once each, at the end
        again = publish(config, zones, apply=False, state=state, providers={"files": provider})
    assert {o.zone: o.status for o in again.outcomes} == {"a.test.": UNCHANGED, "b.test.": "planned",
                                                          "c.test.": UNCHANGED}


def test_a_failed_run_reload_puts_every_previous_file_back(tmp_path: Path) -> None:
    provider = ZoneFileProvider("files", tmp_path, check_command="",
                                reload_all_command=f'{sys.executable} -c "import sys; sys.exit(4)" {{zones}}')
    origins = ["a.test.", "b.test."]
    for origin in origins:
        provider.create_zone(origin, soa(1, origin), nameservers(origin))
    before = {origin: provider.path(origin).read_bytes() for origin in origins}
    provider.begin_run()
    for origin in origins:
        provider.apply(origin, [Change(CREATE, f"x.{origin}", "A", 300, new=("192.0.2.7",))], soa(2, origin), 1)
    failures = provider.finish_run()
    assert set(failures) == set(origins)
    assert all("reload failed" in failures[o] and "exited 4" in failures[o] and o in failures[o] for o in origins)
    assert {origin: provider.path(origin).read_bytes() for origin in origins} == before
    assert provider.serial("a.test.") == 1 and not provider._in_run


def test_a_run_without_a_run_reload_reloads_each_changed_zone_once(tmp_path: Path) -> None:
    """Only ``reload_command``: each zone changed in the run is reloaded once, at its end; the
    zone whose reload fails gets its previous file back, the others keep their new one."""
    log = tmp_path / "reloads.log"
    script = ("import sys; open(sys.argv[1], 'a').write(sys.argv[2] + '\\n'); "
              "sys.exit(5 if sys.argv[2] == 'b.test' else 0)")
    provider = ZoneFileProvider("files", tmp_path / "zones", check_command="",
                                reload_command=f'{sys.executable} -c "{script}" {log} {{zone}}')
    origins = ["a.test.", "b.test.", "c.test."]
    for origin in origins:
        provider.create_zone(origin, soa(1, origin), nameservers(origin))
    before = provider.path("b.test.").read_bytes()
    provider.begin_run()
    for origin in origins:  # two applies to one zone in a run: still one reload
        provider.apply(origin, [Change(CREATE, f"x.{origin}", "A", 300, new=("192.0.2.7",))], soa(2, origin), 1)
    provider.apply("a.test.", [Change(CREATE, "y.a.test.", "A", 300, new=("192.0.2.8",))], soa(3, "a.test."), 2)
    assert log.exists() is False  # nothing reloaded before the run ends
    failures = provider.finish_run()
    assert sorted(log.read_text().split()) == ["a.test", "b.test", "c.test"]
    assert set(failures) == {"b.test."} and "exited 5" in failures["b.test."]
    assert provider.path("b.test.").read_bytes() == before
    assert (provider.serial("a.test."), provider.serial("c.test.")) == (3, 2)
    assert {r.name for r in provider.read("a.test.").records} >= {"x.a.test.", "y.a.test."}
