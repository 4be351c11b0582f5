"""Property-based tests of the webhook endpoint (hypothesis): whatever the headers, body, signature
and token, the answer is never a 5xx, and nothing is queued without a valid token and signature."""

from __future__ import annotations

import hashlib
import hmac
import json
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from urllib.parse import quote, urlencode

from hypothesis import HealthCheck, given, settings, strategies as st

from publisher.config import Config, SourceConfig, StateConfig, WebhookConfig
from publisher.service.senders import standard_signature
from publisher.service.tokens import hash_token
from publisher.service.web import create_app

TOKEN = "property-test-token-0123456789abcdef"
SECRET = "property-test-secret"
SETTINGS = settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])

HEADER_NAMES = ["X-GitHub-Event", "X-GitHub-Delivery", "X-Gitea-Event", "X-Gitea-Delivery", "X-Gitea-Signature",
                "X-Forgejo-Event", "X-Forgejo-Signature", "X-Gogs-Event", "X-Gogs-Signature", "X-Gitlab-Event",
                "X-Gitlab-Token", "Idempotency-Key", "X-Event-Key", "X-Request-UUID", "X-Request-Id",
                "X-Hub-Signature", "X-Hub-Signature-256", "webhook-id", "webhook-timestamp", "webhook-signature",
                "Content-Type", "X-Forwarded-For", "Authorization"]
EVENTS = ["push", "ping", "delete", "Push Hook", "Tag Push Hook", "System Hook", "repo:push", "repo:refs_changed",
          "diagnostics:ping", "issues"]
PAYLOAD_KEYS = ["ref", "after", "before", "deleted", "created", "repository", "full_name", "project",
                "path_with_namespace", "push", "changes", "new", "old", "target", "hash", "name", "type", "refId",
                "toHash", "checkout_sha", "object_kind", "event_name", "data", "commit", "ref_type", "slug", "key",
                "closed", "payload"]

header_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF, blacklist_characters="\x7f"),
                      max_size=80)
header_values = st.one_of(header_text, st.sampled_from(EVENTS), st.sampled_from(
    ["application/json", "application/x-www-form-urlencoded", "text/plain", "sha256=", "sha1=", "v1,"]))
headers = st.dictionaries(st.sampled_from(HEADER_NAMES), header_values, max_size=8)
scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=50),
                    st.sampled_from(["refs/heads/main", "refs/tags/v1", "main", "0" * 40, "2" * 40, "ab" * 32,
                                     "example/dns", "branch", "tag", "DELETE", "push", "tag_push"]))
json_values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.sampled_from(PAYLOAD_KEYS), inner, max_size=6)), max_leaves=25)
payload_bodies = json_values.map(lambda value: json.dumps(value).encode())
bodies = st.one_of(payload_bodies, st.binary(max_size=300),
                   payload_bodies.map(lambda body: urlencode({"payload": body.decode()}).encode()),
                   st.integers(1, 3000).map(lambda depth: b"[" * depth + b"]" * depth))


def make_app(secret: str | None = SECRET):
    state = Path(tempfile.mkdtemp(prefix="webhook-properties-")) / "state.db"
    config = replace(Config(), source=SourceConfig(url="https://git.example.org/example/dns.git", branch="main"),
                     state=StateConfig(state),
                     webhook=WebhookConfig(tokens=(hash_token(TOKEN),), secret=secret, max_body=64 * 1024))
    return create_app(config, {"TESTING": True, "AUTH_FAILURE_LIMIT": 5})


APP = make_app()
UNSIGNED_APP = make_app(secret=None)


def job_count(app) -> int:
    return sum(app.extensions["publisher"].queue.counts().values())


