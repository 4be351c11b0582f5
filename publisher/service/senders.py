"""Recognise which forge sent a webhook, verify its signature on the raw body, and extract the push.

The payload is only a trigger: nothing here fetches anything, and the repository URL in a payload
is never used.  See ``shared/docs/webhook-senders.md`` for the table this module implements.
The order of recognition matters: Forgejo also sends Gitea's and GitHub's headers, and Gitea
sends GitHub's, so the most specific sender is checked first.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Mapping, Sequence
from urllib.parse import parse_qs

from publisher.service.pull_requests import PullRequest, pull_request

ZERO_COMMIT = "0" * 40
TIMESTAMP_TOLERANCE = 300  # Standard Webhooks: reject timestamps more than 5 minutes off
COMMIT_ID = re.compile(r"[0-9a-f]{40}(?:[0-9a-f]{24})?\Z")  # SHA-1 or SHA-256 object names
MAX_REF = 255  # git allows longer refs, but no deploy branch is
MAX_NAME = 255  # repository names, delivery ids


@dataclass(frozen=True)
class Push:
    """What a sender told us.  ``ref`` is a full ref (``refs/heads/main``) or None when the
    sender named none (plain curl: publish the configured branch).  ``event`` is ``"push"``,
    ``"ping"`` or the sender's own name for an event that is not a push (nothing to do)."""

    sender: str
    delivery_id: str | None
    ref: str | None
    commit: str | None
    repository: str | None
    deleted: bool = False
    is_ping: bool = False
    is_tag: bool = False
    event: str = "push"
    request: PullRequest | None = None  # a pull/merge-request event (``event`` is the sender's name for it)
    # What was signed, as a key: the same signed delivery sent again under a new delivery id (or
    # another sender's headers) has the same one.  None when nothing was signed (no secret).
    signed_key: str | None = field(default=None, compare=False)

    @property
    def is_push(self) -> bool:
        return self.event == "push"

    @property
    def branch(self) -> str | None:
        if self.ref and self.ref.startswith("refs/heads/"):
            return self.ref[len("refs/heads/"):]
        return None


@dataclass(frozen=True)
class Refusal:
    """Why a request was refused, and the HTTP status to answer.  ``reason`` is safe to log."""

    status: int
    reason: str


class _Headers:
    """Case-insensitive header lookup over any mapping (Flask's headers or a plain dict)."""

    def __init__(self, headers: Mapping[str, str]) -> None:
        self._lower = {str(k).lower(): str(v) for k, v in headers.items()}

    def get(self, name: str) -> str | None:
        return self._lower.get(name.lower())

    def __contains__(self, name: str) -> bool:
        return name.lower() in self._lower


def recognise(headers: Mapping[str, str]) -> str:
    """The sender's name: forgejo, gitea, gogs, github, gitlab, bitbucket-cloud,
    bitbucket-datacenter, standard-webhooks or curl."""
    h = headers if isinstance(headers, _Headers) else _Headers(headers)
    if "X-Forgejo-Event" in h:
        return "forgejo"
    if "X-Gitea-Event" in h:
        return "gitea"
    if "X-Gogs-Event" in h:
        return "gogs"
    if "X-GitHub-Event" in h:
        return "github"
    if "X-Gitlab-Event" in h:
        return "gitlab"
    event_key = h.get("X-Event-Key")
    if event_key is not None:
        if event_key == "repo:refs_changed" or event_key.startswith("pr:") or (
                event_key.startswith("diagnostics:") and "X-Request-UUID" not in h):  # Cloud says "pullrequest:"
            return "bitbucket-datacenter"
        return "bitbucket-cloud"
    if "webhook-signature" in h or "webhook-id" in h:
        return "standard-webhooks"
    return "curl"


def parse_request(headers: Mapping[str, str], body: bytes, secrets: Sequence[str] = (), *,
                  branch: str | None = None, now: float | None = None) -> Push | Refusal:
    """Verify and parse one webhook request.

    ``secrets`` are the configured ``[webhook] secret`` values (several during rotation); when
    empty, the URL token alone authenticates and signatures are not required.  ``branch`` picks
    the relevant change when one delivery carries several refs (Bitbucket).
    """
    h = _Headers(headers)
    sender = recognise(h)
    signed_key = None
    if secrets:
        refusal = _verify(sender, h, body, secrets, time.time() if now is None else now)
        if refusal is not None:
            return refusal
        signed_key = signed_content_key(sender, h, body)
    payload = _decode_payload(h, body)
    if isinstance(payload, Refusal):
        return payload
    try:
        push = _PARSERS[sender](sender, h, payload, branch)
    except (AttributeError, TypeError, KeyError, IndexError, ValueError):
        return Refusal(400, f"{sender} payload does not have the expected shape")
    if not push.is_push and not push.is_ping:
        try:
            request = pull_request(sender, push.event, payload)
        except ValueError as error:
            return Refusal(400, str(error))
        if request is not None:
            push = replace(push, request=request, repository=push.repository or request.repository)
    return _checked(push, signed_key)


