"""Forge APIs for the tests: small HTTP servers on 127.0.0.1 that answer the commit-status and
pull-request-comment endpoints the way each vendor documents them, refuse what the vendor would
refuse (a missing or wrong token, an unknown field, a state word the vendor does not have, a
comment that does not exist, a Bitbucket Data Center edit naming a stale version), and record
everything they received.

No forge can run here, so these are the oracle for ``publisher.service.forge``.  Every endpoint,
header and field below names the documentation it comes from:

* GitHub REST API, version 2022-11-28: "Commit statuses" > "Create a commit status"; "Issues" >
  "Issue comments" > "Create an issue comment", "Update an issue comment"; "Authenticating to the
  REST API" (``Authorization: Bearer``), "API versions" (``X-GitHub-Api-Version``), media types
  (``Accept: application/vnd.github+json``).
* GitLab REST API v4: "Commits API" > "Set the pipeline status of a commit"; "Notes API" > "Merge
  requests" > "Create new merge request note", "Modify existing merge request note"; "REST API
  authentication" (``PRIVATE-TOKEN``); "Namespaced paths" (``:id`` as URL-encoded ``group%2Fname``).
* Gitea API v1 (swagger, also Forgejo's): ``repoCreateStatus`` (``CreateStatusOption``),
  ``issueCreateComment`` (``CreateIssueCommentOption``), ``issueEditComment``
  (``EditIssueCommentOption``); "API Usage" > authentication (``Authorization: token …``).
* Bitbucket Cloud REST API 2.0: "Commit statuses" > "Create a build status for a commit"
  (``commitstatus``); "Pullrequests" > "Create a comment on a pull request", "Update a comment on a
  pull request" (``pullrequest_comment``, ``content.raw``); authentication: access tokens as
  ``Bearer``, app passwords as HTTP Basic.
* Bitbucket Data Center REST API (latest): "Builds and Deployments" > "Store build status"
  (``RestBuildStatusSetRequest``, answer 204); "Pull Requests" > "Add pull request comment",
  "Update pull request comment" (``RestComment``; the edit must name the current ``version``, else
  409); HTTP access tokens as ``Bearer``.
"""

from __future__ import annotations

import base64
import itertools
import json
import re
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import unquote

TOKEN = "forge-test-token-do-not-log"


