"""The web app through Flask's test client: webhook responses, nothing queued on refusal, the status
page, the API and the metrics."""

import hashlib
import hmac
import json
import logging
from dataclasses import replace
from pathlib import Path

import pytest

from publisher.config import Config, SourceConfig, StateConfig, WebhookConfig
from publisher.service.jobs import QUEUED
from publisher.model import Change, Finding
from publisher.service.runs import PROBLEMS, RunRecord, ZoneOutcome
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


def test_client_that_keeps_failing_gets_429_others_do_not(app, client):
    body = push_body()
    for _ in range(5):
        assert client.post("/hooks/guess", data=body, headers=github(body)).status_code == 403
    assert client.post("/hooks/guess", data=body, headers=github(body)).status_code == 429
    # Even the right token is refused from that client for a while ...
    assert client.post(f"/hooks/{TOKEN}", data=body, headers=github(body)).status_code == 429
    # ... but another client is served.
    other = client.post(f"/hooks/{TOKEN}", data=body, headers=github(body), environ_base={"REMOTE_ADDR": "192.0.2.9"})
    assert other.status_code == 202


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
    assert redact(f"/hooks/{TOKEN}?x=1") == "/hooks/[redacted]?x=1"


@pytest.mark.parametrize("url,path", [
    ("https://github.com/Example/DNS.git", "example/dns"),
    ("git@gitlab.example.org:infra/net/dns.git", "infra/net/dns"),
    ("ssh://git@bitbucket.example.org:7999/net/dns.git", "net/dns"),
    ("/srv/git/example/dns.git", "srv/git/example/dns"),
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
    assert 'publisher_jobs{state="queued"} 1.0' in text
    assert 'publisher_zone_ok{provider="primary",status="kept-last-good",zone="example.com."} 0.0' in text
    assert "publisher_outbox_pending 0.0" in text
