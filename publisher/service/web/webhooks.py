"""``POST /notifications/<token>/push`` (alias ``/hooks/<token>``): the forge's push webhook.

Order of checks, cheapest first: URL token (a bad one counts towards the failure limit, and once
over it is answered 429), body size, signature on the raw body, then what the push is about.  The
token identifies the repository (with ``[[repository]]`` tables, each has its own tokens): from then
on that repository's secret, branches, repository name, forge and queue key apply, so a token of
one repository can neither trigger nor publish another.  The
limiter never refuses a request with a valid token.  Only the queue insert happens here.
Nothing that means "nothing to do" is ever a 5xx: Bitbucket retries those and GitLab disables hooks
that keep failing.
"""

from __future__ import annotations

import logging
import re
import time
from urllib.parse import urlsplit

from flask import Blueprint, abort, current_app, jsonify, request

from publisher.service import forge_events
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


def forge_repository(url: str | None) -> str | None:
    """The repository path of ``url`` when it names a repository on a host (``https://``,
    ``ssh://``, ``git://``, scp-like ``git@host:path``), else None: a local path or ``file://``
    URL names no forge repository, so a forge's name for it cannot be checked against it."""
    if not url:
        return None
    if re.match(r"^[\w.-]+@[\w.-]+:", url) and "://" not in url:
        return repository_path(url)
    parts = urlsplit(url)
    if parts.scheme.lower() in ("http", "https", "ssh", "git", "git+ssh", "ssh+git") and parts.hostname:
        return repository_path(url)
    return None


def expected_repository(url: str | None, configured: str | None) -> str | None:
    """The repository a push must name: ``[webhook] repository`` when set (a mirror, a path),
    else the forge repository ``[source] url`` names, else None (the token alone decides)."""
    if configured:
        return configured.strip("/").lower()
    return forge_repository(url)


def repository_matches(payload_name: str | None, url: str | None, configured: str | None = None) -> bool:
    """A payload's repository name must be the expected one, or the tail of the configured URL's
    path (Bitbucket Data Center names ``PROJECT/slug`` for ``…/scm/project/slug``); case-insensitive.
    When either is unknown (plain curl, a local source directory) the token alone decides."""
    expected = expected_repository(url, configured)
    if not payload_name or not expected:
        return True
    name = payload_name.strip("/").lower()
    if configured:
        return expected == name
    return expected == name or expected.endswith("/" + name)


def _answer(status: int, outcome: str, started: float, **body):
    WEBHOOK_REQUESTS.labels(outcome=outcome).inc()
    WEBHOOK_LATENCY.observe(time.perf_counter() - started)
    return jsonify(status=outcome, **body), status


def _refuse(client: str, status: int, outcome: str, reason: str, started: float, *, counts: bool = True):
    if counts:
        services().limiter.fail(client)
    log.warning("webhook refused from %s: %s", client, reason)  # reason never holds the token or secret
    return _answer(status, outcome, started, reason=reason)


def read_body(limit: int) -> bytes:
    """The raw body, at most ``limit`` bytes, else 413.  A body with a Content-Length over the
    limit is refused by Flask before it is read; a chunked one (no length) is read here to one
    byte past the limit, so it is refused too instead of being cut at the limit and signed over."""
    if request.content_length is not None or "wsgi.input_terminated" not in request.environ:
        return request.get_data(cache=False)  # 413 beyond MAX_CONTENT_LENGTH
    body = request.environ["wsgi.input"].read(limit + 1)
    if len(body) > limit:
        abort(413)
    return body


@blueprint.post("/notifications/<token>/push")
@blueprint.post("/hooks/<token>")
def push(token: str):
    started = time.perf_counter()
    shared = services()
    client = shared.clients.client(request.environ)
    # The token first, and it names the repository: a request that names a valid token is never
    # refused by the limiter, however many bad ones came from its address (a forge's shared egress,
    # a proxy).  It costs one SHA-256 per repository's token set.
    hook = shared.webhook_for(token)
    if hook is None:
        was_blocked = shared.limiter.blocked(client)
        shared.limiter.fail(client)
        if was_blocked:  # a flood: answered and counted, not logged one by one
            return _answer(429, "rate-limited", started, reason="too many failed attempts; try again later")
        if shared.limiter.blocked(client):
            log.warning("webhook: %s is now rate-limited after repeated authentication failures", client)
            return _answer(429, "rate-limited", started, reason="too many failed attempts; try again later")
        return _refuse(client, 403, "bad-token", "unknown token", started, counts=False)

    # From here on, everything is that repository's: its body limit, secret, source, branches, forge.
    view = hook.view
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    if shared.config.repositories:
        limit = min(limit, view.webhook.max_body)
        if request.content_length is not None and request.content_length > limit:
            return _answer(413, "refused", started, reason=f"body larger than {limit} bytes")
    body = read_body(limit)
    source = view.source
    result = parse_request(request.headers, body, hook.secrets, branch=source.branch)
    if isinstance(result, Refusal):
        return _refuse(client, result.status, "bad-signature" if result.status == 401 else "bad-request",
                       result.reason, started, counts=result.status == 401)
    if result.is_ping:
        return _answer(200, "pong", started, sender=result.sender)
    if not result.is_push and result.request is None:
        return _answer(200, "ignored", started, reason=f"{result.sender} event {result.event!r} is not a push")
    configured = view.webhook.repository
    if not repository_matches(result.repository, source.url, configured):
        expected = expected_repository(source.url, configured)
        return _refuse(client, 403, "wrong-repository",
                       f"repository does not match the configured source: expected {expected!r}"
                       f"{' ([webhook] repository)' if configured else ''}, the push names {result.repository!r}",
                       started, counts=False)
    if result.request is not None:
        status, outcome, fields = forge_events.enqueue_request_plan(
            view, shared.queue, forge_events.forge_store(current_app.extensions, current_app.config["STATE_PATH"]),
            shared.outbox, view.key, result)
        return _answer(status, outcome, started, **fields)
    if result.is_tag:
        return _answer(200, "ignored", started, reason="tags are not published")
    branches = {source.branch, *view.webhook.allowed_branches}
    if result.ref is not None and result.branch not in branches:
        return _answer(200, "ignored", started, reason="not the deploy branch")

    kind = BRANCH_DELETED if result.deleted else PUSH
    queued = shared.queue.enqueue(view.key, kind=kind, sender=result.sender, delivery_id=result.delivery_id,
                                  ref=result.ref, commit=result.commit, replay_key=result.signed_key)
    if queued.status == "duplicate":
        return _answer(200, "duplicate", started, job=queued.job_id, reason="delivery seen before")
    if queued.status == "published":
        return _answer(200, "published", started, reason="commit already published")
    if view.forge is not None and result.commit and not result.deleted:
        forge_events.queue_push_pending(forge_events.forge_store(current_app.extensions, current_app.config["STATE_PATH"]),
                                        shared.outbox, view.forge, queued.job_id, result.commit, view.key)
    log.info("push from %s for %s queued as job %s (%s)", result.sender, view.name or "the repository",
             queued.job_id, queued.status)
    return _answer(202, queued.status, started, job=queued.job_id,
                   reason="deploy branch deleted: will be reported, nothing published" if result.deleted else "")
