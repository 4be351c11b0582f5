"""The web app through Flask's test client: webhook responses, nothing queued on refusal, the status
page, the API and the metrics."""

import hashlib
import hmac
import json
import logging
from dataclasses import replace
from pathlib import Path

import pytest

from publisher.config import Config, SourceConfig, StateConfig, WebConfig, WebhookConfig
from publisher.service.jobs import QUEUED
from publisher.model import Change, Finding
from publisher.outcome import APPLIED, OK, PROBLEMS, ZoneOutcome
from publisher.service.runs import RunRecord
from publisher.service.tokens import generate_token, hash_token
from publisher.service.web import create_app, redact
from publisher.service.web.webhooks import repository_matches, repository_path

DATA = Path(__file__).parent / "data" / "service"
SECRET = "webhook-secret-for-tests"
TOKEN = generate_token()


def make_config(tmp_path, *, secret=SECRET, url="https://git.example.org/example/dns.git") -> Config:
    return replace(Config(), source=SourceConfig(url=url, branch="main"),
                   state=StateConfig(tmp_path / "state.db"),
                   webhook=WebhookConfig(tokens=(hash_token("old-token"), hash_token(TOKEN)), secret=secret,
                                         max_body=64 * 1024))


@pytest.fixture
def app(tmp_path):
    return create_app(make_config(tmp_path), {"TESTING": True, "AUTH_FAILURE_LIMIT": 5})


@pytest.fixture
def client(app):
    return app.test_client()


def queued(app):
    return app.extensions["publisher"].queue.jobs()


