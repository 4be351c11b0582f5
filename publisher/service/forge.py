"""Results where the pusher looks: commit statuses and pull-request comments on the forge.

Nothing here is sent from a run or a request handler.  They write outbox items (kind ``forge``,
in the same SQLite outbox as mail) that say *what* to tell the forge in the forge's own terms
(a status on a commit, a comment on request N); the notifier thread delivers them with
``ForgeDelivery``, which turns them into that vendor's HTTP call.  So a forge that is down never
delays publishing, its token never sits in the database, and the outbox delivers ``forge`` items
strictly in order (a later status never overtakes an earlier one that is being retried).

The HTTP calls, per vendor (the documentation each follows is named in tests/forge_servers.py):

| forge | commit status | comment on a request: create / edit |
|---|---|---|
| GitHub | ``POST /repos/{owner}/{repo}/statuses/{sha}`` | ``POST /repos/{o}/{r}/issues/{n}/comments`` / ``PATCH /repos/{o}/{r}/issues/comments/{id}`` |
| GitLab | ``POST /projects/:id/statuses/:sha`` | ``POST /projects/:id/merge_requests/:iid/notes`` / ``PUT …/notes/:note_id`` |
| Gitea, Forgejo | ``POST /repos/{owner}/{repo}/statuses/{sha}`` | ``POST /repos/{o}/{r}/issues/{index}/comments`` / ``PATCH /repos/{o}/{r}/issues/comments/{id}`` |
| Bitbucket Cloud | ``POST /2.0/repositories/{ws}/{slug}/commit/{sha}/statuses/build`` | ``POST …/pullrequests/{id}/comments`` / ``PUT …/comments/{comment_id}`` |
| Bitbucket DC | ``POST /rest/api/latest/projects/{key}/repos/{slug}/commits/{sha}/builds`` | ``POST …/pull-requests/{id}/comments`` / ``PUT …/comments/{commentId}`` (with ``version``) |
"""

from __future__ import annotations

import base64
import json
import logging
import time
import urllib.error
import urllib.request
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from publisher.config import ForgeConfig
from publisher.redaction import redact
from publisher.database import (INTEGER, REAL, TEXT, Column, Connection, PerThreadStore, Table, copy_rowid,
                                        transaction)
from publisher.service.notify import FORGE, DeliveryError, Outbox, OutboxItem, RejectedDelivery

log = logging.getLogger(__name__)

PENDING, SUCCESS, FAILURE = "pending", "success", "failure"
MAX_DESCRIPTION = 140  # GitHub refuses longer descriptions; the others show one line anyway
MAX_COMMENT = 60_000  # under GitHub's 65,536 and Bitbucket's comment limits

TABLES = (
    Table("forge_job_commits", (Column("job_id", INTEGER, True), Column("commit_sha", TEXT, True),
                                Column("context", TEXT, True),
                                Column("position", INTEGER, True, "0")),  # order queued (older files: rowid)
          primary_key=("job_id", "commit_sha", "context")),
    Table("forge_comments", (Column("request", TEXT, True), Column("comment_id", TEXT, True),
                             Column("version", INTEGER), Column("updated", REAL, True)),
          primary_key=("request",)),
)
MIGRATIONS = (copy_rowid("forge_job_commits", "position"),)


def one_line(text: str, limit: int = MAX_DESCRIPTION) -> str:
    """``text`` on one line, at most ``limit`` characters, credentials of URLs hidden."""
    flat = " ".join(redact(text).split())
    return flat if len(flat) <= limit else flat[:limit - 1].rstrip() + "…"


