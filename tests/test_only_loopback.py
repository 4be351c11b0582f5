"""The suite-wide guard of tests/conftest.py: a socket aimed off the machine fails the test."""

import socket

import dns.message
import dns.query
import pytest


def test_connecting_off_the_machine_fails_before_any_packet():
    with socket.socket() as sock, pytest.raises(AssertionError, match="only loopback"):
        sock.connect(("192.0.2.1", 53))


def test_a_dns_query_to_a_non_loopback_resolver_fails():
    with pytest.raises(AssertionError, match="only loopback"):
        dns.query.udp(dns.message.make_query("example.com.", "A"), "10.255.255.53", timeout=1)


def test_loopback_is_allowed():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        with socket.socket() as client:
            client.connect(server.getsockname())
            assert client.getpeername() == server.getsockname()
