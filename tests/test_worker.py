"""The worker against a real git remote and the zone-file provider: publish, keep the last good
version of a broken zone, report a deleted branch, poll for lost webhooks, refuse unsafe checkouts."""

from dataclasses import replace
from pathlib import Path

import pytest

from publisher.config import load_config_text
from publisher.service.jobs import BRANCH_DELETED, DONE, FAILED as JOB_FAILED, POLL
from publisher.service.notify import Notifier
from publisher.service.runs import BRANCH_DELETED as RUN_DELETED, FAILED, OK, PROBLEMS
from publisher.service.worker import Worker
from tests.test_fetch import Remote

DATA = Path(__file__).parent / "data" / "service"
ZONE = (DATA / "repo" / "example.test.lua").read_text()


def config_for(tmp_path: Path, remote: Remote, **notify):
    text = f"""
[source]
url = "{remote.bare}"
branch = "main"
cache = "cache"
[defaults]
nameservers = ["ns1.example.net.", "ns2.example.net."]
[[provider]]
name = "files"
type = "zonefile"
directory = "served"
[state]
path = "state.db"
[notify]
to = ["ops@example.org"]
outbox = "outbox"
notify_author = true
"""
    return load_config_text(text, base=tmp_path)


@pytest.fixture
def setup(tmp_path):
    remote = Remote(tmp_path / "git")
    remote.commit({"example.test.lua": ZONE}, "First version")
    worker = Worker(config_for(tmp_path, remote))
    yield tmp_path, remote, worker
    worker.close()


def served(tmp_path: Path) -> str:
    return (tmp_path / "served" / "example.test.zone").read_text()


def test_push_publishes_the_branch_head(setup):
    tmp_path, remote, worker = setup
    worker.queue.enqueue(worker.repository, sender="github", delivery_id="1")
    run = worker.run_once()
    assert run.status == OK, run
    assert run.author_email == "alice@example.org" and run.subject == "First version"
    assert "192.0.2.1" in served(tmp_path)
    assert worker.queue.published_commit(worker.repository) == run.commit
    assert worker.queue.get(run.job_id).state == DONE and worker.queue.get(run.job_id).run_id == run.id
    assert worker.runs.get(run.id).zones[0].status == "applied"
    assert worker.outbox.pending() == 0  # nothing to report
    assert worker.run_once() is None


def test_late_webhook_of_an_older_commit_is_skipped_without_a_run(setup):
    tmp_path, remote, worker = setup
    older = remote.commit({"example.test.lua": ZONE.replace("192.0.2.1", "192.0.2.2")}, "older")
    remote.commit({"example.test.lua": ZONE.replace("192.0.2.1", "192.0.2.3")}, "newer")
    worker.queue.enqueue(worker.repository, sender="github", delivery_id="newer")
    worker.run_once()
    late = worker.queue.enqueue(worker.repository, sender="github", delivery_id="older", commit=older)
    assert late.status == "queued"
    assert worker.run_once() is None
    assert worker.queue.get(late.job_id).state == "superseded"
    assert len(worker.runs.recent()) == 1 and "192.0.2.3" in served(tmp_path)

    # A force-push back to the older commit moves the branch backwards: that push must run.
    from tests.test_fetch import git
    git(remote.work, "push", "--quiet", "--force", "origin", f"{older}:refs/heads/main")
    again = worker.queue.enqueue(worker.repository, sender="github", delivery_id="forced", commit=older)
    run = worker.run_once()
    assert run is not None and run.job_id == again.job_id and run.commit == older
    assert "192.0.2.2" in served(tmp_path)


def test_broken_zone_keeps_last_good_version_and_is_mailed_with_file_and_line(setup):
    tmp_path, remote, worker = setup
    worker.queue.enqueue(worker.repository)
    worker.run_once()
    remote.commit({"example.test.lua": ZONE.replace('a("www", "192.0.2.1")', 'a("www", "192.0.2.1"\ncname(')},
                  "Break it")
    worker.queue.enqueue(worker.repository)
    run = worker.run_once()
    assert run.status == PROBLEMS and run.subject == "Break it"
    assert any(f.file == "example.test.lua" and f.line > 0 for f in run.all_findings), run.all_findings
    assert "192.0.2.1" in served(tmp_path)
    assert worker.outbox.pending() == 1
    Notifier(worker.outbox, worker.config.notify).send_due()
    [mail] = (tmp_path / "outbox").glob("*.eml")
    text = mail.read_text()
    assert "example.test.lua:" in text and "alice@example.org" in text