@dataclass
class Received:
    """One request as it arrived, and what was answered."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    answered: int = 0


@dataclass(frozen=True)
class Status:
    """A commit status the server accepted, in the vendor-neutral words the tests compare."""

    commit: str
    state: str  # as the vendor spells it
    description: str
    url: str
    context: str


class Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _fields(body: Any, required: set[str], optional: set[str], where: str) -> dict:
    """The documented fields: all required ones present, nothing undocumented."""
    if not isinstance(body, dict):
        raise Refused(400, f"{where}: body must be a JSON object")
    missing = required - set(body)
    unknown = set(body) - required - optional
    if missing or unknown:
        raise Refused(400 if missing else 422, f"{where}: missing {sorted(missing)}, unknown {sorted(unknown)}")
    return body


class ForgeServer:
    """Base: routing, recording, outages.  Subclasses declare ``routes`` and the auth they accept."""

    vendor = ""
    api_prefix = ""  # what ``[forge] api_url`` adds after the host
    comment_path = ""

    def __init__(self, token: str = TOKEN) -> None:
        self.token = token
        self.received: list[Received] = []
        self.statuses: list[Status] = []
        self.comments: dict[str, dict] = {}  # id -> {"number", "body", "version", "edits"}
        self.down: str | None = None  # None, an HTTP status to answer everything with ("503"), or "reset"
        self._ids = itertools.count(1001)
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def _handle(self):
                server._serve(self)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> "ForgeServer":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> "ForgeServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{self.api_prefix}"

    # -- what subclasses define ---------------------------------------------------------------
    def routes(self) -> list[tuple[str, str, Callable[..., tuple[int, Any]]]]:
        raise NotImplementedError

    def authorised(self, headers: dict[str, str]) -> bool:
        return headers.get("authorization") == f"Bearer {self.token}"

    def check_headers(self, headers: dict[str, str]) -> None:
        """Headers the vendor requires beyond authentication."""

    # -- serving ------------------------------------------------------------------------------
    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in handler.headers.items()}
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw
        record = Received(handler.command, handler.path, headers, body)
        with self._lock:
            self.received.append(record)
            down = self.down
        if down == "reset":
            handler.close_connection = True
            handler.connection.shutdown(2)
            return
        if down is not None and down.isdigit():  # an outage ("503") or a refusal to provoke ("422")
            return self._reply(handler, record, int(down), {"message": "unavailable"})
        try:
            if not self.authorised(headers):
                raise Refused(401, "Bad credentials")
            self.check_headers(headers)
            if raw and headers.get("content-type", "").split(";")[0] != "application/json":
                raise Refused(415, "Content-Type must be application/json")
            path = handler.path.split("?", 1)[0]
            for method, pattern, action in self.routes():
                match = re.fullmatch(self.api_prefix + pattern, path)
                if match and method == handler.command:
                    with self._lock:
                        status, answer = action(body, *[unquote(g) for g in match.groups()])
                    return self._reply(handler, record, status, answer)
            raise Refused(404, f"no route {handler.command} {path}")
        except Refused as refusal:
            return self._reply(handler, record, refusal.status, {"message": str(refusal)})

    @staticmethod
    def _reply(handler, record: Received, status: int, answer: Any) -> None:
        record.answered = status
        data = b"" if status == 204 or answer is None else json.dumps(answer).encode()
        handler.send_response(status)
        if data:
            handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    # -- shared bookkeeping ---------------------------------------------------------------------
    def _new_comment(self, number: str, text: str) -> dict:
        comment_id = str(next(self._ids))
        self.comments[comment_id] = {"number": int(number), "body": text, "version": 0, "edits": 0}
        return {"id": int(comment_id), **self.comments[comment_id]}

    def _edit_comment(self, comment_id: str, text: str, number: str | None = None) -> dict:
        comment = self.comments.get(comment_id)
        if comment is None or (number is not None and comment["number"] != int(number)):
            raise Refused(404, "Not Found")
        comment.update(body=text, version=comment["version"] + 1, edits=comment["edits"] + 1)
        return {"id": int(comment_id), **comment}

    def ok_statuses(self) -> list[Status]:
        with self._lock:
            return list(self.statuses)

    def attempts(self, path_part: str) -> list[Received]:
        with self._lock:
            return [r for r in self.received if path_part in r.path]


class GitHubServer(ForgeServer):
    vendor = "github"
    api_prefix = "/api/v3"  # GitHub Enterprise Server's REST base (github.com: https://api.github.com)
    STATES = {"error", "failure", "pending", "success"}  # "Create a commit status": state enum

    def check_headers(self, headers):
        # "Getting started with the REST API": Accept application/vnd.github+json; "API versions".
        if headers.get("accept") != "application/vnd.github+json":
            raise Refused(415, "Accept must be application/vnd.github+json")
        if headers.get("x-github-api-version") != "2022-11-28":
            raise Refused(400, "unsupported X-GitHub-Api-Version")

    def routes(self):
        repo = r"/repos/([^/]+)/([^/]+)"
        return [("POST", repo + r"/statuses/([0-9a-f]{40})", self.create_status),
                ("POST", repo + r"/issues/(\d+)/comments", self.create_comment),
                ("PATCH", repo + r"/issues/comments/(\d+)", self.update_comment)]

    def create_status(self, body, owner, repo, sha):
        # "Create a commit status": state (required), target_url, description, context.
        data = _fields(body, {"state"}, {"target_url", "description", "context"}, "status")
        if data["state"] not in self.STATES:
            raise Refused(422, "Validation Failed: state")
        if len(data.get("description") or "") > 140:
            raise Refused(422, "Validation Failed: description is too long (maximum is 140 characters)")
        self.statuses.append(Status(sha, data["state"], data.get("description") or "", data.get("target_url") or "",
                                    data.get("context", "default")))
        return 201, {"id": next(self._ids), "state": data["state"], "description": data.get("description"),
                     "target_url": data.get("target_url"), "context": data.get("context", "default")}

    def create_comment(self, body, owner, repo, number):
        # "Create an issue comment": body (required); answer 201 with the comment's id.
        data = _fields(body, {"body"}, set(), "comment")
        return 201, self._new_comment(number, data["body"])

    def update_comment(self, body, owner, repo, comment_id):
        # "Update an issue comment": body (required); 200; 404 for an unknown comment.
        data = _fields(body, {"body"}, set(), "comment")
        return 200, self._edit_comment(comment_id, data["body"])


class GiteaServer(GitHubServer):
    vendor = "gitea"
    api_prefix = "/api/v1"
    STATES = {"pending", "success", "error", "failure", "warning"}  # CommitStatusState

    def authorised(self, headers):
        return headers.get("authorization") == f"token {self.token}"  # "API Usage": token header

    def check_headers(self, headers):
        pass

    def create_status(self, body, owner, repo, sha):
        # CreateStatusOption: context, description, state, target_url (all optional in the schema;
        # state is validated against CommitStatusState).
        data = _fields(body, set(), {"context", "description", "state", "target_url"}, "status")
        if data.get("state") not in self.STATES:
            raise Refused(422, "state is invalid")
        self.statuses.append(Status(sha, data["state"], data.get("description", ""), data.get("target_url", ""),
                                    data.get("context", "")))
        return 201, {"id": next(self._ids), "status": data["state"], "context": data.get("context", ""),
                     "description": data.get("description", ""), "target_url": data.get("target_url", "")}


class GitLabServer(ForgeServer):
    vendor = "gitlab"
    api_prefix = "/api/v4"
    STATES = {"pending", "running", "success", "failed", "canceled", "skipped"}  # "Set the pipeline status"

    def authorised(self, headers):
        return headers.get("private-token") == self.token  # "REST API authentication": PRIVATE-TOKEN

    def routes(self):
        project = r"/projects/([^/]+)"  # an id, or the URL-encoded path (its "/" as %2F)
        return [("POST", project + r"/statuses/([0-9a-f]{40})", self.create_status),
                ("POST", project + r"/merge_requests/(\d+)/notes", self.create_note),
                ("PUT", project + r"/merge_requests/(\d+)/notes/(\d+)", self.update_note)]

    def create_status(self, body, project, sha):
        # Commits API, "Set the pipeline status of a commit": state (required), ref, name or context,
        # target_url, description, coverage, pipeline_id.
        data = _fields(body, {"state"}, {"ref", "name", "context", "target_url", "description", "coverage",
                                         "pipeline_id"}, "status")
        if data["state"] not in self.STATES:
            raise Refused(400, "state does not have a valid value")
        self.statuses.append(Status(sha, data["state"], data.get("description", ""), data.get("target_url", ""),
                                    data.get("name") or data.get("context") or "default"))
        return 201, {"id": next(self._ids), "sha": sha, "status": data["state"],
                     "name": data.get("name") or data.get("context") or "default"}

    def create_note(self, body, project, iid):
        # Notes API, "Create new merge request note": body (required); 201 with the note's id.
        data = _fields(body, {"body"}, {"created_at", "internal", "merge_request_diff_head_sha"}, "note")
        return 201, self._new_comment(iid, data["body"])

    def update_note(self, body, project, iid, note_id):
        # "Modify existing merge request note": body; 200; 404 for an unknown note.
        data = _fields(body, {"body"}, set(), "note")
        return 200, self._edit_comment(note_id, data["body"], iid)


class BitbucketCloudServer(ForgeServer):
    vendor = "bitbucket-cloud"
    STATES = {"SUCCESSFUL", "FAILED", "INPROGRESS", "STOPPED"}  # commitstatus.state

    def __init__(self, token: str = TOKEN, username: str | None = None) -> None:
        super().__init__(token)
        self.username = username

    def authorised(self, headers):
        if self.username:  # app password: HTTP Basic with the Bitbucket user name
            pair = base64.b64encode(f"{self.username}:{self.token}".encode()).decode()
            return headers.get("authorization") == f"Basic {pair}"
        return super().authorised(headers)  # access token: Bearer

    def routes(self):
        repo = r"/2\.0/repositories/([^/]+)/([^/]+)"
        return [("POST", repo + r"/commit/([0-9a-f]{40})/statuses/build", self.create_status),
                ("POST", repo + r"/pullrequests/(\d+)/comments", self.create_comment),
                ("PUT", repo + r"/pullrequests/(\d+)/comments/(\d+)", self.update_comment)]

    def create_status(self, body, workspace, slug, commit):
        # "Create a build status for a commit" (commitstatus): key, state, url required; name,
        # description, refname optional.
        data = _fields(body, {"key", "state", "url"}, {"name", "description", "refname"}, "commitstatus")
        if data["state"] not in self.STATES:
            raise Refused(400, "state: not a valid choice")
        self.statuses.append(Status(commit, data["state"], data.get("description", ""), data["url"], data["key"]))
        return 201, {"type": "build", "key": data["key"], "state": data["state"], "url": data["url"]}

    @staticmethod
    def _raw(body) -> str:
        data = _fields(body, {"content"}, {"inline", "parent"}, "pullrequest_comment")
        content = _fields(data["content"], {"raw"}, {"markup", "html"}, "content")
        return content["raw"]

    def create_comment(self, body, workspace, slug, number):
        # "Create a comment on a pull request": content.raw; 201 with the comment's id.
        return 201, self._new_comment(number, self._raw(body))

    def update_comment(self, body, workspace, slug, number, comment_id):
        # "Update a comment on a pull request": content.raw; 200.
        return 200, self._edit_comment(comment_id, self._raw(body), number)


class BitbucketDataCenterServer(ForgeServer):
    vendor = "bitbucket-datacenter"
    STATES = {"SUCCESSFUL", "FAILED", "INPROGRESS", "CANCELLED", "UNKNOWN"}  # RestBuildStatusSetRequest.state

    def routes(self):
        repo = r"/rest/api/latest/projects/([^/]+)/repos/([^/]+)"
        return [("POST", repo + r"/commits/([0-9a-f]{40})/builds", self.store_build_status),
                ("POST", repo + r"/pull-requests/(\d+)/comments", self.add_comment),
                ("PUT", repo + r"/pull-requests/(\d+)/comments/(\d+)", self.update_comment)]

    def store_build_status(self, body, project, slug, commit):
        # "Store build status" (RestBuildStatusSetRequest): key, state, url required; name,
        # description, buildNumber, duration, lastUpdated, parent, ref, testResults optional.  204.
        data = _fields(body, {"key", "state", "url"}, {"name", "description", "buildNumber", "duration",
                                                       "lastUpdated", "parent", "ref", "testResults"}, "build")
        if data["state"] not in self.STATES:
            raise Refused(400, "state is not valid")
        self.statuses.append(Status(commit, data["state"], data.get("description", ""), data["url"], data["key"]))
        return 204, None

    def add_comment(self, body, project, slug, number):
        # "Add pull request comment": text; 201 RestComment with id and version.
        data = _fields(body, {"text"}, {"parent", "anchor", "severity", "state"}, "comment")
        return 201, self._new_comment(number, data["text"])

    def update_comment(self, body, project, slug, number, comment_id):
        # "Update pull request comment": text and version, which must be the comment's current one (409).
        data = _fields(body, {"text", "version"}, {"severity", "state"}, "comment")
        comment = self.comments.get(comment_id)
        if comment is not None and data["version"] != comment["version"]:
            raise Refused(409, "You are attempting to modify a comment based on out-of-date information.")
        return 200, self._edit_comment(comment_id, data["text"], number)


SERVERS: dict[str, type[ForgeServer]] = {
    "github": GitHubServer, "gitea": GiteaServer, "forgejo": GiteaServer, "gitlab": GitLabServer,
    "bitbucket-cloud": BitbucketCloudServer, "bitbucket-datacenter": BitbucketDataCenterServer,
}

# What each vendor calls the three states the publisher reports.
STATE_WORDS = {
    "github": ("pending", "success", "failure"), "gitea": ("pending", "success", "failure"),
    "forgejo": ("pending", "success", "failure"), "gitlab": ("pending", "success", "failed"),
    "bitbucket-cloud": ("INPROGRESS", "SUCCESSFUL", "FAILED"),
    "bitbucket-datacenter": ("INPROGRESS", "SUCCESSFUL", "FAILED"),
}
