"""Hostile requests against the real thing: ``zone-publisher serve`` (gunicorn and the worker process)
on loopback, spoken to over raw sockets where a client library would tidy the request up."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from publisher.service.tokens import generate_token, hash_token
from tests.mailserver import free_port

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
SECRET = "gunicorn-webhook-secret"
SOURCE_PASSWORD = "source-password-never-shown"
MAX_BODY = 64 * 1024


class Served:
    """One ``zone-publisher serve`` whose source URL carries credentials (on a loopback port where
    nothing listens, so every fetch fails, with git quoting the URL)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.token = generate_token()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = root / "serve.log"
        self.source_port = free_port()
        (root / "publisher.toml").write_text(f"""
[source]
url = "env:ZONE_SOURCE_URL"
branch = "main"
cache = "cache"
[state]
path = "state.db"
[webhook]
tokens = ["{hash_token(self.token)}"]
secret = "{SECRET}"
max_body = {MAX_BODY}
repository = "example/dns"
""")
        env = {**os.environ, "PYTHONPATH": str(ROOT), "PUBLISHER_WEB_WORKERS": "1",
               "ZONE_SOURCE_URL": f"http://deploy:{SOURCE_PASSWORD}@127.0.0.1:{self.source_port}/example/dns.git"}
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "publisher", "serve", "--config", str(root / "publisher.toml"),
                 "--listen", f"127.0.0.1:{self.port}"], cwd=root, env=env, stdout=log, stderr=log,
                start_new_session=True)
        deadline = time.monotonic() + 60
        while not self._healthy():
            if time.monotonic() > deadline:
                raise AssertionError("serve did not answer /healthz:\n" + self.log.read_text()[-3000:])
            time.sleep(0.1)

    def _healthy(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError("serve exited:\n" + self.log.read_text()[-3000:])
        try:
            return requests.get(self.url + "/healthz", timeout=5).status_code == 200
        except requests.RequestException:
            return False

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()

    def raw(self, data: bytes) -> bytes:
        """Send ``data`` on a fresh connection and return everything the server answers."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as connection:
            connection.sendall(data)
            answer = b""
            while chunk := connection.recv(65536):
                answer += chunk
        return answer

    def jobs(self) -> int:
        with sqlite3.connect(self.root / "state.db") as db:
            return db.execute("SELECT COUNT(*) FROM jobs").fetchone()[0]

    def push(self, body: bytes, delivery: str, *, token: str | None = None) -> requests.Response:
        return requests.post(f"{self.url}/notifications/{token or self.token}/push", data=body,
                             headers=signed_headers(body, delivery), timeout=10)


def signed_headers(body: bytes, delivery: str) -> dict:
    return {"X-GitHub-Event": "push", "X-GitHub-Delivery": delivery, "Content-Type": "application/json",
            "X-Hub-Signature-256": "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()}


def push_body(commit: str = "2" * 40, **extra) -> bytes:
    return json.dumps({"ref": "refs/heads/main", "after": commit, "repository": {"full_name": "example/dns"},
                       **extra}).encode()


def chunked(body: bytes, size: int = 8192) -> bytes:
    return b"".join(b"%x\r\n" % len(body[i:i + size]) + body[i:i + size] + b"\r\n"
                    for i in range(0, len(body), size)) + b"0\r\n\r\n"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    service = Served(tmp_path_factory.mktemp("gunicorn"))
    yield service
    service.stop()


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


def test_chunked_body_over_max_body_is_413_even_when_its_first_part_is_signed(served):
    head = push_body("7" * 40)
    padded = head + b" " * (MAX_BODY - len(head))  # the first MAX_BODY bytes are complete, signed JSON
    body = padded + b" " * 4096
    headers = signed_headers(padded, "chunked-big")  # signed over what a cut would keep
    request = (b"POST /notifications/" + served.token.encode() + b"/push HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
               + b"".join(f"{k}: {v}\r\n".encode() for k, v in headers.items())
               + b"Transfer-Encoding: chunked\r\n\r\n" + chunked(body))
    before = served.jobs()
    answer = served.raw(request)
    assert status_of(answer) == 413, answer[:300]
    assert served.jobs() == before


def test_chunked_body_within_max_body_is_verified_whole(served):
    body = push_body("8" * 40)
    headers = signed_headers(body, "chunked-small")
    request = (b"POST /notifications/" + served.token.encode() + b"/push HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
               + b"".join(f"{k}: {v}\r\n".encode() for k, v in headers.items())
               + b"Transfer-Encoding: chunked\r\n\r\n" + chunked(body, 16))
    answer = served.raw(request)
    assert status_of(answer) in (200, 202), answer[:300]
    assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["status"] in ("queued", "coalesced")


def test_hostile_input_through_gunicorn_is_a_4xx(served):
    deep = b"[" * 100_000 + b"]" * 100_000
    after_object = json.dumps({"ref": "refs/heads/main", "after": {}, "repository": {"full_name": "example/dns"}})
    for body, status in ((after_object.encode(), 400),
                         (deep[:MAX_BODY // 2] + deep[-MAX_BODY // 2:], 400),
                         (push_body("a" * 50_000), 400)):
        assert served.push(body, generate_token(8)).status_code == status
    for path in ("/api/runs/99999999999999999999", "/runs/99999999999999999999", "/api/jobs/99999999999999999999"):
        assert requests.get(served.url + path, timeout=10).status_code == 404


def test_sixty_bad_tokens_then_a_valid_signed_push_is_accepted(served):
    session = requests.Session()  # one kept-alive connection, as a forge's or a proxy's would be
    body = push_body("9" * 40)
    statuses = [session.post(f"{served.url}/notifications/guess-{n}/push", data=body,
                             headers=signed_headers(body, f"bad-{n}"), timeout=10).status_code for n in range(60)]
    assert statuses[:19] == [403] * 19 and set(statuses[19:]) == {429}
    valid = session.post(f"{served.url}/notifications/{served.token}/push", data=body,
                         headers=signed_headers(body, "good-after-flood"), timeout=10)
    assert valid.status_code == 202, valid.text


def test_the_token_and_source_credentials_never_reach_the_log(served):
    token = served.token.encode()
    for request in (
        b"GET /notifications/" + token + b"/push\r\n\r\n",  # no HTTP version
        b"POST /hooks/" + token + b"\r\n\r\n",
        b"GET /notifications/../" + token + b"/push HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"GET /notifications/%2e%2e/" + token + b"/push HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"GET /NOTIFICATIONS/" + token + b"/push HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"GET /api/runs?token=" + token + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"GET /?token=" + token + b"&x=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"GET /notifications/" + token + b"/push HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    ):
        assert 200 <= status_of(served.raw(request)) < 500
    # A push is queued; the worker's fetch fails, and git's error quotes the source URL.
    assert served.push(push_body("6" * 40), "for-the-log").status_code in (200, 202)
    deadline = time.monotonic() + 60
    while True:
        runs = requests.get(served.url + "/api/runs", timeout=10).json()["runs"]
        if any(run["status"] == "failed" for run in runs) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert any(run["status"] == "failed" and "[redacted]@127.0.0.1" in run["error"] for run in runs), runs
    shown = requests.get(served.url + "/", timeout=10).text + json.dumps(runs)
    assert SOURCE_PASSWORD not in shown and "[redacted]@127.0.0.1" in shown
    time.sleep(0.5)  # the access log line of the last request
    log = served.log.read_text()
    assert served.token not in log and SOURCE_PASSWORD not in log and SECRET not in log
    assert "/notifications/[redacted]/push" in log and "?[redacted]" in log