def test_deleted_branch_is_reported_and_nothing_published(setup):
    tmp_path, remote, worker = setup
    worker.queue.enqueue(worker.repository, kind=BRANCH_DELETED, sender="github", delivery_id="x")
    run = worker.run_once()
    assert run.status == RUN_DELETED and "deleted" in run.error
    assert not (tmp_path / "served" / "example.test.zone").exists()
    assert worker.outbox.pending() == 1
    assert worker.queue.published_commit(worker.repository) is None


def test_poll_catches_a_lost_webhook(setup):
    tmp_path, remote, worker = setup
    first = worker.poll_once()
    assert first.status == "queued" and worker.queue.get(first.job_id).kind == POLL
    assert worker.poll_once() is None  # already queued
    worker.run_once()
    assert worker.poll_once() is None  # head published
    sha = remote.commit({"example.test.lua": ZONE.replace("192.0.2.1", "192.0.2.99")}, "Edit, webhook lost")
    queued = worker.poll_once()
    assert queued.status == "queued"
    run = worker.run_once()
    assert run.commit == sha and "192.0.2.99" in served(tmp_path)


def test_poll_repairs_and_reports_a_zone_edited_outside_the_publisher(setup):
    import re

    tmp_path, remote, worker = setup
    worker.queue.enqueue(worker.repository)
    worker.run_once()
    assert worker.poll_once() is None  # published and in sync: nothing to do
    path = tmp_path / "served" / "example.test.zone"
    text = path.read_text()
    serial = int(re.search(r"SOA \S+ \S+ (\d+)", text).group(1))
    path.write_text(text.replace("192.0.2.1", "192.0.2.66").replace(f" {serial} ", f" {serial + 1} ", 1))
    queued = worker.poll_once()
    assert queued is not None and queued.status == "queued"
    run = worker.run_once()
    assert "192.0.2.1" in served(tmp_path) and "192.0.2.66" not in served(tmp_path)
    assert any(f.code == "zone-changed-outside" for f in run.all_findings), run.all_findings
    assert worker.outbox.pending() == 1  # drift is worth a mail
    assert worker.poll_once() is None


def test_unsafe_checkout_fails_the_run_and_is_retried_by_the_poll(setup):
    tmp_path, remote, worker = setup
    remote.link("leak.lua", "/etc/hostname", "symlink out")
    worker.queue.enqueue(worker.repository)
    run = worker.run_once()
    assert run.status == FAILED and "leak.lua" in run.error
    assert worker.queue.get(run.job_id).state == JOB_FAILED
    assert worker.outbox.pending() == 1
    assert worker.poll_once() is not None  # not published: the poll keeps trying
    again = worker.run_once()
    assert again.status == FAILED and again.trigger == POLL
    assert worker.outbox.pending() == 1  # the same news is not mailed at every poll
    remote.commit({"example.test.lua": ZONE.replace("192.0.2.1", "192.0.2.2")}, "Another push, same problem")
    worker.queue.enqueue(worker.repository, sender="github", delivery_id="after")
    worker.run_once()
    assert worker.outbox.pending() == 2  # a push is always answered


def test_a_database_error_mid_run_requeues_the_job_and_the_loop_goes_on(setup, monkeypatch):
    import sqlite3
    import threading

    from tests.test_service_e2e import wait_until

    tmp_path, remote, worker = setup
    original, calls = worker.runs.record, []

    def flaky(run, **kwargs):
        calls.append(run)
        if len(calls) == 1:
            raise sqlite3.OperationalError("database is locked")
        return original(run, **kwargs)

    monkeypatch.setattr(worker.runs, "record", flaky)
    job_id = worker.queue.enqueue(worker.repository).job_id
    stop = threading.Event()
    thread = threading.Thread(target=worker.run_jobs, args=(stop,))
    thread.start()
    try:
        wait_until(lambda: worker.queue.get(job_id).state == DONE, "the job to be retried and finish")
    finally:
        stop.set()
        thread.join()
    assert len(calls) == 2 and "192.0.2.1" in served(tmp_path)


def test_start_up_polls_once_even_without_a_poll_interval(setup):
    """A service (re)started after missing pushes publishes the branch head without waiting for one."""
    import threading
    import time

    tmp_path, remote, worker = setup
    assert worker.config.poll.interval == 0
    stop = threading.Event()
    threads = worker.start(stop)
    try:
        deadline = time.monotonic() + 60
        zone_file = tmp_path / "served" / "example.test.zone"
        while time.monotonic() < deadline and not (zone_file.exists() and "192.0.2.1" in served(tmp_path)):
            time.sleep(0.1)  # the zone is created empty first, then filled
        assert "192.0.2.1" in served(tmp_path)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=10)