def signed_content_key(sender: str, h: _Headers, body: bytes) -> str:
    """The replay key of a verified request.  Standard Webhooks signs its message id (a retry keeps
    the id and gets a new timestamp, hence a new signature), so the id is the key; every other
    sender signs the body alone (GitLab's token signs nothing), so the body's hash is."""
    if sender == "standard-webhooks" or (sender == "gitlab" and "webhook-signature" in h):
        return "webhook-id:" + hashlib.sha256((h.get("webhook-id") or "").encode("utf-8", "surrogateescape")).hexdigest()
    return "body:" + hashlib.sha256(body).hexdigest()


def _checked(push: Push, signed_key: str | None) -> Push | Refusal:
    """``push`` when every fact in it has the type and form the queue stores, else why not.
    Payloads are attacker-shaped: ``"after": {}`` or a 900 KB string must be a 400 here."""
    sender = push.sender
    if push.ref is not None and (not isinstance(push.ref, str) or not 0 < len(push.ref) <= MAX_REF):
        return Refusal(400, f"{sender} payload: ref must be a string of at most {MAX_REF} characters")
    if push.commit is not None:
        if not isinstance(push.commit, str) or not COMMIT_ID.match(push.commit.lower()):
            return Refusal(400, f"{sender} payload: the new commit id must be 40 or 64 hex digits")
        push = replace(push, commit=push.commit.lower())
    if push.repository is not None and (not isinstance(push.repository, str) or len(push.repository) > MAX_NAME):
        return Refusal(400, f"{sender} payload: repository name must be a string of at most {MAX_NAME} characters")
    if push.delivery_id is not None and len(push.delivery_id) > MAX_NAME:
        return Refusal(400, f"{sender} delivery id is longer than {MAX_NAME} characters")
    return replace(push, signed_key=signed_key)


# --- signatures ------------------------------------------------------------------------------

def _hmac_hex(secret: bytes, body: bytes, digest: Callable = hashlib.sha256) -> str:
    return hmac.new(secret, body, digest).hexdigest()


def _secret_bytes(secret: str) -> bytes:
    return secret.encode("utf-8")


def _standard_key(secret: str) -> bytes:
    """Standard Webhooks secrets are ``whsec_<base64>``: the key is the decoded bytes."""
    if secret.startswith("whsec_"):
        try:
            return base64.b64decode(secret[len("whsec_"):], validate=True)
        except (binascii.Error, ValueError):
            return secret.encode("utf-8")
    return secret.encode("utf-8")


def _any_hex_match(expected_hex: str, body: bytes, secrets: Sequence[str], digest: Callable = hashlib.sha256) -> bool:
    # Bytes, not str: compare_digest refuses a str with non-ASCII characters (a header is any latin-1).
    offered = expected_hex.strip().lower().encode("utf-8", "surrogateescape")
    found = False
    for secret in secrets:
        found |= hmac.compare_digest(_hmac_hex(_secret_bytes(secret), body, digest).encode("ascii"), offered)
    return found


def _prefixed(header: str | None, prefix: str) -> str | None:
    if header is None:
        return None
    header = header.strip()
    if not header.lower().startswith(prefix):
        return None
    return header[len(prefix):]


def _verify(sender: str, h: _Headers, body: bytes, secrets: Sequence[str], now: float) -> Refusal | None:
    unsigned = Refusal(401, f"{sender} request is not signed and a webhook secret is configured")
    bad = Refusal(401, f"{sender} signature does not match")
    if sender in ("forgejo", "gitea", "gogs"):
        name = {"forgejo": "X-Forgejo-Signature", "gitea": "X-Gitea-Signature", "gogs": "X-Gogs-Signature"}[sender]
        signature = h.get(name)
        if signature is None:
            return unsigned
        return None if _any_hex_match(signature, body, secrets) else bad
    if sender == "gitlab":
        if "webhook-signature" in h:
            return _verify_standard(h, body, secrets, now)
        token = h.get("X-Gitlab-Token")
        if token is None:
            return unsigned
        found = False
        for secret in secrets:
            found |= hmac.compare_digest(token.encode("utf-8", "surrogateescape"), secret.encode("utf-8"))
        return None if found else Refusal(401, "gitlab token does not match")
    if sender == "standard-webhooks":
        return _verify_standard(h, body, secrets, now)
    if sender in ("bitbucket-cloud", "bitbucket-datacenter"):
        signature = _prefixed(h.get("X-Hub-Signature"), "sha256=")
        if signature is None:
            return unsigned
        return None if _any_hex_match(signature, body, secrets) else bad
    # GitHub, and plain curl that chose to sign the GitHub way.
    signature = _prefixed(h.get("X-Hub-Signature-256"), "sha256=")
    if signature is not None:
        return None if _any_hex_match(signature, body, secrets) else bad
    legacy = _prefixed(h.get("X-Hub-Signature"), "sha1=")
    if legacy is not None:
        return None if _any_hex_match(legacy, body, secrets, hashlib.sha1) else bad
    return unsigned


