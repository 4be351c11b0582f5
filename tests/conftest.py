"""Shared test setup.  Real-server fixtures live in their own modules, listed below, so each area
keeps its fixtures beside its tests."""

import ipaddress
import socket
from pathlib import Path

import pytest

pytest_plugins = ["tests.servers", "tests.postgres"]  # named_server, knot_server, pdns_server; postgres_server, state_location

TESTS = Path(__file__).parent
DATA = TESTS / "data"


@pytest.fixture
def data_dir() -> Path:
    return DATA


# -- only loopback ------------------------------------------------------------------------------
# Tests talk to servers they start on 127.0.0.1 and nothing else.  Every socket this process opens
# is checked, so a default that reaches out (a system resolver, a forge URL from a payload) fails
# the test that triggers it instead of sending traffic off the machine.

_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex
_real_sendto = socket.socket.sendto


def _is_local(address) -> bool:
    if isinstance(address, (str, bytes)):  # AF_UNIX path
        return True
    host = address[0]
    if isinstance(host, bytes):
        host = host.decode()
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False  # a host name other than localhost: would need a resolver


def _guard(address) -> None:
    if not _is_local(address):
        raise AssertionError(f"test tried to reach {address!r}: only loopback is allowed")


def _connect(self, address):
    _guard(address)
    return _real_connect(self, address)


def _connect_ex(self, address):
    _guard(address)
    return _real_connect_ex(self, address)


def _sendto(self, data, *args):
    _guard(args[-1])
    return _real_sendto(self, data, *args)


@pytest.fixture(autouse=True, scope="session")
def only_loopback():
    socket.socket.connect, socket.socket.connect_ex, socket.socket.sendto = _connect, _connect_ex, _sendto
    yield
    socket.socket.connect, socket.socket.connect_ex, socket.socket.sendto = (_real_connect, _real_connect_ex,
                                                                               _real_sendto)