class ForgeStore(PerThreadStore):
    """What must outlive a restart besides the outbox: which commits were told "pending" for a job
    (so each gets its final state), and the comment kept per request (edited, never duplicated)."""

    TABLES = TABLES
    MIGRATIONS = MIGRATIONS

    def queue_status(self, outbox: Outbox, commit: str, state: str, description: str, *, context: str,
                     job_id: int | None = None, run_id: int | None = None,
                     db: Connection | None = None, repository: str = "") -> int:
        """Queue one commit status (for ``repository``'s forge).  A pending one is remembered against
        ``job_id``; the link is the run page when ``run_id`` is given, else the status page."""
        own = db is None
        db = self._connection if own else db
        payload = {"action": "status", "commit": commit, "state": state, "context": context,
                   "description": one_line(description), "run": run_id}
        with transaction(db) if own else nullcontext():
            if state == PENDING and job_id is not None:
                db.execute("INSERT INTO forge_job_commits (job_id, commit_sha, context, position) VALUES (?, ?, ?,"
                           " (SELECT COALESCE(MAX(position), 0) + 1 FROM forge_job_commits WHERE job_id = ?))"
                           " ON CONFLICT (job_id, commit_sha, context) DO NOTHING", (job_id, commit, context, job_id))
            return outbox.add(FORGE, ("status",), json.dumps(payload, sort_keys=True).encode(), run_id=run_id, db=db,
                              repository=repository)

    def queue_comment(self, outbox: Outbox, request: str, number: int, body: str, *, run_id: int | None = None,
                      db: Connection | None = None, repository: str = "") -> int:
        """Queue the comment of request ``number`` (``request`` is its key in ``forge_comments``):
        created the first time, edited in place afterwards."""
        if len(body) > MAX_COMMENT:
            body = body[:MAX_COMMENT].rsplit("\n", 1)[0] + "\n\n… (plan truncated; the run page has it all)\n"
        payload = {"action": "comment", "request": request, "number": number, "body": body}
        return outbox.add(FORGE, ("comment",), json.dumps(payload, sort_keys=True).encode(), run_id=run_id, db=db,
                          repository=repository)

    def pending_commits(self, job_id: int, db: Connection | None = None) -> list[tuple[str, str]]:
        """(commit, context) of every pending status queued for ``job_id``, oldest first."""
        db = db or self._connection
        rows = db.execute("SELECT commit_sha, context FROM forge_job_commits WHERE job_id = ? ORDER BY position",
                          (job_id,)).fetchall()
        return [(row["commit_sha"], row["context"]) for row in rows]

    def comment(self, request: str) -> tuple[str, int | None] | None:
        row = self._connection.execute("SELECT comment_id, version FROM forge_comments WHERE request = ?",
                                       (request,)).fetchone()
        return (row["comment_id"], row["version"]) if row else None

    def remember_comment(self, request: str, comment_id: str, version: int | None) -> None:
        with transaction(self._connection) as db:
            db.execute("INSERT INTO forge_comments (request, comment_id, version, updated) VALUES (?, ?, ?, ?)"
                       " ON CONFLICT(request) DO UPDATE SET comment_id = excluded.comment_id,"
                       " version = excluded.version, updated = excluded.updated",
                       (request, comment_id, version, time.time()))


# --- the vendors' APIs ------------------------------------------------------------------------

@dataclass(frozen=True)
class Call:
    """One HTTP request to a forge API: method, path under ``api_url``, JSON body."""

    method: str
    path: str
    body: dict[str, Any]


class ForgeAPI:
    """What differs between forges: paths, field names, state words, authentication."""

    def __init__(self, config: ForgeConfig) -> None:
        self.config = config
        owner, _, name = config.repository.partition("/")
        self.owner, self.name = quote(owner, safe=""), quote(name, safe="")

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.config.token}"}

    def status(self, commit: str, state: str, description: str, url: str, context: str) -> Call:
        raise NotImplementedError

    def create_comment(self, number: int, body: str) -> Call:
        raise NotImplementedError

    def update_comment(self, number: int, comment_id: str, version: int | None, body: str) -> Call:
        raise NotImplementedError

    @staticmethod
    def comment_identity(answer: dict[str, Any]) -> tuple[str, int | None]:
        return str(answer["id"]), None