def github(body: bytes, event="push", delivery="d-1", secret=SECRET) -> dict:
    return {"X-GitHub-Event": event, "X-GitHub-Delivery": delivery, "Content-Type": "application/json",
            "X-Hub-Signature-256": "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()}


def push_body(ref="refs/heads/main", after="2" * 40, repository="example/dns", **extra) -> bytes:
    return json.dumps({"ref": ref, "after": after, "repository": {"full_name": repository}, **extra}).encode()


def test_signed_push_is_accepted_with_a_job_id(app, client):
    body = push_body()
    response = client.post(f"/notifications/{TOKEN}/push", data=body, headers=github(body))
    assert response.status_code == 202
    job_id = response.json["job"]
    [job] = queued(app)
    assert (job.id, job.state, job.commit, job.sender) == (job_id, QUEUED, "2" * 40, "github")
    assert client.get(f"/api/jobs/{job_id}").json["state"] == QUEUED


def test_form_encoded_push_is_verified_on_the_raw_body(app, client):
    from urllib.parse import urlencode

    body = urlencode({"payload": push_body().decode()}).encode()
    headers = github(body) | {"Content-Type": "application/x-www-form-urlencoded"}
    assert client.post(f"/hooks/{TOKEN}", data=body, headers=headers).status_code == 202
    assert queued(app)[0].commit == "2" * 40


def test_hooks_alias_and_rotated_token(client):
    body = push_body()
    assert client.post("/hooks/old-token", data=body, headers=github(body)).status_code == 202


@pytest.mark.parametrize("path", [f"/notifications/not-{TOKEN}/push", "/hooks/x", f"/notifications/{TOKEN[:-1]}/push"])
def test_wrong_token_is_refused_and_nothing_queued(app, client, path):
    body = push_body()
    response = client.post(path, data=body, headers=github(body))
    assert response.status_code == 403
    assert queued(app) == []


def test_bad_or_missing_signature_is_refused_and_nothing_queued(app, client):
    body = push_body()
    assert client.post(f"/hooks/{TOKEN}", data=body, headers=github(body, secret="wrong")).status_code == 401
    assert client.post(f"/hooks/{TOKEN}", data=body, headers={"X-GitHub-Event": "push"}).status_code == 401
    assert client.post(f"/hooks/{TOKEN}", data=b"", headers={}).status_code == 401  # plain curl, secret set
    assert queued(app) == []


def test_oversized_body_is_413_and_nothing_queued(app, client):
    body = push_body(padding="x" * 70 * 1024)
    response = client.post(f"/hooks/{TOKEN}", data=body, headers=github(body))
    assert response.status_code == 413
    assert queued(app) == []


def test_client_that_keeps_failing_gets_429_but_a_valid_push_from_it_is_served(app, client):
    body = push_body()
    for _ in range(4):
        assert client.post("/hooks/guess", data=body, headers=github(body)).status_code == 403
    assert client.post("/hooks/guess", data=body, headers=github(body)).status_code == 429
    assert client.post("/hooks/guess", data=body, headers=github(body)).status_code == 429
    # The right token from that client is not refused: authenticating is checked first.
    assert client.post(f"/hooks/{TOKEN}", data=body, headers=github(body)).status_code == 202
    assert len(queued(app)) == 1


@pytest.mark.parametrize("body,event,reason", [
    (push_body(ref="refs/heads/feature"), "push", "not the deploy branch"),
    (push_body(ref="refs/tags/v1.0"), "push", "tags are not published"),
    (json.dumps({"action": "opened", "repository": {"full_name": "example/dns"}}).encode(), "issues", "is not a push"),
])
def test_nothing_to_do_is_200_and_nothing_queued(app, client, body, event, reason):
    response = client.post(f"/hooks/{TOKEN}", data=body, headers=github(body, event=event))
    assert response.status_code == 200
    assert reason in response.json["reason"]
    assert queued(app) == []


def test_ping_is_200(client):
    body = json.dumps({"zen": "Design for failure.", "repository": {"full_name": "example/dns"}}).encode()
    response = client.post(f"/hooks/{TOKEN}", data=body, headers=github(body, event="ping"))
    assert response.status_code == 200 and response.json["status"] == "pong"


def test_repository_not_matching_configuration_is_rejected(app, client):
    body = push_body(repository="attacker/dns")
    response = client.post(f"/hooks/{TOKEN}", data=body, headers=github(body))
    assert response.status_code == 403
    assert queued(app) == []


def test_deleted_deploy_branch_is_queued_as_a_report(app, client):
    body = (DATA / "github_delete_push.json").read_bytes()
    response = client.post(f"/hooks/{TOKEN}", data=body, headers=github(body))
    assert response.status_code == 202
    [job] = queued(app)
    assert job.kind == "branch-deleted" and job.commit is None


def test_redelivery_is_acknowledged_not_queued_again(app, client):
    body = push_body()
    first = client.post(f"/hooks/{TOKEN}", data=body, headers=github(body, delivery="same"))
    again = client.post(f"/hooks/{TOKEN}", data=body, headers=github(body, delivery="same"))
    assert first.status_code == 202 and again.status_code == 200
    assert again.json == {"status": "duplicate", "job": first.json["job"], "reason": "delivery seen before"}
    assert len(queued(app)) == 1


def test_a_burst_of_pushes_waits_as_one_job(app, client):
    for number in range(50):
        body = push_body(after=f"{number + 1:040x}")
        assert client.post(f"/hooks/{TOKEN}", data=body, headers=github(body, delivery=f"b{number}")).status_code == 202
    [job] = queued(app)
    assert job.deliveries == 50 and job.commit == f"{50:040x}"


def test_bitbucket_data_center_project_slug_matches_the_url(tmp_path):
    app = create_app(make_config(tmp_path, url="ssh://git@bitbucket.example.org:7999/net/dns.git"), {"TESTING": True})
    body = (DATA / "bitbucket_dc_refs_changed.json").read_bytes()
    headers = {"X-Event-Key": "repo:refs_changed", "X-Request-Id": "r-1",
               "X-Hub-Signature": "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()}
    assert app.test_client().post(f"/hooks/{TOKEN}", data=body, headers=headers).status_code == 202


def test_plain_curl_without_secret_needs_only_the_token(tmp_path):
    app = create_app(make_config(tmp_path, secret=None), {"TESTING": True})
    response = app.test_client().post(f"/notifications/{TOKEN}/push")
    assert response.status_code == 202
    assert queued(app)[0].sender == "curl"


def test_get_on_the_webhook_is_405_not_5xx(client):
    assert client.get(f"/hooks/{TOKEN}").status_code == 405


def test_token_never_appears_in_logs(app, client, caplog):
    caplog.set_level(logging.DEBUG)
    body = push_body()
    client.post(f"/hooks/{TOKEN}", data=body, headers=github(body))
    client.post(f"/hooks/{TOKEN}", data=body, headers=github(body, secret="bad"))
    client.post(f"/hooks/{TOKEN}x", data=body, headers=github(body))
    assert caplog.records
    assert TOKEN not in caplog.text and SECRET not in caplog.text
    assert redact(f"POST /notifications/{TOKEN}/push HTTP/1.1") == "POST /notifications/[redacted]/push HTTP/1.1"
    assert redact(f"/hooks/{TOKEN}?x=1") == "/hooks/[redacted]?[redacted]"


@pytest.mark.parametrize("url,path", [
    ("https://github.com/Example/DNS.git", "example/dns"),
    ("git@gitlab.example.org:infra/net/dns.git", "infra/net/dns"),
    ("ssh://git@bitbucket.example.org:7999/net/dns.git", "net/dns"),
])
def test_repository_path_from_url(url, path):
    assert repository_path(url) == path
    assert repository_matches(path.split("/", 1)[-1], url)
    assert not repository_matches("someone/else", url)


def record_run(app) -> int:
    finding = Finding("error", "cname-and-other-data", "example.com.", "example.com.lua", 12, "www has CNAME and A")
    run = RunRecord("example/dns", "push", PROBLEMS, 1_700_000_000.0, 1_700_000_001.25, commit="c" * 40,
                    sender="github", author_name="Alice", author_email="alice@example.org", subject="Break it",
                    zones=(ZoneOutcome("example.com.", "primary", "kept-last-good", (), (finding,)),
                           ZoneOutcome("example.net.", "primary", "applied",
                                       (Change("create", "www.example.net.", "A", 300, (), ("192.0.2.7",)),))))
    return app.extensions["publisher"].runs.record(run)


def test_status_page_lists_runs_and_zone_states(app, client):
    assert b"No runs yet" in client.get("/").data
    run_id = record_run(app)
    page = client.get("/").get_data(as_text=True)
    assert f'data-run="{run_id}"' in page and "Break it" in page
    assert 'data-zone="example.com."' in page and "kept-last-good" in page
    detail = client.get(f"/runs/{run_id}").get_data(as_text=True)
    assert "example.com.lua:12" in detail and "www has CNAME and A" in detail and "192.0.2.7" in detail
    assert client.get("/runs/9999").status_code == 404
    assert client.get("/static/style.css").status_code == 200


def test_api_runs_and_health(app, client):
    run_id = record_run(app)
    runs = client.get("/api/runs").json["runs"]
    assert [r["id"] for r in runs] == [run_id]
    detail = client.get(f"/api/runs/{run_id}").json
    assert detail["zones"][0]["findings"][0]["line"] == 12
    assert detail["author"] == {"name": "Alice", "email": "alice@example.org"}
    assert client.get("/api/runs/12345").status_code == 404
    health = client.get("/healthz")
    assert health.status_code == 200 and health.json["status"] == "ok"


def test_metrics_expose_requests_queue_and_zones(app, client):
    record_run(app)
    body = push_body()
    client.post(f"/hooks/{TOKEN}", data=body, headers=github(body))
    text = client.get("/metrics").get_data(as_text=True)
    assert 'publisher_webhook_requests_total{outcome="queued"}' in text
    # One repository: every series is labelled with its key (the source's URL, without credentials, and branch).
    repository = 'repository="https://git.example.org/example/dns.git#main"'
    assert f'publisher_jobs{{{repository},state="queued"}} 1.0' in text
    assert f'publisher_runs{{{repository},status="problems"}} 1.0' in text
    assert f'publisher_last_run_finished_timestamp_seconds{{{repository}}} 1.70000000125e+09' in text
    assert f'publisher_zone_ok{{provider="primary",{repository},status="kept-last-good",zone="example.com."}} 0.0' \
        in text
    assert "publisher_outbox_pending 0.0" in text


# -- hostile requests (issue 8) ---------------------------------------------------------------------

def post_signed(client, body: bytes, **kwargs):
    return client.post(f"/notifications/{TOKEN}/push", data=body, headers=github(body, **kwargs))


@pytest.mark.parametrize("body,reason", [
    (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    (b'{"ref": "refs/heads/main", "after": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "nested too deeply"),
    (push_body(after={}), "40 or 64 hex"),
    (push_body(after=["2" * 40]), "40 or 64 hex"),
    (push_body(after="a" * 900_000), "40 or 64 hex"),
    (push_body(after="g" * 40), "40 or 64 hex"),
    (push_body(after="2" * 41), "40 or 64 hex"),
    (push_body(ref={"name": "main"}), "expected shape"),
    (push_body(ref="refs/heads/" + "m" * 300), "ref must be a string"),
    (push_body(repository=["example/dns"]), "repository name"),
], ids=["nested-100000", "after-nested", "after-object", "after-list", "after-900KB", "after-not-hex",
        "after-41-digits", "ref-object", "ref-300-chars", "repository-list"])
def test_signed_hostile_payloads_are_400_with_a_reason_and_nothing_queued(tmp_path, body, reason):
    config = replace(make_config(tmp_path), webhook=replace(make_config(tmp_path).webhook, max_body=4 * 1024 * 1024))
    app = create_app(config, {"TESTING": True})
    response = post_signed(app.test_client(), body)
    assert response.status_code == 400 and reason in response.json["reason"]
    assert queued(app) == []


def test_a_64_hex_commit_id_is_accepted_and_stored_in_lower_case(app, client):
    response = post_signed(client, push_body(after="AB" * 32))
    assert response.status_code == 202 and queued(app)[0].commit == "ab" * 32


@pytest.mark.parametrize("path", ["/api/runs/99999999999999999999", "/api/jobs/99999999999999999999",
                                  "/runs/99999999999999999999", "/api/runs/9223372036854775808"])
def test_ids_too_big_for_the_database_are_404(client, path):
    assert client.get(path).status_code == 404


def test_api_runs_limit_that_is_not_a_number_is_not_a_5xx(app, client):
    record_run(app)
    assert len(client.get("/api/runs?limit=99999999999999999999999").json["runs"]) == 1
    assert len(client.get("/api/runs?limit=-3").json["runs"]) == 1


def test_same_signed_body_under_a_new_delivery_id_is_not_run_again(app, client):
    body = push_body()
    first = post_signed(client, body, delivery="d-original")
    replayed = post_signed(client, body, delivery="d-replayed")
    assert first.status_code == 202
    assert replayed.status_code == 200 and replayed.json["status"] == "duplicate"
    # Nor under another sender's headers carrying the same HMAC (Gitea's bare hex signature).
    as_gitea = {"X-Gitea-Event": "push", "X-Gitea-Delivery": "g-1", "Content-Type": "application/json",
                "X-Gitea-Signature": hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()}
    assert client.post(f"/hooks/{TOKEN}", data=body, headers=as_gitea).json["status"] == "duplicate"
    [job] = queued(app)
    assert job.deliveries == 1
    # A new push (another body) is queued as usual.
    assert post_signed(client, push_body(after="3" * 40), delivery="d-next").status_code == 202


def test_standard_webhooks_retry_with_a_new_timestamp_is_a_duplicate(app, client):
    import time as clock

    from publisher.service.senders import standard_signature

    body = push_body()
    answers = []
    for offset in (0, 30):
        timestamp = str(int(clock.time()) - offset)
        headers = {"webhook-id": "msg-1", "webhook-timestamp": timestamp, "Content-Type": "application/json",
                   "webhook-signature": standard_signature(SECRET, "msg-1", timestamp, body)}
        answers.append(client.post(f"/hooks/{TOKEN}", data=body, headers=headers).json["status"])
    assert answers == ["queued", "duplicate"]


# The forges' own deliveries, each signed as its sender signs, against a source that is a path.
FORGE_DELIVERIES = [
    ("github_push.json", {"X-GitHub-Event": "push", "X-GitHub-Delivery": "g-1"}, "X-Hub-Signature-256", "sha256=", 202),
    ("github_delete_push.json", {"X-GitHub-Event": "push", "X-GitHub-Delivery": "g-2"}, "X-Hub-Signature-256", "sha256=", 202),
    ("gitea_delete.json", {"X-Gitea-Event": "delete", "X-Gitea-Delivery": "t-1"}, "X-Gitea-Signature", "", 202),
    ("gitlab_push.json", {"X-Gitlab-Event": "Push Hook", "Idempotency-Key": "l-1"}, "X-Gitlab-Token", None, 202),
    ("bitbucket_cloud_push.json", {"X-Event-Key": "repo:push", "X-Request-UUID": "c-1"}, "X-Hub-Signature", "sha256=", 202),
    ("bitbucket_cloud_delete.json", {"X-Event-Key": "repo:push", "X-Request-UUID": "c-2"}, "X-Hub-Signature", "sha256=", 202),
    ("bitbucket_dc_refs_changed.json", {"X-Event-Key": "repo:refs_changed", "X-Request-Id": "r-1"}, "X-Hub-Signature", "sha256=", 202),
    ("bitbucket_dc_delete.json", {"X-Event-Key": "repo:refs_changed", "X-Request-Id": "r-2"}, "X-Hub-Signature", "sha256=", 202),
]


def signed_delivery(name, headers, signature_header, prefix) -> tuple[bytes, dict]:
    body = (DATA / name).read_bytes()
    signature = SECRET if prefix is None else prefix + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    return body, {**headers, "Content-Type": "application/json", signature_header: signature}


@pytest.mark.parametrize("url", ["file:///srv/git/zones.git", "/srv/mirrors/dns.git", "../zones-mirror"])
@pytest.mark.parametrize("name,headers,signature_header,prefix,status", FORGE_DELIVERIES)
def test_forge_deliveries_are_accepted_when_the_source_is_a_path(tmp_path, url, name, headers, signature_header,
                                                                 prefix, status):
    app = create_app(make_config(tmp_path, url=url), {"TESTING": True})
    body, headers = signed_delivery(name, headers, signature_header, prefix)
    response = app.test_client().post(f"/hooks/{TOKEN}", data=body, headers=headers)
    assert response.status_code == status, response.json
    assert len(queued(app)) == 1


def test_webhook_repository_names_the_expected_repository_of_a_mirror(tmp_path):
    config = make_config(tmp_path, url="https://mirror.example.net/git/zones-mirror.git")
    config = replace(config, webhook=replace(config.webhook, repository="example/dns"))
    app = create_app(config, {"TESTING": True})
    client = app.test_client()
    body, headers = signed_delivery(*FORGE_DELIVERIES[0][:4])  # GitHub, example/dns
    assert client.post(f"/hooks/{TOKEN}", data=body, headers=headers).status_code == 202
    body, headers = signed_delivery(*FORGE_DELIVERIES[3][:4])  # GitLab, infra/net/dns
    refused = client.post(f"/hooks/{TOKEN}", data=body, headers=headers)
    assert refused.status_code == 403
    assert refused.json["reason"] == ("repository does not match the configured source: expected 'example/dns'"
                                      " ([webhook] repository), the push names 'infra/net/dns'")
    assert len(queued(app)) == 1


def test_refusal_of_another_repository_says_what_was_expected(app, client):
    response = post_signed(client, push_body(repository="attacker/dns"))
    assert response.status_code == 403
    assert response.json["reason"] == ("repository does not match the configured source: expected 'example/dns',"
                                       " the push names 'attacker/dns'")


def test_sixty_bad_tokens_then_a_valid_signed_push_is_accepted(tmp_path):
    app = create_app(make_config(tmp_path), {"TESTING": True})  # the production limit: 20 in 60 s
    client = app.test_client()
    body = push_body()
    statuses = [client.post("/hooks/guess", data=body, headers=github(body)).status_code for _ in range(60)]
    assert statuses[:19] == [403] * 19 and set(statuses[19:]) == {429}
    assert post_signed(client, body).status_code == 202
    # A valid token with a bad signature does not authenticate: still refused.
    assert client.post(f"/hooks/{TOKEN}", data=body, headers=github(body, secret="wrong")).status_code == 401


def proxied_app(tmp_path, trusted=("10.0.0.0/8",), **web):
    config = replace(make_config(tmp_path), web=WebConfig(trusted_proxies=trusted, **web))
    return create_app(config, {"TESTING": True, "AUTH_FAILURE_LIMIT": 3})


def test_forwarded_address_is_believed_only_from_a_trusted_proxy(tmp_path):
    app = proxied_app(tmp_path)
    client = app.test_client()
    body = push_body()

    def bad(peer, forwarded):
        return client.post("/hooks/guess", data=body, headers=github(body) | {"X-Forwarded-For": forwarded},
                           environ_base={"REMOTE_ADDR": peer}).status_code

    # Through the proxy: each client is counted on its own address.
    assert [bad("10.1.1.1", "198.51.100.1") for _ in range(3)] == [403, 403, 429]
    assert bad("10.1.1.1", "198.51.100.2") == 403
    # An untrusted peer cannot choose its address by sending the header: it is counted as itself.
    assert [bad("203.0.113.5", f"198.51.100.{n}") for n in range(10, 13)] == [403, 403, 429]
    limiter = app.extensions["publisher"].limiter
    assert limiter.blocked("203.0.113.5") and not limiter.blocked("198.51.100.11")


def test_client_address_skips_trusted_hops_and_garbage():
    from publisher.service.web.access import ClientAddresses

    clients = ClientAddresses(["10.0.0.0/8", "::1/128"])
    assert clients.client({"REMOTE_ADDR": "10.0.0.1", "HTTP_X_FORWARDED_FOR": "1.2.3.4, 198.51.100.7, 10.0.0.9"}) \
        == "198.51.100.7"
    assert clients.client({"REMOTE_ADDR": "::1", "HTTP_X_FORWARDED_FOR": "[2001:db8::5]:4711"}) == "2001:db8::5"
    assert clients.client({"REMOTE_ADDR": "10.0.0.1", "HTTP_X_FORWARDED_FOR": "not-an-ip"}) == "10.0.0.1"
    assert clients.client({"REMOTE_ADDR": "10.0.0.1"}) == "10.0.0.1"
    assert clients.client({"REMOTE_ADDR": "192.0.2.1", "HTTP_X_FORWARDED_FOR": "1.2.3.4"}) == "192.0.2.1"
    assert ClientAddresses().client({"REMOTE_ADDR": "127.0.0.1", "HTTP_X_FORWARDED_FOR": "1.2.3.4"}) == "127.0.0.1"


# -- the login of the status page, /api/* and /metrics ----------------------------------------------

PROTECTED = ["/", "/runs/1", "/api/runs", "/api/runs/1", "/api/jobs/1", "/metrics"]
REMOTE = {"REMOTE_ADDR": "198.51.100.20"}


def login_app(tmp_path, **web):
    from publisher.commands.passwd import password_hash

    users = {"alice": password_hash("correct horse battery")}
    return proxied_app(tmp_path, trusted=("127.0.0.1/32",), users=users, **web)


def basic(user, password):
    import base64

    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


@pytest.mark.parametrize("path", PROTECTED)
def test_remote_requests_need_a_login_and_loopback_ones_do_not(tmp_path, path):
    client = login_app(tmp_path).test_client()
    refused = client.get(path, environ_base=REMOTE)
    assert refused.status_code == 401 and refused.headers["WWW-Authenticate"].startswith("Basic")
    assert client.get(path, environ_base=REMOTE, headers=basic("alice", "wrong password!")).status_code == 401
    assert client.get(path, environ_base=REMOTE, headers=basic("mallory", "correct horse battery")).status_code == 401
    assert client.get(path, environ_base=REMOTE, headers=basic("alice", "correct horse battery")).status_code != 401
    assert client.get(path).status_code != 401  # straight from loopback


@pytest.mark.parametrize("path", PROTECTED)
def test_a_request_forwarded_by_a_proxy_on_loopback_counts_as_remote(tmp_path, path):
    client = login_app(tmp_path).test_client()
    for forwarded in ({"X-Forwarded-For": "198.51.100.20"}, {"X-Forwarded-For": "127.0.0.1"},
                      {"Forwarded": "for=198.51.100.20"}, {"X-Real-IP": "198.51.100.20"}):
        assert client.get(path, headers=forwarded).status_code == 401, forwarded


def test_read_token_is_a_bearer_login(tmp_path):
    read_token = generate_token()
    client = proxied_app(tmp_path, read_tokens=(hash_token(read_token),)).test_client()
    assert client.get("/api/runs", environ_base=REMOTE).status_code == 401
    assert client.get("/api/runs", environ_base=REMOTE, headers={"Authorization": "Bearer nope"}).status_code == 401
    ok = client.get("/api/runs", environ_base=REMOTE, headers={"Authorization": f"Bearer {read_token}"})
    assert ok.status_code == 200 and ok.json == {"runs": []}


def test_without_configured_logins_remote_requests_are_refused(app):
    client = app.test_client()
    for path in PROTECTED:
        response = client.get(path, environ_base=REMOTE)
        assert response.status_code == 403 and "[web] users or read_tokens" in response.json["reason"]


@pytest.mark.parametrize("path,status", [("/healthz", 200), ("/static/style.css", 200), ("/nowhere", 404)])
def test_health_static_and_unknown_paths_need_no_login(tmp_path, path, status):
    client = login_app(tmp_path).test_client()
    assert client.get(path, environ_base=REMOTE).status_code == status


def test_webhooks_need_no_login(tmp_path):
    app = login_app(tmp_path)
    body = push_body()
    response = app.test_client().post(f"/hooks/{TOKEN}", data=body, headers=github(body), environ_base=REMOTE)
    assert response.status_code == 202


def test_repeated_bad_logins_are_limited_but_a_known_good_one_passes(tmp_path):
    client = login_app(tmp_path).test_client()
    assert client.get("/api/runs", environ_base=REMOTE, headers=basic("alice", "correct horse battery")).status_code == 200
    statuses = [client.get("/api/runs", environ_base=REMOTE, headers=basic("alice", f"guess {n}")).status_code
                for n in range(5)]
    assert statuses == [401, 401, 429, 429, 429]
    # The password verified before is remembered: served without a new (slow) hash check.
    assert client.get("/api/runs", environ_base=REMOTE, headers=basic("alice", "correct horse battery")).status_code == 200


# -- credentials of the source URL ---------------------------------------------------------------------

def test_source_url_credentials_never_shown_on_the_page_or_in_the_api(tmp_path):
    url = "https://deploy:gh-secret-token@git.example.org/example/dns.git"
    app = create_app(make_config(tmp_path, url=url), {"TESTING": True})
    client = app.test_client()
    shared = app.extensions["publisher"]
    assert "gh-secret-token" not in shared.repository
    body = push_body()
    job_id = post_signed(client, body).json["job"]
    # A run as the worker records it, and one stored before redaction existed.
    shared.runs.record(RunRecord(shared.repository, "push", "failed", 1.0, 2.0, job_id=job_id,
                                 error=f"cannot fetch {url} branch main: fatal: could not read"))
    shared.runs.record(RunRecord(url + "#main", "push", "failed", 3.0, 4.0, error=f"cannot fetch {url}"))
    shown = [client.get(path).get_data(as_text=True) for path in ("/", "/runs/1", "/runs/2", "/api/runs",
                                                                   "/api/runs/1", "/api/runs/2", f"/api/jobs/{job_id}")]
    assert all("gh-secret-token" not in text and "deploy:" not in text for text in shown)
    assert "https://[redacted]@git.example.org/example/dns.git" in shown[0]


def test_run_page_and_api_show_the_serials_of_the_one_outcome(app, client):
    applied = ZoneOutcome("example.net.", "primary", APPLIED,
                          (Change("create", "www.example.net.", "A", 300, (), ("192.0.2.7",)),),
                          serial_before=2026120101, serial_after=2026120102, file="example.net.lua")
    run_id = app.extensions["publisher"].runs.record(
        RunRecord("example/dns", "push", OK, 1_700_000_000.0, 1_700_000_001.0, zones=(applied,)))
    assert "Serial 2026120101 &rarr; 2026120102" in client.get(f"/runs/{run_id}").get_data(as_text=True)
    (zone,) = client.get(f"/api/runs/{run_id}").json["zones"]
    assert (zone["serial_before"], zone["serial_after"], zone["file"], zone["has_problems"]) == (
        2026120101, 2026120102, "example.net.lua", False)


@pytest.mark.skipif(__import__("shutil").which("chattr") is None, reason="needs chattr")
def test_a_push_while_the_state_database_refuses_writes_is_503_with_retry_after(app, client, tmp_path):
    """Nothing can be queued, so the sender must retry: a 503 (forges retry those), never a 500."""
    import subprocess

    body = push_body()
    assert client.post(f"/notifications/{TOKEN}/push", data=body, headers=github(body)).status_code == 202
    files = [str(tmp_path / "state.db"), str(tmp_path / "state.db-wal")]
    if subprocess.run(["chattr", "+i", *files], capture_output=True).returncode != 0:
        pytest.skip("the file system of tmp_path has no immutable attribute")
    try:
        later = push_body(after="3" * 40)
        response = client.post(f"/notifications/{TOKEN}/push", data=later, headers=github(later, delivery="d-2"))
    finally:
        subprocess.run(["chattr", "-i", *files], check=True)
    assert response.status_code == 503 and response.headers["Retry-After"] == "30"
    assert response.json == {"status": "unavailable", "reason": "the state database is unavailable; retry later"}
    again = client.post(f"/notifications/{TOKEN}/push", data=later, headers=github(later, delivery="d-2"))
    assert again.status_code == 202  # the retried delivery is taken once the database is back
