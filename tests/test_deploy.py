"""The deployment as shipped: the Dockerfile and compose example stay in step with the code (images
cannot be pulled here, so the container's start command and configuration are checked without
Docker), and the reference nginx configuration runs for real in front of `zone-publisher serve`."""

import http.client
import json
import os
import re
import signal
import socket
import ssl
import threading
from pathlib import Path

import pytest
import requests
import yaml

from publisher.cli import build_parser
from publisher.config import load_config_text

ROOT = Path(__file__).resolve().parent.parent


def test_container_start_command_parses_and_runs_as_non_root():
    dockerfile = (ROOT / "Dockerfile").read_text()
    entrypoint = json.loads(re.search(r"^ENTRYPOINT (.+)$", dockerfile, re.M).group(1))
    command = json.loads(re.search(r"^CMD (.+)$", dockerfile, re.M).group(1))
    assert entrypoint[0] == "zone-publisher"
    args = build_parser().parse_args(entrypoint[1:] + command)
    # loopback only: nginx shares the container's network namespace (docker-compose.yml)
    assert (args.command, args.listen) == ("serve", "127.0.0.1:8053")
    assert f"server {args.listen};" in (ROOT / "examples" / "nginx" / "zone-publisher.conf").read_text()
    assert re.search(r"^USER publisher$", dockerfile, re.M)
    assert "git" in dockerfile and "pip install" in dockerfile


def test_compose_example_config_loads(tmp_path, monkeypatch):
    monkeypatch.setenv("SMTP_PASSWORD", "pw")
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert set(compose["services"]) == {"bind", "publisher", "nginx"}
    nginx = compose["services"]["nginx"]
    assert nginx["network_mode"] == "service:publisher"  # reaches the publisher's loopback, nothing else does
    assert "./examples/nginx/zone-publisher.conf:/etc/nginx/conf.d/default.conf:ro" in nginx["volumes"]
    assert set(compose["services"]["publisher"]["ports"]) == {"80:80", "443:443"}  # nginx's, no 8053
    secret = tmp_path / "webhook-secret"
    secret.write_text("s3cret")
    text = (ROOT / "examples" / "compose" / "config.toml").read_text().replace(
        "/etc/zone-publisher/webhook-secret", str(secret))
    config = load_config_text(text, base=tmp_path)
    assert config.providers[0].type == "rfc2136" and config.webhook.secret == "s3cret"
    assert config.poll.interval == 300


# -- the reference deployment: real nginx in front of a real `zone-publisher serve` -----------------

NGINX_EXAMPLE = ROOT / "examples" / "nginx" / "zone-publisher.conf"


def nginx_directive(name: str) -> str:
    """The value of the one ``name`` directive of the HTTPS server in the example."""
    https_server = NGINX_EXAMPLE.read_text().split("listen 443 ssl;", 1)[1]
    [value] = re.findall(rf"^\s*{name}\s+([^;]+);", https_server, re.M)
    return value.strip()


def test_nginx_example_body_limit_is_the_services_max_body():
    from publisher.config import Config

    value = nginx_directive("client_max_body_size")
    number, unit = re.fullmatch(r"(\d+)([km]?)", value).groups()
    assert int(number) * {"": 1, "k": 1024, "m": 1024 * 1024}[unit] == Config.default().webhook.max_body


def test_nginx_example_forwards_the_peer_address_and_scheme_and_logs_no_uri():
    text = NGINX_EXAMPLE.read_text()
    assert "proxy_set_header X-Forwarded-For $remote_addr;" in text  # replaces a client-sent header
    assert "proxy_set_header X-Forwarded-Proto $scheme;" in text
    log_format = re.search(r"log_format zone_publisher (.+?);", text, re.S).group(1)
    for leaky in ("$request ", "$request_uri", "$args", "$query_string", "$http_referer", "$uri"):
        assert leaky not in log_format + " "
    for name in ("client_header_timeout", "client_body_timeout", "send_timeout", "keepalive_timeout",
                 "keepalive_requests"):
        assert nginx_directive(name)


def test_nginx_accepts_the_example_configuration(tmp_path):
    from tests.nginx import Nginx

    proxy = Nginx(8053)
    try:
        check = proxy.check()
        assert check.returncode == 0 and "test is successful" in check.stderr, check.stderr
    finally:
        proxy.remove()


