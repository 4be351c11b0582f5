"""``POST /notifications/<token>/push`` (alias ``/hooks/<token>``): the forge's push webhook.

Order of checks, cheapest first: rate limit, URL token, body size (Flask's MAX_CONTENT_LENGTH),
signature on the raw body, then what the push is about.  Only the queue insert happens here.
Nothing that means "nothing to do" is ever a 5xx: Bitbucket retries those and GitLab disables hooks
that keep failing.
"""

from __future__ import annotations

import logging
import re
import time
from urllib.parse import urlsplit

from flask import Blueprint, current_app, jsonify, request

from publisher.service.jobs import BRANCH_DELETED, PUSH
from publisher.service.senders import Refusal, parse_request
from publisher.service.web import services
from publisher.service.web.metrics import WEBHOOK_LATENCY, WEBHOOK_REQUESTS

log = logging.getLogger("publisher.webhooks")
blueprint = Blueprint("webhooks", __name__)


def repository_path(url: str | None) -> str | None:
    """``group/sub/repo`` from a git URL (https, ssh, scp-like ``git@host:path`` or a path)."""
    if not url:
        return None
    if re.match(r"^[\w.-]+@[\w.-]+:", url) and "://" not in url:
        path = url.split(":", 1)[1]
    else:
        path = urlsplit(url).path if "://" in url else url
    path = path.strip("/")
    if path.endswith(".git"):
        path = path[:-4]
    return path.lower() or None


def repository_matches(payload_name: str | None, url: str | None) -> bool:
    """A payload's repository name must be the tail of the configured URL's path (case-insensitive);
    when either is unknown (plain curl, a local source directory) the token alone decides."""
    configured = repository_path(url)
    if not payload_name or not configured:
        return True
    name = payload_name.strip("/").lower()
    return configured == name or configured.endswith("/" + name)


_WEBHOOK_PATH = re.compile(r"^/(?:notifications/([^/]+)/push|hooks/([^/]+))$")


class WebhookGate:
    """WSGI middleware refusing rate-limited clients and unknown tokens before Flask runs.

    A flood of bad requests then costs a regex, a dict lookup and one SHA-256 each, so it cannot
    starve the valid pushes (the Flask view repeats both checks, which keeps it correct alone).
    """

    def __init__(self, app, shared) -> None:
        self.app = app
        self.shared = shared

    RATE_LIMITED = ("429 Too Many Requests",
                    b'{"status":"rate-limited","reason":"too many failed attempts; try again later"}')

    def __call__(self, environ, start_response):
        if environ.get("REQUEST_METHOD") == "POST":
            match = _WEBHOOK_PATH.match(environ.get("PATH_INFO", ""))
            if match:
                client = environ.get("REMOTE_ADDR") or "unknown"
                limiter = self.shared.limiter
                if limiter.blocked(client):
                    status, body = self.RATE_LIMITED
                    return self._refuse(start_response, status, "rate-limited", body)
                token = match.group(1) or match.group(2)
                if not self.shared.tokens.matches(token):
                    limiter.fail(client)
                    if limiter.blocked(client):
                        log.warning("webhook: %s is now rate-limited after repeated authentication failures", client)
                    else:
                        log.warning("webhook refused from %s: unknown token", client)
                    return self._refuse(start_response, "403 Forbidden", "bad-token",
                                        b'{"status":"bad-token","reason":"unknown token"}')
        return self.app(environ, start_response)

    @staticmethod
    def _refuse(start_response, status: str, outcome: str, body: bytes):
        WEBHOOK_REQUESTS.labels(outcome=outcome).inc()
        start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]


def _answer(status: int, outcome: str, started: float, **body):
    WEBHOOK_REQUESTS.labels(outcome=outcome).inc()
    WEBHOOK_LATENCY.observe(time.perf_counter() - started)
    return jsonify(status=outcome, **body), status


def _refuse(client: str, status: int, outcome: str, reason: str, started: float, *, counts: bool = True):
    if counts:
        services().limiter.fail(client)
    log.warning("webhook refused from %s: %s", client, reason)  # reason never holds the token or secret
    return _answer(status, outcome, started, reason=reason)


@blueprint.post("/notifications/<token>/push")
@blueprint.post("/hooks/<token>")
def push(token: str):
    started = time.perf_counter()
    shared = services()
    client = request.remote_addr or "unknown"
    if shared.limiter.blocked(client):
        return _answer(429, "rate-limited", started, reason="too many failed attempts; try again later")
    if not shared.tokens.matches(token):
        return _refuse(client, 403, "bad-token", "unknown token", started)

    body = request.get_data(cache=False)  # raises 413 beyond MAX_CONTENT_LENGTH
    source = shared.config.source
    result = parse_request(request.headers, body, current_app.config["WEBHOOK_SECRETS"], branch=source.branch)
    if isinstance(result, Refusal):
        return _refuse(client, result.status, "bad-signature" if result.status == 401 else "bad-request",
                       result.reason, started, counts=result.status == 401)
    if result.is_ping:
        return _answer(200, "pong", started, sender=result.sender)
    if not result.is_push:
        return _answer(200, "ignored", started, reason=f"{result.sender} event {result.event!r} is not a push")
    if not repository_matches(result.repository, source.url):
        return _refuse(client, 403, "wrong-repository", "repository does not match the configured source", started,
                       counts=False)
    if result.is_tag:
        return _answer(200, "ignored", started, reason="tags are not published")
    branches = {source.branch, *shared.config.webhook.allowed_branches}
    if result.ref is not None and result.branch not in branches:
        return _answer(200, "ignored", started, reason="not the deploy branch")

    kind = BRANCH_DELETED if result.deleted else PUSH
    queued = shared.queue.enqueue(shared.repository, kind=kind, sender=result.sender, delivery_id=result.delivery_id,
                                  ref=result.ref, commit=result.commit)
    if queued.status == "duplicate":
        return _answer(200, "duplicate", started, job=queued.job_id, reason="delivery seen before")
    if queued.status == "published":
        return _answer(200, "published", started, reason="commit already published")
    log.info("push from %s queued as job %s (%s)", result.sender, queued.job_id, queued.status)
    return _answer(202, queued.status, started, job=queued.job_id,
                   reason="deploy branch deleted: will be reported, nothing published" if result.deleted else "")
