"""Route 53 as implemented by ``moto`` in server mode, on loopback, for the octoDNS bridge.

``moto.server.ThreadedMotoServer`` serves the AWS APIs over HTTP on 127.0.0.1 on a free port;
boto3 is pointed at it through its documented endpoint variable (``AWS_ENDPOINT_URL_ROUTE_53``;
``octodns_route53.Route53Provider`` takes no endpoint parameter) with fake credentials, and the
credential files and instance metadata are switched off, so nothing leaves the machine.

moto is pinned below 5.2 (pyproject ``test`` extra): moto 5.2.x answers ListHealthChecks
without ``IsTruncated``, and octodns-route53 reads that key on every record it creates
(``Route53Provider.health_checks``), so every apply fails with a KeyError.  Use the fixture by
importing it into a test module: ``from tests.moto_server import moto_route53  # noqa: F401``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Iterator

import pytest

from tests.servers import LOOPBACK, free_port

FAKE_CREDENTIALS = {"access_key_id": "AKIAZONEPUBLISHERTEST", "secret_access_key": "moto-fake-secret-access-key"}


@dataclass
class MotoServer:
    """A running moto server; ``stop``/``start`` keep its state (moto's backends live in this process)."""

    port: int
    server: object = None

    @property
    def endpoint(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def start(self) -> None:
        from moto.server import ThreadedMotoServer

        self.server = ThreadedMotoServer(ip_address=LOOPBACK, port=self.port, verbose=False)
        self.server.start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None

    def client(self):
        """A boto3 Route 53 client of the same fake account, to play the host's console."""
        import boto3

        return boto3.client("route53", aws_access_key_id=FAKE_CREDENTIALS["access_key_id"],
                            aws_secret_access_key=FAKE_CREDENTIALS["secret_access_key"])


AWS_ENVIRONMENT = {
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_MAX_ATTEMPTS": "2",  # a stopped server fails fast
    "AWS_RETRY_MODE": "standard",
}


@pytest.fixture(scope="session")
def moto_route53() -> Iterator[MotoServer]:
    pytest.importorskip("moto.server", reason="moto[server] is not installed (pip install 'zone-publisher[test]')")
    pytest.importorskip("octodns_route53", reason="octodns-route53 is not installed")
    server = MotoServer(free_port())
    saved = {key: os.environ.get(key) for key in (*AWS_ENVIRONMENT, "AWS_ENDPOINT_URL_ROUTE_53")}
    os.environ.update(AWS_ENVIRONMENT, AWS_ENDPOINT_URL_ROUTE_53=server.endpoint)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