class HttpsClient:
    """One kept-alive HTTPS connection to nginx from a chosen loopback address (nginx's client address)."""

    def __init__(self, proxy, source: str) -> None:
        context = ssl.create_default_context(cafile=str(proxy.certificate))
        self.connection = http.client.HTTPSConnection("127.0.0.1", proxy.https_port, context=context,
                                                      source_address=(source, 0), timeout=20)

    def post(self, path: str, body: bytes = b"{}", headers: dict | None = None) -> tuple[int, bytes]:
        self.connection.request("POST", path, body=body, headers=headers or {"Content-Type": "application/json"})
        response = self.connection.getresponse()
        return response.status, response.read()

    def close(self) -> None:
        self.connection.close()


def tls_socket(proxy, source: str) -> ssl.SSLSocket:
    context = ssl.create_default_context(cafile=str(proxy.certificate))
    raw = socket.create_connection(("127.0.0.1", proxy.https_port), source_address=(source, 0), timeout=20)
    return context.wrap_socket(raw, server_hostname="localhost")


class Slowloris:
    """``count`` TLS connections each sending one byte of a never-ending request head per tick (a
    second).  ``ticks`` is the clock valid requests are checked against; ``closed_after[i]`` is how
    many bytes connection i had sent when nginx closed it."""

    HEAD = b"POST /hooks/slow HTTP/1.1\r\nHost: publisher.example.com\r\nX-Padding: " + b"a" * 200

    def __init__(self, proxy, count: int, source: str = "127.0.0.4", max_ticks: int = 40) -> None:
        self.sockets = [tls_socket(proxy, source) for _ in range(count)]
        for sock in self.sockets:
            sock.setblocking(False)
        self.sent = [0] * count
        self.closed_after: list[int | None] = [None] * count
        self.ticks = 0
        self.max_ticks = max_ticks
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set() and self.ticks < self.max_ticks:
            for index, sock in enumerate(self.sockets):
                if self.closed_after[index] is not None:
                    continue
                try:
                    try:
                        if not sock.recv(4096):
                            raise ConnectionError("closed")
                    except ssl.SSLWantReadError:
                        pass  # no data (a TLS 1.3 session ticket at most): still open
                    sock.send(self.HEAD[self.sent[index]:self.sent[index] + 1])
                    self.sent[index] += 1
                except (OSError, ValueError, ConnectionError):  # ValueError: closed by stop()
                    self.closed_after[index] = self.sent[index]
            self.ticks += 1
            self._stop.wait(1.0)

    def all_closed(self) -> bool:
        return all(sent is not None for sent in self.closed_after)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        for sock in self.sockets:
            sock.close()