class GitHubAPI(ForgeAPI):
    STATES = {PENDING: "pending", SUCCESS: "success", FAILURE: "failure"}

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.config.token}", "Accept": "application/vnd.github+json",
                "X-GitHub-Api-Version": "2022-11-28"}

    def status(self, commit, state, description, url, context):
        return Call("POST", f"/repos/{self.owner}/{self.name}/statuses/{commit}",
                    {"state": self.STATES[state], "target_url": url, "description": description, "context": context})

    def create_comment(self, number, body):
        return Call("POST", f"/repos/{self.owner}/{self.name}/issues/{number}/comments", {"body": body})

    def update_comment(self, number, comment_id, version, body):
        return Call("PATCH", f"/repos/{self.owner}/{self.name}/issues/comments/{quote(comment_id)}", {"body": body})


class GiteaAPI(GitHubAPI):
    """Gitea and Forgejo: GitHub's paths and fields, ``Authorization: token …``."""

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"token {self.config.token}", "Accept": "application/json"}


class GitLabAPI(ForgeAPI):
    STATES = {PENDING: "pending", SUCCESS: "success", FAILURE: "failed"}

    def __init__(self, config: ForgeConfig) -> None:
        super().__init__(config)
        self.project = quote(config.repository, safe="")  # "group/sub/name" URL-encoded, or the id

    def headers(self) -> dict[str, str]:
        return {"PRIVATE-TOKEN": self.config.token}

    def status(self, commit, state, description, url, context):
        return Call("POST", f"/projects/{self.project}/statuses/{commit}",
                    {"state": self.STATES[state], "name": context, "target_url": url, "description": description})

    def create_comment(self, number, body):
        return Call("POST", f"/projects/{self.project}/merge_requests/{number}/notes", {"body": body})

    def update_comment(self, number, comment_id, version, body):
        return Call("PUT", f"/projects/{self.project}/merge_requests/{number}/notes/{quote(comment_id)}",
                    {"body": body})


class BitbucketCloudAPI(ForgeAPI):
    STATES = {PENDING: "INPROGRESS", SUCCESS: "SUCCESSFUL", FAILURE: "FAILED"}

    def headers(self) -> dict[str, str]:
        if self.config.username:  # an app password goes with its user name
            pair = f"{self.config.username}:{self.config.token}".encode()
            return {"Authorization": "Basic " + base64.b64encode(pair).decode("ascii")}
        return super().headers()  # a repository, project or workspace access token

    def _repository(self) -> str:
        return f"/2.0/repositories/{self.owner}/{self.name}"

    def status(self, commit, state, description, url, context):
        return Call("POST", f"{self._repository()}/commit/{commit}/statuses/build",
                    {"key": context, "state": self.STATES[state], "url": url, "name": context,
                     "description": description})

    def create_comment(self, number, body):
        return Call("POST", f"{self._repository()}/pullrequests/{number}/comments", {"content": {"raw": body}})

    def update_comment(self, number, comment_id, version, body):
        return Call("PUT", f"{self._repository()}/pullrequests/{number}/comments/{quote(comment_id)}",
                    {"content": {"raw": body}})


class BitbucketDataCenterAPI(BitbucketCloudAPI):
    def _repository(self) -> str:
        return f"/rest/api/latest/projects/{self.owner}/repos/{self.name}"

    def status(self, commit, state, description, url, context):
        return Call("POST", f"{self._repository()}/commits/{commit}/builds",
                    {"key": context, "state": self.STATES[state], "url": url, "name": context,
                     "description": description})

    def create_comment(self, number, body):
        return Call("POST", f"{self._repository()}/pull-requests/{number}/comments", {"text": body})

    def update_comment(self, number, comment_id, version, body):
        # Data Center refuses an edit that does not name the version it replaces (409).
        return Call("PUT", f"{self._repository()}/pull-requests/{number}/comments/{quote(comment_id)}",
                    {"text": body, "version": version or 0})

    @staticmethod
    def comment_identity(answer):
        return str(answer["id"]), int(answer.get("version", 0))


