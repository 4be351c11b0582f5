"""Commit statuses and request plans for real: `zone-publisher serve` (gunicorn + worker process),
a bare git remote pushed to with git, the zone-file provider, and a GitHub API server that answers
as GitHub documents it (tests/forge_servers.py)."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from publisher.service.tokens import generate_token, hash_token
from tests.forge_servers import TOKEN as FORGE_TOKEN, GitHubServer
from tests.mailserver import free_port
from tests.test_fetch import Remote
from tests.test_service_e2e import wait_until

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).parent / "data" / "service"
ZONE = (DATA / "repo" / "example.test.lua").read_text()
SECRET = "forge-e2e-webhook-secret"


class ForgeService:
    def __init__(self, root: Path, forge: GitHubServer) -> None:
        self.root, self.forge = root, forge
        self.remote = Remote(root / "git")
        self.remote.commit({"example.test.lua": ZONE}, "First version")
        self.token = generate_token()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = root / "serve.log"
        self.config = root / "publisher.toml"
        self.config.write_text(f"""
[source]
url = "{self.remote.bare}"
branch = "main"
cache = "cache"
[defaults]
nameservers = ["ns1.example.net.", "ns2.example.net."]
[[provider]]
name = "files"
type = "zonefile"
directory = "served"
[state]
path = "state.db"
[webhook]
tokens = ["{hash_token(self.token)}"]
secret = "{SECRET}"
[forge]
type = "github"
api_url = "{forge.api_url}"
token = "env:FORGE_E2E_TOKEN"
repository = "example/dns"
timeout = 5
""")
        self.process = None

    def start(self) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT), "PUBLISHER_WEB_WORKERS": "1", "FORGE_E2E_TOKEN": FORGE_TOKEN}
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "publisher", "serve", "--config", str(self.config),
                 "--listen", f"127.0.0.1:{self.port}"], cwd=self.root, env=env, stdout=log, stderr=log,
                start_new_session=True)
        wait_until(self._healthy, "the service to answer /healthz")

    def _healthy(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"serve exited:\n{self.log.read_text()[-3000:]}")
        try:
            return requests.get(self.url + "/healthz", timeout=5).status_code == 200
        except (requests.ConnectionError, requests.Timeout):
            return False

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()

    def hook(self, event: str, payload: dict, delivery: str) -> requests.Response:
        body = json.dumps(payload).encode()
        signature = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        return requests.post(f"{self.url}/notifications/{self.token}/push", data=body, timeout=10,
                             headers={"X-GitHub-Event": event, "X-GitHub-Delivery": delivery,
                                      "Content-Type": "application/json", "X-Hub-Signature-256": signature})

    def push(self, text: str, message: str) -> tuple[str, requests.Response]:
        commit = self.remote.commit({"example.test.lua": text}, message)
        return commit, self.hook("push", {"ref": "refs/heads/main", "after": commit,
                                          "repository": {"full_name": "example/dns"}}, commit[:12])

    def open_request(self, number: int, text: str, message: str, *, fork: bool = False) -> tuple[str, requests.Response]:
        head = self.remote.commit({"example.test.lua": text}, message, branch="add-mail")
        subprocess.run(["git", "-C", str(self.remote.work), "push", "--quiet", "--force", "origin",
                        f"HEAD:refs/pull/{number}/head"], check=True)
        payload = json.loads((DATA / ("github_pull_request_fork.json" if fork else "github_pull_request.json")).read_text())
        payload.update(number=number, action="synchronize")
        payload["pull_request"]["head"]["sha"] = head
        return head, self.hook("pull_request", payload, head[:12] + "-pr")

    def served(self) -> str:
        path = self.root / "served" / "example.test.zone"
        return path.read_text() if path.exists() else ""

    def statuses(self, commit: str, context: str = "zone-publisher") -> list[tuple[str, str]]:
        return [(s.state, s.description) for s in self.forge.ok_statuses() if s.commit == commit and s.context == context]

    def run_for(self, commit: str) -> dict | None:
        runs = requests.get(self.url + "/api/runs?limit=100", timeout=5).json()["runs"]
        return next((run for run in runs if run["commit"] == commit), None)


@pytest.fixture
def service(tmp_path):
    forge = GitHubServer().start()
    made = ForgeService(tmp_path, forge)
    made.start()
    yield made
    made.stop()
    forge.stop()


def test_statuses_and_request_plans_end_to_end(service):
    # A good push: pending when queued, then success with the run page.
    good, answer = service.push(ZONE.replace("192.0.2.1", "192.0.2.44"), "Move www")
    assert answer.status_code == 202
    wait_until(lambda: len(service.statuses(good)) == 2, "pending then success for the good push")
    (pending, _), (success, summary) = service.statuses(good)
    assert (pending, success, summary) == ("pending", "success", "1 zone changed")
    run = service.run_for(good)
    (status,) = [s for s in service.forge.ok_statuses() if s.commit == good and s.state == "success"]
    assert status.url == f"{service.url}/runs/{run['id']}"
    assert "192.0.2.44" in service.served()

    # A broken push: failure naming the first error at file:line; the last good version stays.
    broken, _ = service.push(ZONE.replace("192.0.2.1", "192.0.2.44") + 'cname("www", "x.example.net.")\n', "Break")
    wait_until(lambda: len(service.statuses(broken)) == 2, "pending then failure for the broken push")
    assert service.statuses(broken)[1][0] == "failure"
    assert "first error example.test.lua:5:" in service.statuses(broken)[1][1]
    assert "192.0.2.44" in service.served()

    # A pull request: one comment, edited in place on the next push; a status on each head; nothing applied.
    served_before = service.served()
    head, answer = service.open_request(7, ZONE + 'mx("", "mail.example.net.", 10)\n', "Add MX")
    assert answer.status_code == 202
    wait_until(lambda: len(service.statuses(head, "zone-publisher/plan")) == 2 and service.forge.comments,
               "the plan's status and comment")
    assert service.statuses(head, "zone-publisher/plan")[1] == ("success", "1 zone would change")
    second, _ = service.open_request(7, ZONE + 'mx("", "mx2.example.net.", 20)\n', "Other MX")
    wait_until(lambda: len(service.statuses(second, "zone-publisher/plan")) == 2
               and next(iter(service.forge.comments.values()))["edits"] == 1, "the comment to be edited")
    (comment,) = service.forge.comments.values()
    assert f"`{second[:12]}`" in comment["body"] and "mx2.example.net." in comment["body"]
    assert service.served() == served_before

    # A fork's request is not planned by default.
    fork_head, answer = service.open_request(8, ZONE + 'txt("x", "fork")\n', "From a fork", fork=True)
    assert answer.status_code == 200 and "fork" in answer.json()["reason"]

    # The forge down for a while, then back: publishing goes on, the statuses arrive in order.
    service.forge.down = "503"
    pushed = []
    for address in ("192.0.2.51", "192.0.2.52"):
        commit, answer = service.push(ZONE.replace("192.0.2.1", address), f"To {address}")
        assert answer.status_code == 202
        wait_until(lambda: address in service.served(), f"{address} published while the forge is down")
        pushed.append(commit)
    wait_until(lambda: len(service.forge.attempts("/statuses/")) > len(service.forge.ok_statuses()) + 1,
               "the service to retry a status while the forge is down")
    service.forge.down = None
    wait_until(lambda: all(len(service.statuses(c)) == 2 for c in pushed), "the statuses after the outage",
               timeout=120)
    arrived = [(s.commit, s.state) for s in service.forge.ok_statuses() if s.commit in pushed]
    assert arrived == [(pushed[0], "pending"), (pushed[0], "success"), (pushed[1], "pending"), (pushed[1], "success")]
    assert fork_head not in {s.commit for s in service.forge.ok_statuses()}

    service.stop()
    assert FORGE_TOKEN not in service.log.read_text()