@pytest.mark.slow
def test_reference_deployment_tls_flood_slowloris_and_no_token_in_logs(tmp_path, named_server):
    """nginx configured with examples/nginx/zone-publisher.conf in front of `zone-publisher serve`."""
    from tests.mailserver import free_port
    from tests.nginx import Nginx
    from tests.test_service_e2e import Service, signed_push, wait_until

    service = Service(tmp_path / "service", named_server, smtp_port=free_port())
    service.start()
    proxy = Nginx(service.port).start()
    slowloris = None
    try:
        webhook = f"/notifications/{service.token}/push"
        slowloris = Slowloris(proxy, 20)  # they run during everything below

        # A valid signed push over HTTPS is accepted and published.
        forge = HttpsClient(proxy, "127.0.0.3")
        commit = service.commit("192.0.2.70", "Through nginx")
        status, answer = forge.post(webhook, *signed_push(commit))
        assert status == 202 and json.loads(answer)["job"]
        wait_until(lambda: service.served() == {"192.0.2.70"}, "named to serve the push made through nginx")
        wait_until(service.idle, "the queue to drain")

        # Plain HTTP: the webhook is refused, nothing is queued; pages redirect to HTTPS.
        jobs = service.jobs()
        body, headers = signed_push(service.commit("192.0.2.71", "Over plain HTTP"))
        plain = requests.post(proxy.http_url + webhook, data=body, headers=headers, timeout=10, allow_redirects=False)
        assert plain.status_code == 403 and "HTTPS only" in plain.text
        page = requests.get(proxy.http_url + "/", timeout=10, allow_redirects=False)
        assert page.status_code == 301 and page.headers["Location"].startswith("https://")
        assert service.jobs() == jobs

        # A flood of bad tokens from 127.0.0.2 is shed by nginx while the forge's pushes get 202.
        os.kill(worker := service.worker_pid(), signal.SIGSTOP)  # hold the runs: every push below is queued
        flood_statuses: list[int] = []

        def flood() -> None:
            client = HttpsClient(proxy, "127.0.0.2")
            try:
                for number in range(75):
                    flood_statuses.append(client.post(f"/notifications/guess-{number}/push")[0])
            finally:
                client.close()

        flooders = [threading.Thread(target=flood) for _ in range(4)]
        for thread in flooders:
            thread.start()
        pushes = []
        for number in range(5):
            commit = service.commit(f"192.0.2.{80 + number}", f"During the flood {number}")
            before = slowloris.ticks
            status, answer = forge.post(webhook, *signed_push(commit))
            pushes.append((status, json.loads(answer).get("status"), slowloris.ticks - before))
        for thread in flooders:
            thread.join(timeout=60)
        os.kill(worker, signal.SIGCONT)
        assert [status for status, _, _ in pushes] == [202] * 5, pushes
        assert {outcome for _, outcome, _ in pushes} <= {"queued", "coalesced"}, pushes
        # Each valid push was answered within one tick of the slowloris clock (about a second).
        assert all(ticks <= 1 for _, _, ticks in pushes), pushes
        assert len(flood_statuses) == 300 and set(flood_statuses) <= {403, 429}
        passed = flood_statuses.count(403)
        assert flood_statuses.count(429) >= 250 and passed <= 20  # burst 10 + 1/s
        metrics = requests.get(service.url + "/metrics", timeout=5).text
        seen = float(re.search(r'publisher_webhook_requests_total\{outcome="bad-token"\} (\S+)', metrics).group(1))
        assert seen == passed  # the service saw only what nginx let through
        wait_until(lambda: service.served() == {"192.0.2.84"}, "the newest push of the flood to be published")

        # Requests meant to put the token into logs; nginx answers them or passes them on.
        limited = HttpsClient(proxy, "127.0.0.2")  # still over its limit: a real token is shed too
        status, answer = limited.post(webhook, *signed_push(commit))
        assert status == 429 and b"nginx" in answer
        limited.close()
        odd = HttpsClient(proxy, "127.0.0.5")
        assert odd.post(f"/notifications/../{service.token}/push")[0] == 404
        # The query string reaches the service (whose log is the web layer's business): nginx does not log it.
        assert odd.post(f"{webhook}?token=query-secret-{service.token[:8]}")[0] == 401
        odd.close()
        for request in (f"POST {webhook} HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n\r\n",
                        f"POST /hooks/{service.token}\r\n\r\n"):
            with tls_socket(proxy, "127.0.0.6") as sock:
                sock.sendall(request.encode())
                reply = sock.recv(4096)
                # 413 before any body byte (client_max_body_size); no HTTP version: refused by nginx
                assert reply.startswith(b"HTTP/1.1 413") if "Content-Length" in request else b"400 Bad Request" in reply

        # nginx closes each slowloris connection at client_header_timeout (10 s): by counting bytes.
        wait_until(slowloris.all_closed, "nginx to close the slowloris connections", timeout=30, interval=0.5)
        assert all(5 <= sent <= 13 for sent in slowloris.closed_after), slowloris.closed_after
    finally:
        if slowloris:
            slowloris.stop()
        proxy.stop()
        service.stop()
    nginx_logs, our_log = proxy.log_text(), service.log.read_text()
    proxy.remove()
    access = [line for line in nginx_logs.splitlines() if line.startswith("127.0.0.")]
    assert any('"POST /notifications/[redacted]/push HTTP/1.1" 202' in line and line.startswith("127.0.0.3 ")
               for line in access)
    assert sum(1 for line in access if line.startswith("127.0.0.2 ") and '" 429 ' in line) >= 250
    assert any('"POST [other] HTTP/1.1" 404' in line for line in access)
    assert any('" 408 ' in line and line.startswith("127.0.0.4 ") for line in access)  # the slowloris
    assert service.token not in nginx_logs and service.token not in our_log
    assert "query-secret" not in nginx_logs
    assert "/notifications/[redacted]/push" in our_log