def standard_signature(secret: str, message_id: str, timestamp: str, body: bytes) -> str:
    """The ``v1,<base64>`` signature Standard Webhooks puts in ``webhook-signature``."""
    signed = f"{message_id}.{timestamp}.".encode("utf-8") + body
    mac = hmac.new(_standard_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode("ascii")


def _verify_standard(h: _Headers, body: bytes, secrets: Sequence[str], now: float) -> Refusal | None:
    message_id, timestamp, header = h.get("webhook-id"), h.get("webhook-timestamp"), h.get("webhook-signature")
    if not message_id or not timestamp or not header:
        return Refusal(401, "standard-webhooks request lacks webhook-id, -timestamp or -signature")
    try:
        sent = int(timestamp)
    except ValueError:
        return Refusal(401, "standard-webhooks timestamp is not an integer")
    if abs(now - sent) > TIMESTAMP_TOLERANCE:
        return Refusal(401, "standard-webhooks timestamp is more than 5 minutes off")
    offered = [part for part in header.split() if part.startswith("v1,")]
    found = False
    for secret in secrets:
        expected = standard_signature(secret, message_id, timestamp, body)
        for candidate in offered:
            found |= hmac.compare_digest(expected.encode("ascii"), candidate.encode("utf-8", "surrogateescape"))
    return None if found else Refusal(401, "standard-webhooks signature does not match")


# --- payloads --------------------------------------------------------------------------------

def _decode_payload(h: _Headers, body: bytes) -> Any:
    """JSON from the raw body; GitHub and Gitea may send it form-encoded in a ``payload`` field.
    An empty body (plain curl) is an empty object."""
    content_type = (h.get("Content-Type") or "").split(";")[0].strip().lower()
    text = body.strip()
    if not text:
        return {}
    if content_type == "application/x-www-form-urlencoded" or text.startswith(b"payload="):
        try:
            fields = parse_qs(body.decode("utf-8"), strict_parsing=False)
        except UnicodeDecodeError:
            return Refusal(400, "form body is not UTF-8")
        if "payload" not in fields:
            return {}
        text = fields["payload"][0].encode("utf-8")
    try:
        return json.loads(text)
    except (ValueError, UnicodeDecodeError):
        return Refusal(400, "body is not JSON")
    except RecursionError:
        return Refusal(400, "body is nested too deeply")


def _is_zero(commit: str | None) -> bool:
    return bool(commit) and set(commit) == {"0"}


def _full_ref(name: str | None, kind: str = "branch") -> str | None:
    if not name:
        return None
    if name.startswith("refs/"):
        return name
    return ("refs/tags/" if kind.lower() == "tag" else "refs/heads/") + name


def _github_like(sender: str, h: _Headers, payload: Any, branch: str | None) -> Push:
    event_header = {"forgejo": "X-Forgejo-Event", "gitea": "X-Gitea-Event", "gogs": "X-Gogs-Event"}.get(sender, "X-GitHub-Event")
    delivery_header = {"forgejo": "X-Forgejo-Delivery", "gitea": "X-Gitea-Delivery", "gogs": "X-Gogs-Delivery"}.get(sender, "X-GitHub-Delivery")
    event = (h.get(event_header) or "").strip().lower()
    delivery = h.get(delivery_header)
    repository = _nested(payload, "repository", "full_name")
    if event == "ping":
        return Push(sender, delivery, None, None, repository, is_ping=True, event="ping")
    if event == "delete" and sender != "github" and payload.get("ref_type", "branch") == "branch":
        # Gitea and Forgejo report a deleted branch as its own event; GitHub also sends a push.
        return Push(sender, delivery, _full_ref(payload.get("ref")), None, repository, deleted=True)
    if event != "push":
        return Push(sender, delivery, None, None, repository, event=event or "unknown")
    ref = payload["ref"]
    after = payload.get("after")
    deleted = bool(payload.get("deleted")) or _is_zero(after)
    return Push(sender, delivery, ref, None if deleted else after, repository,
                deleted=deleted, is_tag=ref.startswith("refs/tags/"))


def _gitlab(sender: str, h: _Headers, payload: Any, branch: str | None) -> Push:
    event = (h.get("X-Gitlab-Event") or "").strip()
    delivery = h.get("Idempotency-Key") or h.get("webhook-id") or h.get("X-Gitlab-Event-UUID")
    repository = _nested(payload, "project", "path_with_namespace")
    kind = payload.get("object_kind") or payload.get("event_name")
    if event == "System Hook":
        kind = payload.get("event_name")
    if event not in ("Push Hook", "Tag Push Hook", "System Hook") or kind not in ("push", "tag_push"):
        return Push(sender, delivery, None, None, repository, event=event or "unknown")
    ref = payload["ref"]
    after = payload.get("checkout_sha") or payload.get("after")
    deleted = _is_zero(payload.get("after"))
    return Push(sender, delivery, ref, None if deleted else after, repository,
                deleted=deleted, is_tag=ref.startswith("refs/tags/") or kind == "tag_push")


def _choose(items: list, branch: str | None, ref_of: Callable[[Any], str | None]) -> Any:
    """The change touching the configured branch, else the first one."""
    if branch:
        for item in items:
            if ref_of(item) == f"refs/heads/{branch}":
                return item
    return items[0]


def _bitbucket_cloud(sender: str, h: _Headers, payload: Any, branch: str | None) -> Push:
    event = h.get("X-Event-Key") or ""
    delivery = h.get("X-Request-UUID") or h.get("X-Hook-UUID")
    repository = _nested(payload, "repository", "full_name")
    if event == "diagnostics:ping":
        return Push(sender, delivery, None, None, repository, is_ping=True, event="ping")
    if event != "repo:push":
        return Push(sender, delivery, None, None, repository, event=event or "unknown")

    def ref_of(change: dict) -> str | None:
        side = change.get("new") or change.get("old") or {}
        return _full_ref(side.get("name"), side.get("type", "branch"))

    change = _choose(payload["push"]["changes"], branch, ref_of)
    new = change.get("new")
    deleted = new is None or bool(change.get("closed") and new is None)
    commit = None if deleted else new["target"]["hash"]
    ref = ref_of(change)
    return Push(sender, delivery, ref, commit, repository, deleted=deleted,
                is_tag=bool(ref and ref.startswith("refs/tags/")))


def _bitbucket_datacenter(sender: str, h: _Headers, payload: Any, branch: str | None) -> Push:
    event = h.get("X-Event-Key") or ""
    delivery = h.get("X-Request-Id")
    slug = _nested(payload, "repository", "slug")
    project = _nested(payload, "repository", "project", "key")
    repository = f"{project}/{slug}" if project and slug else slug
    if event.startswith("diagnostics:"):
        return Push(sender, delivery, None, None, repository, is_ping=True, event="ping")
    if event != "repo:refs_changed":
        return Push(sender, delivery, None, None, repository, event=event or "unknown")
    change = _choose(payload["changes"], branch, lambda c: c.get("refId"))
    ref = change["refId"]
    deleted = str(change.get("type", "")).upper() == "DELETE" or _is_zero(change.get("toHash"))
    ref_type = str(_nested(change, "ref", "type") or "").upper()
    return Push(sender, delivery, ref, None if deleted else change.get("toHash"), repository,
                deleted=deleted, is_tag=ref.startswith("refs/tags/") or ref_type == "TAG")


def _generic(sender: str, h: _Headers, payload: Any, branch: str | None) -> Push:
    """Standard Webhooks and plain curl: GitHub-like fields when present, else 'the branch'."""
    delivery = h.get("webhook-id") if sender == "standard-webhooks" else None
    if not isinstance(payload, dict):
        return Push(sender, delivery, None, None, None)
    data = payload.get("data") if isinstance(payload.get("data"), dict) else payload
    if str(payload.get("type", "")).lower() in ("ping", "webhook.ping", "test"):
        return Push(sender, delivery, None, None, None, is_ping=True, event="ping")
    repository = data.get("repository")
    if isinstance(repository, dict):
        repository = repository.get("full_name") or repository.get("name")
    ref = _full_ref(data.get("ref")) if isinstance(data.get("ref"), str) else None
    commit = data.get("after") or data.get("commit")
    deleted = bool(data.get("deleted")) or _is_zero(commit)
    return Push(sender, delivery, ref, None if deleted or not isinstance(commit, str) else commit,
                repository if isinstance(repository, str) else None,
                deleted=deleted, is_tag=bool(ref and ref.startswith("refs/tags/")))


def _nested(payload: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(payload, dict):
            return None
        payload = payload.get(key)
    return payload


_PARSERS: dict[str, Callable[[str, _Headers, Any, str | None], Push]] = {
    "forgejo": _github_like,
    "gitea": _github_like,
    "gogs": _github_like,
    "github": _github_like,
    "gitlab": _gitlab,
    "bitbucket-cloud": _bitbucket_cloud,
    "bitbucket-datacenter": _bitbucket_datacenter,
    "standard-webhooks": _generic,
    "curl": _generic,
}
