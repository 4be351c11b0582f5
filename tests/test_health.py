"""/healthz: 200 while the service can do its job; 503 with a reason (and no secret) when the queue
stands still, the state database refuses writes, or mail has been failing for long."""

import shutil
import sqlite3
import subprocess
import time
from dataclasses import replace

import pytest

from publisher.config import Config, HealthConfig, SourceConfig, StateConfig
from publisher.service.health import check_health
from publisher.service.notify import MAIL
from publisher.service.web import create_app

REPO = "https://git.example.org/example/dns.git#main"


@pytest.fixture
def app(tmp_path):
    config = replace(Config(), source=SourceConfig(url="https://git.example.org/example/dns.git"),
                     state=StateConfig(tmp_path / "state.db"), health=HealthConfig(queue_wait=60, mail_failing=600))
    return create_app(config, {"TESTING": True})


@pytest.fixture
def client(app):
    return app.test_client()


def shared(app):
    return app.extensions["publisher"]


def test_healthy_service_answers_200_with_its_figures(app, client):
    shared(app).queue.enqueue(REPO)  # a fresh job is no problem
    response = client.get("/healthz")
    assert response.status_code == 200, response.json
    assert response.json["status"] == "ok" and response.json["jobs"] == {"queued": 1}
    assert response.json["outbox_pending"] == 0


def test_a_queue_that_cannot_move_is_unhealthy_until_a_worker_holds_a_lease(app, client):
    queue = shared(app).queue
    queue.enqueue(REPO, now=time.time() - 120)  # waiting for two minutes, no worker
    response = client.get("/healthz")
    assert response.status_code == 503
    [reason] = response.json["reasons"]
    assert "job queue has not moved for 12" in reason and "no worker holds a live lease" in reason
    job = queue.claim("worker:2")  # a worker at work: a live lease
    assert client.get("/healthz").status_code == 200
    queue.finish(job.id)
    assert client.get("/healthz").status_code == 200


def test_a_job_left_running_by_a_dead_worker_is_unhealthy(app, client):
    queue = shared(app).queue
    queue.enqueue(REPO, now=time.time() - 300)
    queue.claim("dead:2", now=time.time() - 200)  # its 60 s lease ran out 140 s ago
    response = client.get("/healthz")
    assert response.status_code == 503 and "has not moved for 14" in response.json["reasons"][0]
    queue.enqueue(REPO, now=time.time())  # later jobs wait behind it: still unhealthy
    assert client.get("/healthz").status_code == 503


def test_a_job_waiting_out_a_retry_delay_is_not_a_stuck_queue(app, client):
    queue = shared(app).queue
    queue.enqueue(REPO, now=time.time() - 3600)
    job = queue.claim("worker:2")
    assert queue.retry(job.id, error="provider down") == "queued"  # due in 30 s: on purpose
    assert client.get("/healthz").status_code == 200


def test_mail_failing_for_long_is_unhealthy_without_showing_the_servers_answer(app, client):
    outbox = shared(app).outbox
    item = outbox.add(MAIL, ["ops@example.org"], b"mail", now=time.time() - 900)
    outbox.mark_failed(item, "535 5.7.8 authentication failed for ops:hunter2", time.time() + 60)
    response = client.get("/healthz")
    assert response.status_code == 503
    [reason] = response.json["reasons"]
    assert "undelivered for 90" in reason and "1 waiting" in reason
    assert "hunter2" not in response.get_data(as_text=True)
    outbox.mark_sent(item)
    assert client.get("/healthz").status_code == 200


def test_young_unsent_mail_is_fine(app, client):
    shared(app).outbox.add(MAIL, ["ops@example.org"], b"mail", now=time.time() - 60)
    assert client.get("/healthz").status_code == 200


@pytest.mark.skipif(shutil.which("chattr") is None, reason="needs chattr")
def test_a_database_that_cannot_be_written_is_unhealthy(app, client, tmp_path):
    assert client.get("/healthz").status_code == 200
    # The database and its write-ahead log immutable (even for root): the file system refuses every
    # write, as a read-only mount or a full disk would.
    files = [str(tmp_path / "state.db"), str(tmp_path / "state.db-wal")]
    if subprocess.run(["chattr", "+i", *files], capture_output=True).returncode != 0:
        pytest.skip("the file system of tmp_path has no immutable attribute")
    try:
        response = client.get("/healthz")
    finally:
        subprocess.run(["chattr", "-i", *files], check=True)
    assert response.status_code == 503
    assert response.json["reasons"][0].startswith("the state database cannot be written: ")
    assert client.get("/healthz").status_code == 200


def test_a_database_locked_by_a_stuck_writer_is_unhealthy(app, tmp_path):
    services = shared(app)
    assert check_health(services.queue, services.outbox, HealthConfig()).ok
    holder = sqlite3.connect(tmp_path / "state.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # a writer that never commits
    try:
        health = check_health(services.queue, services.outbox, HealthConfig(), write_timeout=0.2)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert health.reasons == ("the state database cannot be written: database is locked",)
