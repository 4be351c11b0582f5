"""Each forge's webhook as it is sent: recognised, verified on the raw body, and parsed."""

import base64
import hashlib
import hmac
import json
from pathlib import Path
from urllib.parse import urlencode

import pytest

from publisher.service.senders import Push, Refusal, parse_request, recognise, standard_signature

DATA = Path(__file__).parent / "data" / "service"
SECRET = "s3cret-for-tests"
NOW = 1_800_000_000


def body_of(name: str) -> bytes:
    return (DATA / name).read_bytes()


def sha256_hex(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def github_headers(body: bytes, event: str = "push", secret: str = SECRET) -> dict:
    return {"X-GitHub-Event": event, "X-GitHub-Delivery": "d-1", "Content-Type": "application/json",
            "X-Hub-Signature-256": "sha256=" + sha256_hex(secret, body)}


def test_github_documented_test_vector():
    body = b"Hello, World!"
    headers = {"X-GitHub-Event": "push", "X-Hub-Signature-256":
               "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"}
    # The vector verifies (then the non-JSON body is a 400, not a 401).
    result = parse_request(headers, body, ["It's a Secret to Everybody"])
    assert result == Refusal(400, "body is not JSON")
    assert parse_request(headers, body, ["It's a secret to everybody"]).status == 401


def test_github_push_is_parsed_and_payload_url_ignored():
    body = body_of("github_push.json")
    push = parse_request(github_headers(body), body, [SECRET])
    assert push == Push("github", "d-1", "refs/heads/main", "2" * 40, "example/dns")
    assert push.branch == "main" and push.is_push and not push.deleted


def test_github_form_encoded_payload_verifies_on_raw_bytes():
    payload = body_of("github_push.json").decode()
    body = urlencode({"payload": payload}).encode()
    headers = github_headers(body) | {"Content-Type": "application/x-www-form-urlencoded"}
    push = parse_request(headers, body, [SECRET])
    assert isinstance(push, Push) and push.commit == "2" * 40
    # A re-serialised body (what a framework would hand over after parsing) does not verify.
    reserialised = json.dumps(json.loads(payload)).encode()
    assert parse_request(github_headers(body), reserialised, [SECRET]).status == 401


def test_github_legacy_sha1_signature():
    body = body_of("github_push.json")
    headers = {"X-GitHub-Event": "push", "X-Hub-Signature": "sha1=" + hmac.new(SECRET.encode(), body, hashlib.sha1).hexdigest()}
    assert isinstance(parse_request(headers, body, [SECRET]), Push)
    headers["X-Hub-Signature"] = "sha1=" + "0" * 40
    assert parse_request(headers, body, [SECRET]).status == 401


def test_github_ping_tag_and_deleted_branch():
    ping = json.dumps({"zen": "Keep it simple", "hook_id": 1, "repository": {"full_name": "example/dns"}}).encode()
    result = parse_request(github_headers(ping, "ping"), ping, [SECRET])
    assert result.is_ping and result.event == "ping" and not result.is_push

    tag = json.dumps({"ref": "refs/tags/v1", "after": "9" * 40, "repository": {"full_name": "example/dns"}}).encode()
    assert parse_request(github_headers(tag), tag, [SECRET]).is_tag

    gone = body_of("github_delete_push.json")
    deleted = parse_request(github_headers(gone), gone, [SECRET])
    assert deleted.deleted and deleted.commit is None and deleted.branch == "main"


def test_unsigned_or_badly_signed_requests_are_refused_only_when_a_secret_is_configured():
    body = body_of("github_push.json")
    unsigned = {"X-GitHub-Event": "push"}
    assert parse_request(unsigned, body, [SECRET]).status == 401
    assert isinstance(parse_request(unsigned, body, []), Push)
    tampered = body.replace(b"Add www", b"Add wwx")
    assert parse_request(github_headers(body), tampered, [SECRET]).status == 401


def test_secret_rotation_accepts_old_and_new():
    body = body_of("github_push.json")
    for secret in ("old-secret", "new-secret"):
        assert isinstance(parse_request(github_headers(body, secret=secret), body, ["old-secret", "new-secret"]), Push)
    assert parse_request(github_headers(body, secret="other"), body, ["old-secret", "new-secret"]).status == 401


def test_forgejo_is_recognised_before_gitea_and_github():
    body = body_of("github_push.json")
    signature = sha256_hex(SECRET, body)
    headers = {"X-Forgejo-Event": "push", "X-Gitea-Event": "push", "X-GitHub-Event": "push",
               "X-Forgejo-Delivery": "f-1", "X-Gitea-Delivery": "g-1", "X-GitHub-Delivery": "h-1",
               "X-Forgejo-Signature": signature, "X-Gitea-Signature": signature}
    assert recognise(headers) == "forgejo"
    push = parse_request(headers, body, [SECRET])
    assert push.sender == "forgejo" and push.delivery_id == "f-1"
    headers["X-Forgejo-Signature"] = "0" * 64  # the Forgejo header is the one checked
    assert parse_request(headers, body, [SECRET]).status == 401


def test_gitea_signature_form_body_and_separate_delete_event():
    payload = body_of("github_push.json").decode()
    body = urlencode({"payload": payload}).encode()
    headers = {"X-Gitea-Event": "push", "X-GitHub-Event": "push", "X-Gitea-Delivery": "g-2",
               "Content-Type": "application/x-www-form-urlencoded", "X-Gitea-Signature": sha256_hex(SECRET, body)}
    push = parse_request(headers, body, [SECRET])
    assert (push.sender, push.delivery_id, push.commit) == ("gitea", "g-2", "2" * 40)

    gone = body_of("gitea_delete.json")
    delete_headers = {"X-Gitea-Event": "delete", "X-Gitea-Delivery": "g-3", "X-Gitea-Signature": sha256_hex(SECRET, gone)}
    deleted = parse_request(delete_headers, gone, [SECRET])
    assert deleted.deleted and deleted.ref == "refs/heads/main" and deleted.repository == "example/dns"


def test_gogs_is_gitea_shaped():
    body = body_of("github_push.json")
    headers = {"X-Gogs-Event": "push", "X-Gogs-Delivery": "o-1", "X-Gogs-Signature": sha256_hex(SECRET, body)}
    push = parse_request(headers, body, [SECRET])
    assert (push.sender, push.delivery_id) == ("gogs", "o-1")


def test_gitlab_token_compared_and_fields_read():
    body = body_of("gitlab_push.json")
    headers = {"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": SECRET, "Idempotency-Key": "k-1"}
    push = parse_request(headers, body, [SECRET])
    assert push == Push("gitlab", "k-1", "refs/heads/main", "3" * 40, "infra/net/dns")
    assert parse_request(headers | {"X-Gitlab-Token": "wrong"}, body, [SECRET]).status == 401
    assert parse_request({"X-Gitlab-Event": "Push Hook"}, body, [SECRET]).status == 401


def test_gitlab_tag_system_hook_deletion_and_other_events():
    data = json.loads(body_of("gitlab_push.json"))
    tag = json.dumps(data | {"object_kind": "tag_push", "event_name": "tag_push", "ref": "refs/tags/v2"}).encode()
    assert parse_request({"X-Gitlab-Event": "Tag Push Hook", "X-Gitlab-Token": SECRET}, tag, [SECRET]).is_tag

    system = json.dumps(data | {"object_kind": None}).encode()
    assert parse_request({"X-Gitlab-Event": "System Hook", "X-Gitlab-Token": SECRET}, system, [SECRET]).is_push

    gone = json.dumps(data | {"after": "0" * 40, "checkout_sha": None}).encode()
    deleted = parse_request({"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": SECRET}, gone, [SECRET])
    assert deleted.deleted and deleted.commit is None

    issue = json.dumps({"object_kind": "issue", "project": data["project"]}).encode()
    other = parse_request({"X-Gitlab-Event": "Issue Hook", "X-Gitlab-Token": SECRET}, issue, [SECRET])
    assert not other.is_push and other.event == "Issue Hook"


def test_gitlab_signing_standard_webhooks_style():
    body = body_of("gitlab_push.json")
    secret = "whsec_" + base64.b64encode(b"gitlab-signing-key-0123456789ab").decode()
    headers = {"X-Gitlab-Event": "Push Hook", "webhook-id": "msg_1", "webhook-timestamp": str(NOW),
               "webhook-signature": standard_signature(secret, "msg_1", str(NOW), body)}
    assert parse_request(headers, body, [secret], now=NOW).commit == "3" * 40
    headers["webhook-signature"] = "v1," + base64.b64encode(b"\0" * 32).decode()
    assert parse_request(headers, body, [secret], now=NOW).status == 401


def test_bitbucket_cloud_picks_the_deploy_branch_change():
    body = body_of("bitbucket_cloud_push.json")
    headers = {"X-Event-Key": "repo:push", "X-Request-UUID": "u-1", "X-Hub-Signature": "sha256=" + sha256_hex(SECRET, body)}
    assert recognise(headers) == "bitbucket-cloud"
    push = parse_request(headers, body, [SECRET], branch="main")
    assert push == Push("bitbucket-cloud", "u-1", "refs/heads/main", "4" * 40, "example/dns")
    first = parse_request(headers, body, [SECRET])
    assert first.ref == "refs/heads/feature"
    headers["X-Hub-Signature"] = "sha256=" + "1" * 64
    assert parse_request(headers, body, [SECRET]).status == 401


def test_bitbucket_cloud_deletion_and_ping():
    gone = body_of("bitbucket_cloud_delete.json")
    headers = {"X-Event-Key": "repo:push", "X-Request-UUID": "u-2", "X-Hub-Signature": "sha256=" + sha256_hex(SECRET, gone)}
    deleted = parse_request(headers, gone, [SECRET], branch="main")
    assert deleted.deleted and deleted.ref == "refs/heads/main" and deleted.commit is None
    ping = b"{}"
    ping_headers = {"X-Event-Key": "diagnostics:ping", "X-Request-UUID": "u-3", "X-Hub-Signature": "sha256=" + sha256_hex(SECRET, ping)}
    assert parse_request(ping_headers, ping, [SECRET]).is_ping


def test_bitbucket_data_center_push_and_delete():
    body = body_of("bitbucket_dc_refs_changed.json")
    headers = {"X-Event-Key": "repo:refs_changed", "X-Request-Id": "r-1", "X-Hub-Signature": "sha256=" + sha256_hex(SECRET, body)}
    assert recognise(headers) == "bitbucket-datacenter"
    push = parse_request(headers, body, [SECRET], branch="main")
    assert push == Push("bitbucket-datacenter", "r-1", "refs/heads/main", "5" * 40, "NET/dns")
    gone = body_of("bitbucket_dc_delete.json")
    headers = {"X-Event-Key": "repo:refs_changed", "X-Request-Id": "r-2", "X-Hub-Signature": "sha256=" + sha256_hex(SECRET, gone)}
    assert parse_request(headers, gone, [SECRET]).deleted
    ping = {"X-Event-Key": "diagnostics:ping", "X-Request-Id": "r-3"}
    assert recognise(ping) == "bitbucket-datacenter"
    assert parse_request(ping, b"{}", []).is_ping


def standard_headers(secret: str, body: bytes, message_id: str = "msg_2", timestamp: int = NOW) -> dict:
    return {"webhook-id": message_id, "webhook-timestamp": str(timestamp),
            "webhook-signature": standard_signature(secret, message_id, str(timestamp), body)}


def test_standard_webhooks_whsec_secret_is_base64_decoded():
    key = b"0123456789abcdef0123456789abcdef"
    secret = "whsec_" + base64.b64encode(key).decode()
    body = json.dumps({"type": "push", "ref": "refs/heads/main", "after": "6" * 40}).encode()
    headers = standard_headers(secret, body)
    expected = "v1," + base64.b64encode(hmac.new(key, b"msg_2.%d." % NOW + body, hashlib.sha256).digest()).decode()
    assert headers["webhook-signature"] == expected
    push = parse_request(headers, body, [secret], now=NOW)
    assert (push.sender, push.delivery_id, push.commit) == ("standard-webhooks", "msg_2", "6" * 40)


def test_standard_webhooks_rotation_several_signatures_in_one_header():
    old = "whsec_" + base64.b64encode(b"old-key-old-key-old-key-old-key!").decode()
    new = "whsec_" + base64.b64encode(b"new-key-new-key-new-key-new-key!").decode()
    body = b'{"ref": "refs/heads/main"}'
    both = standard_headers(old, body)["webhook-signature"] + " " + standard_headers(new, body)["webhook-signature"]
    headers = standard_headers(new, body) | {"webhook-signature": both}
    assert isinstance(parse_request(headers, body, [new], now=NOW), Push)
    assert isinstance(parse_request(headers, body, [old], now=NOW), Push)
    other = "whsec_" + base64.b64encode(b"x" * 32).decode()
    assert parse_request(headers, body, [other], now=NOW).status == 401


@pytest.mark.parametrize("offset,accepted", [(0, True), (299, True), (-299, True), (301, False), (-301, False)])
def test_standard_webhooks_five_minute_timestamp_window(offset, accepted):
    secret = "whsec_" + base64.b64encode(b"k" * 32).decode()
    body = b"{}"
    headers = standard_headers(secret, body, timestamp=NOW + offset)
    result = parse_request(headers, body, [secret], now=NOW)
    assert isinstance(result, Push) is accepted
    if not accepted:
        assert "5 minutes" in result.reason


def test_plain_curl_relies_on_the_token_unless_a_secret_is_set():
    push = parse_request({}, b"", [])
    assert push == Push("curl", None, None, None, None)
    assert push.is_push
    assert parse_request({}, b"", [SECRET]).status == 401
    signed = {"X-Hub-Signature-256": "sha256=" + sha256_hex(SECRET, b"")}
    assert parse_request(signed, b"", [SECRET]).sender == "curl"


def test_malformed_payloads_are_400_never_exceptions():
    assert parse_request({"X-GitHub-Event": "push"}, b"{not json", []).status == 400
    assert parse_request({"X-GitHub-Event": "push"}, b'{"after": "1"}', []).status == 400
    assert parse_request({"X-Event-Key": "repo:push"}, b'{"push": {"changes": []}}', []).status == 400
    assert parse_request({"X-GitHub-Event": "push"}, b"[1, 2]", []).status == 400


def test_refusal_reasons_never_contain_the_secret():
    body = body_of("github_push.json")
    for headers in ({"X-GitHub-Event": "push"}, github_headers(body, secret="nope"),
                    {"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": "guess"}):
        result = parse_request(headers, body, [SECRET])
        assert isinstance(result, Refusal) and SECRET not in result.reason


@pytest.mark.parametrize("headers", [
    {"X-GitHub-Event": "push", "X-Hub-Signature-256": "sha256=\x80"},
    {"X-Gitea-Event": "push", "X-Gitea-Signature": "é" * 64},
    {"X-Event-Key": "repo:push", "X-Hub-Signature": "sha256=ÿ"},
    {"X-GitHub-Event": "push", "X-Hub-Signature": "sha1=\xa0"},
])
def test_a_non_ascii_signature_is_a_401_not_an_exception(headers):
    # Found by tests/test_webhooks.py: hmac.compare_digest raises TypeError on non-ASCII str.
    assert parse_request(headers, b"{}", [SECRET]) == Refusal(401, f"{recognise(headers)} signature does not match")


def test_hostile_payload_facts_are_refused_with_a_reason():
    for payload, reason in (({"ref": "refs/heads/main", "after": {}}, "40 or 64 hex"),
                            ({"ref": "refs/heads/main", "after": "z" * 40}, "40 or 64 hex"),
                            ({"ref": "r" * 256, "after": "2" * 40}, "ref must be a string")):
        body = json.dumps(payload).encode()
        result = parse_request(github_headers(body), body, [SECRET])
        assert isinstance(result, Refusal) and result.status == 400 and reason in result.reason
    deep = b"[" * 100_000 + b"]" * 100_000
    assert parse_request(github_headers(deep), deep, [SECRET]) == Refusal(400, "body is nested too deeply")


def test_signed_key_is_the_same_for_the_same_signed_content_whatever_the_delivery_id():
    body = body_of("github_push.json")
    first = parse_request(github_headers(body), body, [SECRET])
    again = parse_request(github_headers(body) | {"X-GitHub-Delivery": "d-2"}, body, [SECRET])
    other = parse_request(github_headers(body + b" "), body + b" ", [SECRET])
    assert first.signed_key == again.signed_key != other.signed_key
    assert parse_request(github_headers(body), body, []).signed_key is None  # nothing was signed