@pytest.mark.slow
def test_nginx_error_log_never_quotes_a_webhook_token():
    """nginx quotes the request line in error messages (upstream down, limit_req, 413, timeouts):
    the example logs those at levels that leave webhook requests out, and the access log masks them."""
    from tests.mailserver import free_port
    from tests.nginx import Nginx

    token = "tok-" + "x" * 40
    with Nginx(free_port()) as proxy:  # nothing listens upstream: every proxied request fails
        client = HttpsClient(proxy, "127.0.0.7")
        statuses = [client.post(f"/notifications/{token}/push")[0] for _ in range(14)]
        client.close()
        with tls_socket(proxy, "127.0.0.8") as sock:  # a bad request line carrying the token
            sock.sendall(f"POST /hooks/{token} HTTP/1.1 extra\r\n\r\n".encode())
            assert b"400 Bad Request" in sock.recv(4096)
        assert requests.get(proxy.https_url + "/healthz", verify=str(proxy.certificate), timeout=10).status_code == 502
        proxy.stop()
        logs = proxy.log_text()
    assert statuses[:11] == [502] * 11 and 429 in statuses  # the burst of 10 (+1/s), then limit_req
    assert "connect() failed" in logs  # the error log is written: /healthz's failure is in it
    assert token not in logs
    assert logs.count("/notifications/[redacted]/push") == 14


# -- two instances on PostgreSQL (examples/compose/postgresql) -------------------------------------

def test_compose_example_with_two_instances_on_postgresql(tmp_path, monkeypatch):
    import subprocess

    directory = ROOT / "examples" / "compose" / "postgresql"
    compose = yaml.safe_load((directory / "docker-compose.yml").read_text())
    services = compose["services"]
    assert set(services) == {"postgres", "bind", "publisher-a", "publisher-b", "nginx"}
    a, b = services["publisher-a"], services["publisher-b"]
    assert a["command"] == b["command"] and a["environment"] == b["environment"]  # one definition
    assert "publisher-a-cache:/var/lib/zone-publisher" in a["volumes"]
    assert "publisher-b-cache:/var/lib/zone-publisher" in b["volumes"]  # each its own git cache
    assert a["environment"]["STATE_URL"].startswith("postgresql://zone_publisher:${POSTGRES_PASSWORD")
    # nginx's upstream is the shipped site with both instances in place of the one server.
    render = services["nginx"]["entrypoint"][2].split(" > ")[0]  # the sed, without writing the file
    assert render.startswith("sed ") and render.endswith(" /etc/zone-publisher/nginx.conf")
    rendered = subprocess.run(["sh", "-c", render.replace("/etc/zone-publisher/nginx.conf", str(NGINX_EXAMPLE))],
                              capture_output=True, text=True, check=True).stdout
    upstream = re.search(r"upstream zone_publisher \{(.*?)\}", rendered, re.S).group(1)
    assert re.findall(r"^\s*server (\S+)", upstream, re.M) == ["publisher-a:8053", "publisher-b:8053"]
    assert rendered.replace(upstream, "") == NGINX_EXAMPLE.read_text().replace(
        re.search(r"upstream zone_publisher \{(.*?)\}", NGINX_EXAMPLE.read_text(), re.S).group(1), "")
    nginx_address = services["nginx"]["networks"]["web"]["ipv4_address"]
    # The instances' configuration: the shared database from the environment, nginx as the one proxy.
    monkeypatch.setenv("STATE_URL", "postgresql://zone_publisher:pw@postgres:5432/zone_publisher")
    monkeypatch.setenv("SMTP_PASSWORD", "pw")
    secret = tmp_path / "webhook-secret"
    secret.write_text("s3cret")
    text = (directory / "config.toml").read_text().replace("/etc/zone-publisher/webhook-secret", str(secret))
    config = load_config_text(text, base=tmp_path)
    assert config.state.location == "postgresql://zone_publisher:pw@postgres:5432/zone_publisher"
    assert config.web.trusted_proxies == (f"{nginx_address}/32",)