def sign(sender: str, body: bytes, secret: str = SECRET) -> dict:
    """Headers that authenticate ``body`` the way ``sender`` signs."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    if sender == "github":
        return {"X-GitHub-Event": "push", "X-Hub-Signature-256": "sha256=" + digest}
    if sender == "gitea":
        return {"X-Gitea-Event": "push", "X-Gitea-Signature": digest}
    if sender == "forgejo":
        return {"X-Forgejo-Event": "push", "X-Forgejo-Signature": digest}
    if sender == "gitlab":
        return {"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": secret}
    if sender == "bitbucket":
        return {"X-Event-Key": "repo:push", "X-Hub-Signature": "sha256=" + digest}
    timestamp = str(int(time.time()))
    return {"webhook-id": "msg-" + digest[:8], "webhook-timestamp": timestamp,
            "webhook-signature": standard_signature(secret, "msg-" + digest[:8], timestamp, body)}


SENDERS = st.sampled_from(["github", "gitea", "forgejo", "gitlab", "bitbucket", "standard-webhooks"])
PATHS = st.sampled_from(["/notifications/{}/push", "/hooks/{}"])


def post(app, path: str, body: bytes, request_headers: dict, address: str = "127.0.0.1"):
    return app.test_client().post(path, data=body, headers=request_headers, environ_base={"REMOTE_ADDR": address})


@SETTINGS
@given(path=PATHS, token=st.text(min_size=1, max_size=60), request_headers=headers, body=bodies, sender=SENDERS,
       signed=st.booleans())
def test_a_wrong_token_never_queues_and_never_5xx(path, token, request_headers, body, sender, signed):
    if token == TOKEN:
        return
    if signed:  # even with a valid signature: the token is the first key
        request_headers = {**request_headers, **sign(sender, body)}
    before = job_count(APP)
    response = post(APP, path.format(quote(token, safe="")), body, request_headers)
    # 403/429, or 404/405/308 for a token that is not one path segment ("a/b", "a//b").
    assert response.status_code in (308, 403, 404, 405, 429), response.status_code
    assert job_count(APP) == before


@SETTINGS
@given(path=PATHS, request_headers=headers, body=bodies)
def test_the_right_token_with_random_headers_and_signatures_never_5xx_and_queues_only_when_signed(
        path, request_headers, body):
    before = job_count(APP)
    response = post(APP, path.format(TOKEN), body, request_headers)
    assert response.status_code < 500
    # Random signature headers do not verify (the secret is not in the strategies' alphabet of words).
    assert response.status_code in (401, 413), (response.status_code, response.json)
    assert job_count(APP) == before


@SETTINGS
@given(path=PATHS, request_headers=headers, body=bodies, sender=SENDERS,
       tamper=st.sampled_from(["none", "body", "secret"]), address=st.sampled_from(["127.0.0.1", "192.0.2.1"]))
def test_valid_signatures_on_random_payloads_never_5xx_and_only_202_queues(path, request_headers, body, sender,
                                                                            tamper, address):
    signature = sign(sender, body, secret="not-" + SECRET if tamper == "secret" else SECRET)
    sent = body + b" " if tamper == "body" else body
    request_headers = {key: value for key, value in request_headers.items()
                       if not key.lower().endswith(("signature", "signature-256", "-token", "-event", "event-key"))
                       and not key.lower().startswith("webhook-")}
    before = job_count(APP)
    response = post(APP, path.format(TOKEN), sent, {**request_headers, **signature}, address)
    assert response.status_code < 500, response.get_data(as_text=True)
    after = job_count(APP)
    if tamper != "none" and not (sender == "gitlab" and tamper == "body"):  # GitLab's token signs no body
        assert response.status_code == 401 and after == before
    elif response.status_code == 202:
        assert after - before <= 1  # a new job, or merged into the waiting one
    else:
        assert after == before and response.status_code in (200, 400, 403), response.status_code


@SETTINGS
@given(request_headers=headers, body=bodies, token=st.one_of(st.just(TOKEN), st.text(min_size=1, max_size=40)))
def test_without_a_secret_only_the_token_queues(request_headers, body, token):
    before = job_count(UNSIGNED_APP)
    response = post(UNSIGNED_APP, f"/hooks/{quote(token, safe='')}", body, request_headers)
    assert response.status_code < 500, response.get_data(as_text=True)
    if token != TOKEN:
        assert response.status_code in (308, 403, 404, 405, 429) and job_count(UNSIGNED_APP) == before
    elif response.status_code != 202:
        assert job_count(UNSIGNED_APP) == before
