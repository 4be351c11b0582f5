"""Pull/merge-request events as each forge sends them: request, base branch, head, fork, and the
ref of the configured repository the head is fetched from (never a URL of the payload)."""

import json
from pathlib import Path

import pytest

from publisher.service.senders import Refusal, parse_request

DATA = Path(__file__).parent / "data" / "service"
HEAD = "3" * 40

CASES = [
    ("github_pull_request.json", {"X-GitHub-Event": "pull_request"}, 7, "synchronize", HEAD, "refs/pull/7/head"),
    ("gitea_pull_request.json", {"X-Gitea-Event": "pull_request", "X-GitHub-Event": "pull_request"}, 3,
     "synchronized", HEAD, "refs/pull/3/head"),
    ("gitea_pull_request.json", {"X-Forgejo-Event": "pull_request", "X-Gitea-Event": "pull_request"}, 3,
     "synchronized", HEAD, "refs/pull/3/head"),
    ("gitlab_merge_request.json", {"X-Gitlab-Event": "Merge Request Hook"}, 4, "update", HEAD,
     "refs/merge-requests/4/head"),
    ("bitbucket_cloud_pullrequest_updated.json", {"X-Event-Key": "pullrequest:updated", "X-Request-UUID": "u"}, 12,
     "pullrequest:updated", "333333333333", "refs/heads/add-mail"),
    ("bitbucket_dc_pr_from_ref_updated.json", {"X-Event-Key": "pr:from_ref_updated", "X-Request-Id": "r"}, 21,
     "pr:from_ref_updated", HEAD, "refs/pull-requests/21/from"),
]


@pytest.mark.parametrize("name, headers, number, action, head, fetch_ref", CASES)
def test_request_events_name_request_head_and_the_ref_to_fetch(name, headers, number, action, head, fetch_ref):
    push = parse_request(headers, (DATA / name).read_bytes())
    assert not isinstance(push, Refusal), push
    request = push.request
    assert (request.number, request.action, request.base_branch, request.head, request.fetch_ref) == (
        number, action, "main", head, fetch_ref)
    assert request.fork is False and request.wants_plan
    assert "evil" not in request.fetch_ref
    assert push.repository in ("example/dns", "NET/dns")


def test_a_request_from_a_fork_is_flagged():
    push = parse_request({"X-GitHub-Event": "pull_request"}, (DATA / "github_pull_request_fork.json").read_bytes())
    assert push.request.fork is True and push.request.fetch_ref == "refs/pull/8/head"


@pytest.mark.parametrize("name, headers, mutate", [
    ("gitlab_merge_request.json", {"X-Gitlab-Event": "Merge Request Hook"},
     lambda p: p["object_attributes"].update(source_project_id=99)),
    ("bitbucket_cloud_pullrequest_updated.json", {"X-Event-Key": "pullrequest:updated", "X-Request-UUID": "u"},
     lambda p: p["pullrequest"]["source"]["repository"].update(full_name="mallory/dns")),
    ("bitbucket_dc_pr_from_ref_updated.json", {"X-Event-Key": "pr:from_ref_updated", "X-Request-Id": "r"},
     lambda p: p["pullRequest"]["fromRef"]["repository"].update(id=666)),
    ("github_pull_request.json", {"X-GitHub-Event": "pull_request"},
     lambda p: p["pull_request"]["head"].update(repo=None)),  # a deleted fork
])
def test_forks_are_recognised_on_every_forge(name, headers, mutate):
    payload = json.loads((DATA / name).read_text())
    mutate(payload)
    push = parse_request(headers, json.dumps(payload).encode())
    assert push.request.fork is True


def test_closed_requests_need_no_plan():
    payload = json.loads((DATA / "github_pull_request.json").read_text())
    payload["action"] = "closed"
    push = parse_request({"X-GitHub-Event": "pull_request"}, json.dumps(payload).encode())
    assert push.request is not None and not push.request.wants_plan


@pytest.mark.parametrize("mutate, reason", [
    (lambda p: p.update(number="7; rm -rf /"), "request number"),
    (lambda p: p.update(number=0), "request number"),
    (lambda p: p["pull_request"]["head"].update(sha="--upload-pack=evil"), "head commit"),
    (lambda p: p["pull_request"]["base"].update(ref={"x": 1}), "base branch"),
    (lambda p: p["pull_request"].pop("head"), "expected shape"),
])
def test_hostile_request_payloads_are_400_with_a_reason(mutate, reason):
    payload = json.loads((DATA / "github_pull_request.json").read_text())
    mutate(payload)
    refusal = parse_request({"X-GitHub-Event": "pull_request"}, json.dumps(payload).encode())
    assert isinstance(refusal, Refusal) and refusal.status == 400 and reason in refusal.reason


@pytest.mark.parametrize("branch", ["-upload-pack=x", "a..b", "a b", "x:refs/heads/main", "a.lock"])
def test_bitbucket_branch_names_that_git_would_misread_are_refused(branch):
    payload = json.loads((DATA / "bitbucket_cloud_pullrequest_updated.json").read_text())
    payload["pullrequest"]["source"]["branch"]["name"] = branch
    refusal = parse_request({"X-Event-Key": "pullrequest:updated", "X-Request-UUID": "u"}, json.dumps(payload).encode())
    assert isinstance(refusal, Refusal) and refusal.status == 400
