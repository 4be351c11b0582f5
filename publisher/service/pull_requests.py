"""Pull-request (merge-request) events: which request, for which branch, with which head, from where.

Like a push, such an event is only a trigger.  What is planned is fetched from the configured
repository under the ref the forge keeps every request's head in (``fetch_ref``), never from a
URL in the payload; a request whose head lives in another repository (a fork) is flagged so the
caller can refuse it unless ``[forge] plan_forks`` allows it.

Payload fields, per sender:

* GitHub ``X-GitHub-Event: pull_request`` ("Webhook events and payloads", pull_request): ``action``,
  ``number``, ``pull_request.base.ref``, ``pull_request.head.sha``/``.ref``, ``.head.repo.full_name``
  (null once a fork is deleted) against ``.base.repo.full_name``; head kept at ``refs/pull/N/head``.
* Gitea/Forgejo ``X-Gitea-Event``/``X-Forgejo-Event: pull_request``: the same shape (actions
  ``opened``, ``reopened``, ``synchronized``, ``edited``); head at ``refs/pull/N/head``.
* GitLab ``X-Gitlab-Event: Merge Request Hook`` ("Webhook events", merge request events):
  ``object_attributes.iid``, ``.action`` (open, reopen, update), ``.target_branch``,
  ``.source_branch``, ``.last_commit.id``, ``.source_project_id`` against ``.target_project_id``;
  head at ``refs/merge-requests/N/head``.
* Bitbucket Cloud ``X-Event-Key: pullrequest:created|updated`` ("Event payloads", pull request):
  ``pullrequest.id``, ``.destination.branch.name``, ``.source.branch.name``, ``.source.commit.hash``
  (abbreviated), ``.source.repository.full_name`` against ``.destination.repository.full_name``.
  Bitbucket Cloud keeps no ref for a request's head: the source branch is fetched from the
  configured remote (a fork's commit, by its hash).
* Bitbucket Data Center ``X-Event-Key: pr:opened|pr:from_ref_updated|pr:modified`` ("Event payload",
  pull request events): ``pullRequest.id``, ``.toRef.id``/``.displayId``, ``.fromRef.latestCommit``,
  ``.fromRef.repository`` against ``.toRef.repository``; head at ``refs/pull-requests/N/from``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any

MAX_TEXT = 255
_COMMIT = re.compile(r"[0-9a-f]{7,64}\Z")
_BAD_REF = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]|\.\.|@\{|//|/\.")

# The actions after which a request's head may be new: everything else (closed, merged, labelled,
# approved, commented) needs no plan.
PLAN_ACTIONS = {
    "github": {"opened", "synchronize", "reopened", "edited", "ready_for_review"},
    "gitea": {"opened", "synchronized", "reopened", "edited"},
    "gitlab": {"open", "reopen", "update"},
    "bitbucket-cloud": {"pullrequest:created", "pullrequest:updated"},
    "bitbucket-datacenter": {"pr:opened", "pr:from_ref_updated", "pr:modified"},
}
PLAN_ACTIONS["forgejo"] = PLAN_ACTIONS["gogs"] = PLAN_ACTIONS["gitea"]


@dataclass(frozen=True)
class PullRequest:
    """One pull/merge request event.  ``head`` is the commit the sender named (Bitbucket Cloud
    abbreviates it); ``fetch_ref`` is where the configured repository holds that head."""

    number: int
    action: str
    base_branch: str
    head: str
    head_branch: str
    fork: bool
    fetch_ref: str
    repository: str | None  # the base repository as the sender names it
    sender: str = ""

    @property
    def wants_plan(self) -> bool:
        return self.action in PLAN_ACTIONS.get(self.sender, set())


def pull_request(sender: str, event: str, payload: Any) -> PullRequest | None:
    """The request an event is about, or None when the event is no pull-request event.
    Raises ValueError (the reason is safe to answer) when its fields have the wrong type or size."""
    if not isinstance(payload, dict):
        return None
    try:
        request = _parse(sender, event, payload)
    except (AttributeError, TypeError, KeyError, IndexError):
        raise ValueError(f"{sender} pull-request payload does not have the expected shape") from None
    if request is None:
        return None
    _check(sender, request)
    return replace(request, head=request.head.lower())


def _parse(sender: str, event: str, payload: dict) -> PullRequest | None:
    if sender in ("github", "gitea", "forgejo", "gogs") and event == "pull_request":
        pr = payload["pull_request"]
        number = payload.get("number", pr.get("number"))
        base_repo = _get(pr, "base", "repo", "full_name") or _get(payload, "repository", "full_name")
        head_repo = _get(pr, "head", "repo", "full_name")
        return PullRequest(number, payload["action"], pr["base"]["ref"], pr["head"]["sha"], pr["head"]["ref"],
                           head_repo is None or head_repo.lower() != str(base_repo).lower(),
                           f"refs/pull/{number}/head", base_repo, sender)
    if sender == "gitlab" and event == "Merge Request Hook":
        attributes = payload["object_attributes"]
        number = attributes["iid"]
        return PullRequest(number, attributes.get("action") or "", attributes["target_branch"],
                           _get(attributes, "last_commit", "id") or "", attributes["source_branch"],
                           attributes.get("source_project_id") != attributes.get("target_project_id"),
                           f"refs/merge-requests/{number}/head", _get(payload, "project", "path_with_namespace"),
                           sender)
    if sender == "bitbucket-cloud" and event.startswith("pullrequest:"):
        pr = payload["pullrequest"]
        source, destination = pr["source"], pr["destination"]
        head_repo = _get(source, "repository", "full_name")
        base_repo = _get(destination, "repository", "full_name") or _get(payload, "repository", "full_name")
        fork = head_repo is None or head_repo.lower() != str(base_repo).lower()
        head = _get(source, "commit", "hash") or ""
        branch = source["branch"]["name"]
        return PullRequest(pr["id"], event, destination["branch"]["name"], head, branch, fork,
                           head if fork else f"refs/heads/{branch}", base_repo, sender)
    if sender == "bitbucket-datacenter" and event.startswith("pr:"):
        pr = payload["pullRequest"]
        from_ref, to_ref = pr["fromRef"], pr["toRef"]
        number = pr["id"]
        base = to_ref.get("displayId") or str(to_ref["id"]).removeprefix("refs/heads/")
        slug, project = _get(to_ref, "repository", "slug"), _get(to_ref, "repository", "project", "key")
        fork = _repository_id(from_ref) != _repository_id(to_ref)
        return PullRequest(number, event, base, from_ref.get("latestCommit") or "",
                           from_ref.get("displayId") or "", fork, f"refs/pull-requests/{number}/from",
                           f"{project}/{slug}" if project and slug else slug, sender)
    return None


def _repository_id(ref: dict) -> Any:
    repository = ref.get("repository") or {}
    return repository.get("id", (_get(repository, "project", "key"), repository.get("slug")))


def _check(sender: str, request: PullRequest) -> None:
    """Attacker-shaped payloads: the number, branches and commit must be what the queue stores."""
    if not isinstance(request.number, int) or isinstance(request.number, bool) or not 0 < request.number < 2**31:
        raise ValueError(f"{sender} pull-request payload: the request number must be a positive integer")
    for name, value in (("base branch", request.base_branch), ("head branch", request.head_branch),
                        ("action", request.action)):
        if not isinstance(value, str) or len(value) > MAX_TEXT:
            raise ValueError(f"{sender} pull-request payload: the {name} must be a string of at most {MAX_TEXT} characters")
    if request.repository is not None and (not isinstance(request.repository, str) or len(request.repository) > MAX_TEXT):
        raise ValueError(f"{sender} pull-request payload: repository name must be a string of at most {MAX_TEXT} characters")
    if not isinstance(request.head, str) or not _COMMIT.match(request.head.lower()):
        raise ValueError(f"{sender} pull-request payload: the head commit must be 7 to 64 hex digits")
    # Bitbucket Cloud's fetch ref is built from the payload's branch name: it goes to git, so it
    # must be a ref git accepts (git check-ref-format's rules), never an option or a refspec.
    if (_BAD_REF.search(request.fetch_ref) or request.fetch_ref.startswith("-") or "/-" in request.fetch_ref
            or request.fetch_ref.endswith((".", "/", ".lock"))):
        raise ValueError(f"{sender} pull-request payload: the head branch is not a valid branch name")


def is_full_commit(commit: str) -> bool:
    return len(commit) in (40, 64) and bool(_COMMIT.match(commit))


def _get(payload: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(payload, dict):
            return None
        payload = payload.get(key)
    return payload
