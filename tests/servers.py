"""Real DNS servers for tests: BIND ``named``, Knot ``knotd`` and PowerDNS ``pdns_server``.

Each fixture writes a configuration into a temporary directory, starts the real daemon on
127.0.0.1 on free ports, waits until it answers, and kills it at teardown.  They are
session-scoped (starting servers is the slow part); tests get isolation by asking the server for
a fresh zone (``new_zone()``) instead of a fresh server.

Registered for every test module through ``pytest_plugins`` in ``tests/conftest.py``:
``named_server``, ``knot_server``, ``pdns_server``.
"""

from __future__ import annotations

import ctypes
import itertools
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import dns.exception
import dns.message
import dns.query
import dns.rdatatype
import pytest
import requests

from publisher.publish.providers.tsig import TsigKey, read_keyfile

LOOPBACK = "127.0.0.1"
START_TIMEOUT = 30.0
_zone_counter = itertools.count(1)


def free_port() -> int:
    """A port free for both TCP and UDP on loopback (DNS needs both)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind((LOOPBACK, 0))
            port = tcp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind((LOOPBACK, port))
                except OSError:
                    continue
            return port
    raise RuntimeError("no free loopback port")


def unique_zone(suffix: str) -> str:
    """A zone name no other test of this session uses."""
    return f"z{os.getpid()}-{next(_zone_counter)}.{suffix}"


def minimal_zone_text(origin: str, serial: int = 1) -> str:
    return (
        f"$TTL 300\n"
        f"{origin} 300 IN SOA ns1.{origin} hostmaster.{origin} {serial} 3600 600 604800 300\n"
        f"{origin} 300 IN NS ns1.{origin}\n"
        f"ns1.{origin} 300 IN A 127.0.0.1\n"
    )


def query_soa_serial(address: str, port: int, origin: str, timeout: float = 1.0) -> int | None:
    """The SOA serial the server answers for ``origin``, None when it does not answer it."""
    query = dns.message.make_query(origin, dns.rdatatype.SOA)
    try:
        response = dns.query.udp(query, address, port=port, timeout=timeout)
    except (dns.exception.Timeout, OSError):
        return None
    for rrset in response.answer:
        if rrset.rdtype == dns.rdatatype.SOA:
            return rrset[0].serial
    return None


def wait_for_serial(address: str, port: int, origin: str, expected: int | None, timeout: float = 15.0) -> int | None:
    """The served serial once it equals ``expected`` (zone loads and reloads are asynchronous in
    named), or the last one seen when ``timeout`` runs out."""
    deadline = time.monotonic() + timeout
    while True:
        serial = query_soa_serial(address, port, origin)
        if serial == expected or time.monotonic() > deadline:
            return serial
        time.sleep(0.02)


def _tcp_open(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), timeout=0.5):
            return True
    except OSError:
        return False


def _die_with_parent() -> None:
    """In the child: get SIGTERM when the test process dies, even by SIGKILL (no leaked servers)."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


@dataclass
class _Daemon:
    """A server process started from an argv, with its output going to a log file."""

    argv: list[str]
    log: Path
    process: subprocess.Popen | None = None

    def start(self) -> None:
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                self.argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
                preexec_fn=_die_with_parent,
            )

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None

    def check_alive(self, what: str) -> None:
        if self.process is not None and self.process.poll() is not None:
            tail = self.log.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"{what} exited with {self.process.returncode}:\n{tail}")