APIS: dict[str, type[ForgeAPI]] = {"github": GitHubAPI, "gitea": GiteaAPI, "forgejo": GiteaAPI, "gitlab": GitLabAPI,
                                   "bitbucket-cloud": BitbucketCloudAPI,
                                   "bitbucket-datacenter": BitbucketDataCenterAPI}


def forge_api(config: ForgeConfig) -> ForgeAPI:
    return APIS[config.type](config)


# Answers after which the same request can never succeed: retrying forever would only hold up
# every later status.  401/403/404 are retried: a token or a repository fixed in the config works.
_PERMANENT = {400, 405, 409, 410, 413, 422}


class ForgeDelivery:
    """Delivers ``forge`` outbox items (``Notifier(deliveries={FORGE: ForgeDelivery(...)})``)."""

    def __init__(self, config: ForgeConfig, store: ForgeStore, status_url: str = "") -> None:
        self.config = config
        self.api = forge_api(config)
        self.store = store
        self.status_url = (config.status_url or status_url or "").rstrip("/")

    def link(self, run_id: int | None) -> str:
        """The run page, or the status page while the run has not happened yet."""
        if not self.status_url:
            return ""
        return f"{self.status_url}/runs/{run_id}" if run_id is not None else self.status_url + "/"

    def __call__(self, item: OutboxItem) -> None:
        payload = json.loads(item.payload)
        if payload["action"] == "status":
            self.send(self.api.status(payload["commit"], payload["state"], payload["description"],
                                      self.link(payload.get("run")), payload["context"]))
            return
        request, number, body = payload["request"], payload["number"], payload["body"]
        known = self.store.comment(request)
        if known is not None:
            try:
                answer = self.send(self.api.update_comment(number, known[0], known[1], body))
            except RejectedDelivery as error:
                if "HTTP 404" not in str(error):
                    raise
                known = None  # the comment was deleted on the forge: post a new one
            else:
                self.store.remember_comment(request, *self._identity(answer, known))
                return
        answer = self.send(self.api.create_comment(number, body))
        self.store.remember_comment(request, *self._identity(answer, None))

    def _identity(self, answer: dict, known: tuple[str, int | None] | None) -> tuple[str, int | None]:
        try:
            return self.api.comment_identity(answer)
        except (KeyError, TypeError, ValueError):
            if known is not None:
                return known
            raise DeliveryError("the forge's answer to a new comment names no comment id")

    def send(self, call: Call) -> dict[str, Any]:
        """Make ``call``; its JSON answer (``{}`` for none).  DeliveryError to retry later,
        RejectedDelivery when the forge refuses it for good."""
        url = self.config.api_url + call.path
        headers = {"Content-Type": "application/json", "User-Agent": "zone-publisher", **self.api.headers()}
        request = urllib.request.Request(url, data=json.dumps(call.body).encode(), headers=headers,
                                         method=call.method)
        where = f"{self.config.type} {call.method} {redact(url)}"  # never the token: it is in a header
        try:
            with urllib.request.urlopen(request, timeout=self.config.timeout) as response:
                text = response.read()
        except urllib.error.HTTPError as error:
            detail = one_line(error.read(500).decode("utf-8", "replace"), 200) if error.fp else ""
            error.close()
            kind = RejectedDelivery if error.code in _PERMANENT or (error.code == 404 and "comments" in call.path
                                                                    and call.method != "POST") else DeliveryError
            raise kind(f"{where}: HTTP {error.code} {detail}".rstrip()) from None
        except (OSError, ValueError) as error:
            raise DeliveryError(f"{where}: {type(error).__name__}: {getattr(error, 'reason', error)}") from None
        if not text.strip():
            return {}
        try:
            answer = json.loads(text)
        except ValueError:
            return {}
        return answer if isinstance(answer, dict) else {}

