"""The whole forge sequence in one process: the webhook blueprint (Flask's test client), the
worker on a real bare git remote and the zone-file provider, the outbox delivering to a GitHub
API server as GitHub documents it (tests/forge_servers.py)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from publisher.config import load_config_text
from publisher.service.tokens import hash_token
from publisher.service.web import create_app
from publisher.service.worker import Worker
from tests.forge_servers import SERVERS, TOKEN as FORGE_TOKEN
from tests.test_fetch import Remote

DATA = Path(__file__).parent / "data" / "service"
ZONE = (DATA / "repo" / "example.test.lua").read_text()
HOOK_TOKEN = "hook-token-for-forge-tests"
STATUS_URL = "https://dns.example.org"


class Setup:
    def __init__(self, tmp_path: Path, *, plan_forks: bool = False, kind: str = "github",
                 repository: str = "example/dns") -> None:
        self.tmp_path = tmp_path
        self.forge = SERVERS[kind]().start()
        self.remote = Remote(tmp_path / "git")
        self.remote.commit({"example.test.lua": ZONE}, "First version")
        self.config = load_config_text(f"""
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
tokens = ["{hash_token(HOOK_TOKEN)}"]
[forge]
type = "{kind}"
api_url = "{self.forge.api_url}"
token = "{FORGE_TOKEN}"
repository = "{repository}"
status_url = "{STATUS_URL}"
plan_forks = {str(plan_forks).lower()}
""", base=tmp_path)
        self.client = create_app(self.config, {"TESTING": True}).test_client()
        self.worker = Worker(self.config, notify_delays=(0.0, 0.0))

    def close(self) -> None:
        self.worker.close()
        self.forge.stop()

    def served(self) -> str:
        return (self.tmp_path / "served" / "example.test.zone").read_text()

    def push_hook(self, commit: str):
        body = json.dumps({"ref": "refs/heads/main", "after": commit, "repository": {"full_name": "example/dns"}})
        return self.client.post(f"/notifications/{HOOK_TOKEN}/push", data=body,
                                headers={"X-GitHub-Event": "push", "X-GitHub-Delivery": commit[:8] + "-push",
                                         "Content-Type": "application/json"})

    def pull_request_hook(self, number: int, head: str, *, name: str = "github_pull_request.json",
                          action: str = "synchronize"):
        payload = json.loads((DATA / name).read_text())
        payload.update(number=number, action=action)
        payload["pull_request"].update(number=number)
        payload["pull_request"]["head"]["sha"] = head
        return self.client.post(f"/notifications/{HOOK_TOKEN}/push", data=json.dumps(payload),
                                headers={"X-GitHub-Event": "pull_request", "X-GitHub-Delivery": head[:8] + "-pr",
                                         "Content-Type": "application/json"})

    def open_request(self, number: int, files: dict[str, str], message: str, ref: str = "refs/pull/{n}/head") -> str:
        """Commit on a topic branch and keep its head where the forge does (GitHub: refs/pull/N/head)."""
        head = self.remote.commit(files, message, branch="add-mail")
        subprocess.run(["git", "-C", str(self.remote.work), "push", "--quiet", "--force", "origin",
                        f"HEAD:{ref.format(n=number)}"], check=True)
        return head

    def deliver(self) -> int:
        return self.worker.notifier.send_due()

    def statuses(self) -> list[tuple[str, str, str, str, str]]:
        return [(s.commit, s.state, s.context, s.description, s.url) for s in self.forge.ok_statuses()]


@pytest.fixture
def setup(tmp_path):
    made = Setup(tmp_path)
    yield made
    made.close()


def test_good_push_gets_pending_then_success_with_the_run_link(setup):
    commit = setup.remote.commit({"example.test.lua": ZONE.replace("192.0.2.1", "192.0.2.7")}, "Move www")
    answer = setup.push_hook(commit)
    assert answer.status_code == 202
    job = answer.get_json()["job"]
    setup.deliver()
    assert setup.statuses() == [(commit, "pending", "zone-publisher", f"queued as job {job}", f"{STATUS_URL}/")]
    run = setup.worker.run_once()
    assert run.status == "ok" and "192.0.2.7" in setup.served()
    setup.deliver()
    assert setup.statuses()[1:] == [(commit, "success", "zone-publisher", "1 zone changed", f"{STATUS_URL}/runs/{run.id}")]


def test_broken_push_fails_with_the_first_error_at_file_and_line(setup):
    setup.push_hook(setup.remote.commit({"example.test.lua": ZONE.replace("192.0.2.1", "192.0.2.2")}, "Good"))
    setup.worker.run_once()
    broken = ZONE + 'cname("www", "elsewhere.example.net.")\n'
    commit = setup.remote.commit({"example.test.lua": broken}, "Break it")
    setup.push_hook(commit)
    run = setup.worker.run_once()
    setup.deliver()
    error = next(f for f in run.all_findings if f.is_error)
    assert error.file == "example.test.lua" and error.line == 5
    final = setup.statuses()[-1]
    assert final[:3] == (commit, "failure", "zone-publisher")
    assert final[3].startswith(f"no zone changed, 1 kept at last good version; first error example.test.lua:5: ")
    assert final[4] == f"{STATUS_URL}/runs/{run.id}"
    assert "192.0.2.2" in setup.served()  # the last good version stays served


def test_a_burst_coalesced_into_one_run_answers_every_pending_commit(setup):
    first = setup.remote.commit({"example.test.lua": ZONE.replace("192.0.2.1", "192.0.2.8")}, "One")
    setup.push_hook(first)
    second = setup.remote.commit({"example.test.lua": ZONE.replace("192.0.2.1", "192.0.2.9")}, "Two")
    assert setup.push_hook(second).get_json()["status"] == "coalesced"
    run = setup.worker.run_once()
    assert run.commit == second
    setup.deliver()
    finals = {(c, state, text) for c, state, _, text, _ in setup.statuses() if state != "pending"}
    assert finals == {(second, "success", "1 zone changed"),
                      (first, "success", f"published with {second[:12]}: 1 zone changed")}


def test_request_plan_is_one_comment_edited_on_the_next_push_and_never_applied(setup):
    setup.push_hook(setup.remote.commit({"example.test.lua": ZONE.replace("192.0.2.1", "192.0.2.3")}, "Deployed"))
    setup.worker.run_once()
    before = setup.served()
    setup.deliver()
    published = len(setup.forge.ok_statuses())
    head = setup.open_request(7, {"example.test.lua": ZONE + 'mx("", "mail.example.net.", 10)\n'}, "Add MX")
    answer = setup.pull_request_hook(7, head)
    assert answer.status_code == 202, answer.get_json()
    run = setup.worker.run_once()
    assert run.trigger == "plan" and run.commit == head
    setup.deliver()
    (comment_id, comment), = setup.forge.comments.items()
    assert comment["number"] == 7 and comment["edits"] == 0
    assert f"DNS plan for `{head[:12]}`" in comment["body"] and "mail.example.net." in comment["body"]
    assert f"{STATUS_URL}/runs/{run.id}" in comment["body"]
    page = setup.client.get(f"/runs/{run.id}").get_data(as_text=True)
    assert "Plan of the request (nothing applied)" in page and "mail.example.net." in page
    plan_statuses = setup.statuses()[published:]
    assert [s[:3] for s in plan_statuses] == [(head, "pending", "zone-publisher/plan"),
                                              (head, "success", "zone-publisher/plan")]
    assert plan_statuses[1][3] == "1 zone would change"

    second = setup.open_request(7, {"example.test.lua": ZONE + 'mx("", "mx2.example.net.", 20)\n'}, "Other MX")
    setup.pull_request_hook(7, second)
    setup.worker.run_once()
    setup.deliver()
    assert list(setup.forge.comments) == [comment_id]  # the same comment, edited
    comment = setup.forge.comments[comment_id]
    assert comment["edits"] == 1 and f"`{second[:12]}`" in comment["body"] and "mx2.example.net." in comment["body"]
    methods = [(r.method, r.path.rsplit("/", 2)[-2]) for r in setup.forge.received if "comments" in r.path]
    assert methods == [("POST", "7"), ("PATCH", "comments")]
    # Planned, never applied: the provider serves what the deploy branch says.
    assert setup.served() == before and "mail.example.net" not in before and "192.0.2.3" in before


def test_a_broken_request_gets_a_failure_and_its_problems_in_the_comment(setup):
    head = setup.open_request(9, {"example.test.lua": ZONE + 'cname("www", "x.example.net.")\n'}, "Break")
    setup.pull_request_hook(9, head)
    setup.worker.run_once()
    setup.deliver()
    (comment,) = setup.forge.comments.values()
    assert "example.test.lua:5" in comment["body"] and "would not publish cleanly" in comment["body"]
    assert setup.statuses()[-1][1] == "failure" and "example.test.lua:5" in setup.statuses()[-1][3]


def test_a_forks_request_is_not_planned_by_default(setup):
    answer = setup.pull_request_hook(8, "4" * 40, name="github_pull_request_fork.json", action="opened")
    assert answer.status_code == 200
    assert "fork" in answer.get_json()["reason"]
    assert setup.worker.queue.jobs() == []
    setup.deliver()
    assert setup.forge.received == []


def test_a_forks_request_is_planned_when_configured(tmp_path):
    made = Setup(tmp_path, plan_forks=True)
    try:
        head = made.open_request(8, {"example.test.lua": ZONE + 'txt("fork", "hello")\n'}, "From a fork")
        answer = made.pull_request_hook(8, head, name="github_pull_request_fork.json", action="opened")
        assert answer.status_code == 202
        run = made.worker.run_once()
        assert run.commit == head and run.trigger == "plan"
    finally:
        made.close()


def test_request_for_another_branch_and_closed_requests_are_ignored(setup):
    payload = json.loads((DATA / "github_pull_request.json").read_text())
    payload["pull_request"]["base"]["ref"] = "develop"
    answer = setup.client.post(f"/notifications/{HOOK_TOKEN}/push", data=json.dumps(payload),
                               headers={"X-GitHub-Event": "pull_request", "Content-Type": "application/json"})
    assert answer.status_code == 200 and "deploy branch" in answer.get_json()["reason"]
    assert setup.pull_request_hook(7, "3" * 40, action="closed").status_code == 200
    assert setup.worker.queue.jobs() == []


def test_forge_down_then_back_publishing_unaffected_statuses_in_order(setup):
    setup.forge.down = "503"
    commits = []
    for address in ("192.0.2.21", "192.0.2.22"):
        commit = setup.remote.commit({"example.test.lua": ZONE.replace("192.0.2.1", address)}, f"To {address}")
        setup.push_hook(commit)
        setup.deliver()
        run = setup.worker.run_once()
        assert run.status == "ok" and address in setup.served()  # published while the forge is down
        setup.deliver()
        commits.append((commit, run.id))
    assert setup.statuses() == [] and setup.worker.outbox.pending() == 4
    setup.forge.down = None
    assert setup.deliver() == 4
    assert [(c, state) for c, state, *_ in setup.statuses()] == [
        (commits[0][0], "pending"), (commits[0][0], "success"), (commits[1][0], "pending"), (commits[1][0], "success")]


def _gitlab(payload, head):
    payload["object_attributes"]["last_commit"]["id"] = head


def _bitbucket_cloud(payload, head):
    payload["pullrequest"]["source"]["commit"]["hash"] = head[:12]


def _bitbucket_dc(payload, head):
    payload["pullRequest"]["fromRef"]["latestCommit"] = head


@pytest.mark.parametrize("kind, repository, name, headers, number, ref, set_head", [
    ("gitlab", "example/dns", "gitlab_merge_request.json", {"X-Gitlab-Event": "Merge Request Hook"}, 4,
     "refs/merge-requests/{n}/head", _gitlab),
    ("bitbucket-cloud", "example/dns", "bitbucket_cloud_pullrequest_updated.json",
     {"X-Event-Key": "pullrequest:updated", "X-Request-UUID": "{head}"}, 12, "refs/heads/add-mail", _bitbucket_cloud),
    ("bitbucket-datacenter", "NET/dns", "bitbucket_dc_pr_from_ref_updated.json",
     {"X-Event-Key": "pr:from_ref_updated", "X-Request-Id": "{head}"}, 21, "refs/pull-requests/{n}/from", _bitbucket_dc),
])
def test_request_plans_on_the_other_forges_fetch_their_ref_and_edit_one_comment(tmp_path, kind, repository, name,
                                                                               headers, number, ref, set_head):
    made = Setup(tmp_path, kind=kind, repository=repository)
    try:
        heads = []
        for text in ('mx("", "mail.example.net.", 10)\n', 'mx("", "mx2.example.net.", 20)\n'):
            head = made.open_request(number, {"example.test.lua": ZONE + text}, "MX", ref=ref)
            payload = json.loads((DATA / name).read_text())
            set_head(payload, head)
            answer = made.client.post(f"/notifications/{HOOK_TOKEN}/push", data=json.dumps(payload),
                                      headers={k: v.format(head=head) for k, v in headers.items()}
                                      | {"Content-Type": "application/json"})
            assert answer.status_code == 202, answer.get_json()
            run = made.worker.run_once()
            assert run.trigger == "plan" and run.commit == head, run.error
            made.deliver()
            heads.append(head)
        (comment,) = made.forge.comments.values()
        assert comment["number"] == number and comment["edits"] == 1 and "mx2.example.net." in comment["body"]
        finals = [(s.commit, s.description) for s in made.forge.ok_statuses() if s.description.endswith("would change")]
        assert finals == [(heads[0], "1 zone would change"), (heads[1], "1 zone would change")]
    finally:
        made.close()


def test_a_late_webhook_skipped_by_the_worker_still_answers_its_pending(setup):
    older = setup.remote.commit({"example.test.lua": ZONE.replace("192.0.2.1", "192.0.2.31")}, "Older")
    newer = setup.remote.commit({"example.test.lua": ZONE.replace("192.0.2.1", "192.0.2.32")}, "Newer")
    setup.push_hook(newer)
    setup.worker.run_once()
    answer = setup.client.post(f"/notifications/{HOOK_TOKEN}/push", headers={
        "X-GitHub-Event": "push", "X-GitHub-Delivery": "late", "Content-Type": "application/json"},
        data=json.dumps({"ref": "refs/heads/main", "after": older, "repository": {"full_name": "example/dns"}}))
    assert answer.status_code == 202
    assert setup.worker.run_once() is None  # skipped: the published head already contains it
    setup.deliver()
    assert [(state, text) for c, state, _, text, _ in setup.statuses() if c == older] == [
        ("pending", f"queued as job {answer.get_json()['job']}"), ("success", "already published by an earlier run")]