def _wait(condition, daemon: _Daemon, what: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        daemon.check_alive(what)
        if condition():
            return
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not answer within {START_TIMEOUT:.0f} s; log: {daemon.log}")


class _Lifecycle:
    """start/stop/restart shared by the server fixtures: start the daemon, then wait until its
    ``ready()`` check answers (the process dying meanwhile fails at once, with its log)."""

    process_name = ""
    daemon: _Daemon | None

    def ready(self) -> bool:
        raise NotImplementedError

    def start(self) -> None:
        self.daemon.start()
        _wait(self.ready, self.daemon, self.process_name)

    def stop(self) -> None:
        self.daemon.stop()

    def restart(self) -> None:
        self.stop()
        self.start()


# --------------------------------------------------------------------------------------------- BIND


@dataclass
class NamedServer(_Lifecycle):
    """A running ``named``: TSIG key ``publisher`` may update and transfer every zone it adds.

    ``zonefile_dir`` is included by named.conf (``named.conf.zones``) so the zonefile provider can
    write zones there and reload them with ``rndc_command``.
    """

    directory: Path
    address: str = LOOPBACK
    port: int = 0
    rndc_port: int = 0
    keyfile: Path = Path()
    key: TsigKey | None = None
    daemon: _Daemon | None = None

    @property
    def zonefile_dir(self) -> Path:
        return self.directory / "zonefiles"

    @property
    def rndc_command(self) -> list[str]:
        return ["rndc", "-c", str(self.directory / "rndc.conf")]

    def rndc(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(self.rndc_command + list(args), capture_output=True, text=True, check=check, timeout=60)

    process_name = "named"

    def ready(self) -> bool:
        return _tcp_open(self.address, self.port) and self.rndc("status", check=False).returncode == 0

    def new_zone(self, origin: str | None = None) -> str:
        """Add a dynamic zone (SOA, NS, glue only) that the ``publisher`` key may update."""
        origin = origin or unique_zone("bind.test.")
        name = origin.rstrip(".")
        (self.directory / "dynamic" / f"{name}.db").write_text(minimal_zone_text(origin))
        stanza = (
            f'{{ type primary; file "dynamic/{name}.db"; allow-update {{ key "{self.key.name}"; }}; '
            f'allow-transfer {{ key "{self.key.name}"; }}; }};'
        )
        self.rndc("addzone", name, stanza)
        deadline = time.monotonic() + START_TIMEOUT
        while query_soa_serial(self.address, self.port, origin) is None:
            if time.monotonic() > deadline:
                raise RuntimeError(f"named did not load {origin}")
            time.sleep(0.02)
        return origin


def _start_named(directory: Path) -> NamedServer:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "dynamic").mkdir(exist_ok=True)
    (directory / "zonefiles").mkdir(exist_ok=True)
    (directory / "zonefiles" / "named.conf.zones").write_text("")
    server = NamedServer(directory, port=free_port(), rndc_port=free_port())
    keyfile = directory / "publisher.key"
    keyfile.write_text(subprocess.run(["tsig-keygen", "-a", "hmac-sha256", "publisher"],
                                      capture_output=True, text=True, check=True).stdout)
    rndc_key = subprocess.run(["tsig-keygen", "-a", "hmac-sha256", "rndc-key"],
                              capture_output=True, text=True, check=True).stdout
    (directory / "rndc.key").write_text(rndc_key)
    (directory / "rndc.conf").write_text(
        rndc_key + f'options {{ default-key "rndc-key"; default-server {LOOPBACK}; default-port {server.rndc_port}; }};\n'
    )
    server.keyfile = keyfile
    server.key = read_keyfile(keyfile)
    (directory / "named.conf").write_text(f"""
include "{keyfile}";
include "{directory}/rndc.key";
options {{
    directory "{directory}";
    pid-file "{directory}/named.pid";
    session-keyfile "{directory}/session.key";
    managed-keys-directory "{directory}";
    listen-on port {server.port} {{ {LOOPBACK}; }};
    listen-on-v6 {{ none; }};
    recursion no;
    notify no;
    dnssec-validation no;
    allow-new-zones yes;
    allow-transfer {{ key "publisher"; }};
    max-journal-size 20m;
}};
controls {{ inet {LOOPBACK} port {server.rndc_port} allow {{ {LOOPBACK}; }} keys {{ "rndc-key"; }}; }};
include "{directory}/zonefiles/named.conf.zones";
""")
    server.daemon = _Daemon(["named", "-g", "-c", str(directory / "named.conf"), "-n", "1"], directory / "named.log")
    server.start()
    return server


@pytest.fixture(scope="session")
def named_server(tmp_path_factory) -> Iterator[NamedServer]:
    if shutil.which("named") is None:
        pytest.skip("named (bind9) is not installed")
    server = _start_named(tmp_path_factory.mktemp("named"))
    try:
        yield server
    finally:
        server.stop()


# --------------------------------------------------------------------------------------------- Knot


@dataclass
class KnotServer(_Lifecycle):
    """A running ``knotd``: the ``publisher`` key may update and transfer every zone."""

    directory: Path
    address: str = LOOPBACK
    port: int = 0
    keyfile: Path = Path()
    key: TsigKey | None = None
    daemon: _Daemon | None = None

    @property
    def socket_path(self) -> Path:
        return self.directory / "knot.sock"

    @property
    def knotc_command(self) -> list[str]:
        return ["knotc", "-s", str(self.socket_path), "-t", "60"]

    def knotc(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(self.knotc_command + list(args), capture_output=True, text=True, check=check, timeout=90)

    process_name = "knotd"

    def ready(self) -> bool:
        return _tcp_open(self.address, self.port) and self.knotc("status", check=False).returncode == 0

    def new_zone(self, origin: str | None = None) -> str:
        """Add a zone (SOA, NS, glue only) through a configuration transaction."""
        origin = origin or unique_zone("knot.test.")
        (self.directory / "zones" / f"{origin}zone").write_text(minimal_zone_text(origin))
        self.knotc("conf-begin")
        try:
            self.knotc("conf-set", f"zone[{origin}]")
            self.knotc("conf-set", f"zone[{origin}].template", "publisher")
            self.knotc("conf-commit")
        except subprocess.CalledProcessError:
            self.knotc("conf-abort", check=False)
            raise
        deadline = time.monotonic() + START_TIMEOUT
        while query_soa_serial(self.address, self.port, origin) is None:
            if time.monotonic() > deadline:
                raise RuntimeError(f"knotd did not load {origin}")
            time.sleep(0.02)
        return origin


def _start_knot(directory: Path) -> KnotServer:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "zones").mkdir(exist_ok=True)
    (directory / "db").mkdir(exist_ok=True)  # journal and timers; knotd does not create it
    server = KnotServer(directory, port=free_port())
    keyfile = directory / "publisher.key"
    keyfile.write_text(subprocess.run(["tsig-keygen", "-a", "hmac-sha256", "publisher"],
                                      capture_output=True, text=True, check=True).stdout)
    server.keyfile = keyfile
    server.key = read_keyfile(keyfile)
    conf = directory / "knot.conf"
    conf.write_text(f"""
server:
    rundir: "{directory}"
    pidfile: "{directory}/knot.pid"
    listen: {LOOPBACK}@{server.port}
    tcp-max-clients: 50
log:
  - target: stderr
    any: info
database:
    storage: "{directory}/db"
control:
    listen: "{server.socket_path}"
key:
  - id: publisher
    algorithm: hmac-sha256
    secret: {server.key.secret}
acl:
  - id: publisher
    key: publisher
    action: [transfer, update]
template:
  - id: default
    storage: "{directory}/zones"
  - id: publisher
    storage: "{directory}/zones"
    file: "%s.zone"
    acl: publisher
    semantic-checks: off
    journal-content: changes
""")
    # A configuration database makes conf-begin/conf-set/conf-commit (new_zone) possible.
    subprocess.run(["knotc", "-C", str(directory / "confdb"), "conf-import", str(conf)],
                   capture_output=True, text=True, check=True)
    server.daemon = _Daemon(["knotd", "-C", str(directory / "confdb")], directory / "knotd.log")
    server.start()
    return server


@pytest.fixture(scope="session")
def knot_server(tmp_path_factory) -> Iterator[KnotServer]:
    if shutil.which("knotd") is None:
        pytest.skip("knotd (knot) is not installed")
    server = _start_knot(tmp_path_factory.mktemp("knot"))
    try:
        yield server
    finally:
        server.stop()


# ----------------------------------------------------------------------------------------- PowerDNS

PDNS_SCHEMA_PATHS = (
    Path("/usr/share/doc/pdns-backend-sqlite3/schema.sqlite3.sql"),
    Path("/usr/share/pdns-backend-sqlite3/schema/schema.sqlite3.sql"),
)


@dataclass
class PowerDNSServer(_Lifecycle):
    """A running ``pdns_server`` with the gsqlite3 backend and its HTTP API on loopback."""

    directory: Path
    address: str = LOOPBACK
    port: int = 0
    api_port: int = 0
    api_key: str = ""
    server_id: str = "localhost"
    daemon: _Daemon | None = None

    @property
    def api_url(self) -> str:
        return f"http://{LOOPBACK}:{self.api_port}/api/v1"

    process_name = "pdns_server"

    def ready(self) -> bool:
        try:
            response = requests.get(f"{self.api_url}/servers/{self.server_id}",
                                    headers={"X-API-Key": self.api_key}, timeout=1)
        except requests.RequestException:
            return False
        return response.status_code == 200 and _tcp_open(self.address, self.port)


    def new_zone(self, origin: str | None = None) -> str:
        """Create a Native zone (SOA, NS) through the API."""
        origin = origin or unique_zone("pdns.test.")
        body = {
            "name": origin,
            "kind": "Native",
            "nameservers": [],
            "soa_edit_api": "",
            "rrsets": [
                {"name": origin, "type": "SOA", "ttl": 300, "changetype": "REPLACE", "records": [
                    {"content": f"ns1.{origin} hostmaster.{origin} 1 3600 600 604800 300", "disabled": False}]},
                {"name": origin, "type": "NS", "ttl": 300, "changetype": "REPLACE", "records": [
                    {"content": f"ns1.{origin}", "disabled": False}]},
            ],
        }
        response = requests.post(f"{self.api_url}/servers/{self.server_id}/zones", json=body,
                                 headers={"X-API-Key": self.api_key}, timeout=30)
        response.raise_for_status()
        return origin


def _start_pdns(directory: Path) -> PowerDNSServer:
    directory.mkdir(parents=True, exist_ok=True)
    schema = next((path for path in PDNS_SCHEMA_PATHS if path.exists()), None)
    if schema is None:
        pytest.skip("PowerDNS sqlite3 schema not found (pdns-backend-sqlite3)")
    database = directory / "pdns.sqlite3"
    import sqlite3

    with sqlite3.connect(database) as connection:
        connection.executescript(schema.read_text())
    server = PowerDNSServer(directory, port=free_port(), api_port=free_port(), api_key=os.urandom(16).hex())
    (directory / "pdns.conf").write_text(f"""
launch=gsqlite3
gsqlite3-database={database}
local-address={LOOPBACK}
local-port={server.port}
api=yes
api-key={server.api_key}
webserver=yes
webserver-address={LOOPBACK}
webserver-port={server.api_port}
webserver-allow-from=127.0.0.0/8
socket-dir={directory}
guardian=no
daemon=no
disable-syslog=yes
loglevel=3
cache-ttl=0
query-cache-ttl=0
negquery-cache-ttl=0
zone-cache-refresh-interval=0
allow-axfr-ips=127.0.0.0/8
""")
    server.daemon = _Daemon(["pdns_server", f"--config-dir={directory}"], directory / "pdns.log")
    server.start()
    return server


@pytest.fixture(scope="session")
def pdns_server(tmp_path_factory) -> Iterator[PowerDNSServer]:
    if shutil.which("pdns_server") is None:
        pytest.skip("pdns_server (pdns-server) is not installed")
    server = _start_pdns(tmp_path_factory.mktemp("pdns"))
    try:
        yield server
    finally:
        server.stop()
