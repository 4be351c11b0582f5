"""The durable job queue: dedupe, coalescing, one run per repository, crash recovery."""

import json
import os
import subprocess
import sys
import threading

import pytest

import socket
import time

from publisher.config import JobsConfig
from publisher.service.jobs import (BRANCH_DELETED, DONE, FAILED, POLL, QUEUED, RUNNING, SUPERSEDED, Enqueued, Heartbeat,
                                    JobQueue)

REPO = "example/dns"


@pytest.fixture
def queue(state_location):
    queue = JobQueue(state_location)
    yield queue
    queue.close()


def test_enqueue_then_claim_then_finish(queue):
    assert not queue.has_claimable()
    result = queue.enqueue(REPO, sender="github", delivery_id="d1", ref="refs/heads/main", commit="a" * 40)
    assert result.status == "queued"
    assert queue.has_claimable()
    job = queue.claim("host:1")
    assert not queue.has_claimable()
    assert (job.id, job.state, job.commit, job.sender) == (result.job_id, RUNNING, "a" * 40, "github")
    assert queue.claim("host:1") is None
    queue.finish(job.id, run_id=7, published_commit="a" * 40)
    finished = queue.get(job.id)
    assert (finished.state, finished.run_id) == (DONE, 7)
    assert queue.published_commit(REPO) == "a" * 40


def test_repeated_delivery_id_is_not_queued_again(queue):
    first = queue.enqueue(REPO, sender="github", delivery_id="same", commit="a" * 40)
    queue.finish(queue.claim("w:2").id)
    again = queue.enqueue(REPO, sender="github", delivery_id="same", commit="a" * 40)
    assert again.status == "duplicate" and again.job_id == first.job_id
    assert queue.claim("w:2") is None
    # The same id from another sender is another delivery.
    assert queue.enqueue(REPO, sender="gitlab", delivery_id="same").status == "queued"


def test_already_published_commit_is_not_run_again(queue):
    queue.enqueue(REPO, delivery_id="d1", sender="github", commit="b" * 40)
    queue.finish(queue.claim("w:2").id, published_commit="b" * 40)
    assert queue.enqueue(REPO, delivery_id="d2", sender="github", commit="b" * 40).status == "published"
    assert queue.claim("w:2") is None
    assert queue.enqueue(REPO, delivery_id="d3", sender="github", commit="c" * 40).status == "queued"


def test_a_burst_coalesces_into_one_waiting_job_with_the_newest_commit(queue):
    running = queue.enqueue(REPO, sender="github", delivery_id="d0", commit="0" * 39 + "1")
    queue.claim("w:2")
    ids = {queue.enqueue(REPO, sender="github", delivery_id=f"d{i}", commit=f"{i:040x}").job_id for i in range(2, 52)}
    assert len(ids) == 1 and running.job_id not in ids
    waiting = queue.get(ids.pop())
    assert waiting.commit == f"{51:040x}" and waiting.deliveries == 50
    assert queue.counts() == {RUNNING: 1, QUEUED: 1}


def test_one_running_job_per_repository_but_other_repositories_proceed(queue):
    queue.enqueue(REPO)
    first = queue.claim("w:2")
    queue.enqueue(REPO)
    queue.enqueue("other/repo")
    second = queue.claim("w:2")
    assert second.repository == "other/repo"
    assert queue.claim("w:2") is None
    queue.finish(first.id)
    assert queue.claim("w:2").repository == REPO


def test_branch_deletion_report_is_never_merged_into_a_publish(queue):
    queue.enqueue(REPO, kind=POLL)
    report = queue.enqueue(REPO, kind=BRANCH_DELETED, sender="github", delivery_id="x")
    assert report.status == "queued"
    push = queue.enqueue(REPO, sender="github", delivery_id="y")
    assert push.status == "coalesced" and push.job_id != report.job_id
    assert queue.get(push.job_id).kind == "push"  # a push upgrades a waiting poll


def test_a_job_whose_lease_ran_out_is_claimed_again_whatever_the_owner(state_location):
    """In a container every worker is pid 1 or 2 on the same host name: a dead owner is told by its
    lease running out, never by looking for its pid."""
    queue = JobQueue(state_location, JobsConfig(lease=30))
    queue.enqueue(REPO, commit="d" * 40, now=100.0)
    job = queue.claim(f"{socket.gethostname()}:{os.getpid()}", now=100.0)  # a pid that exists: ours
    assert (job.state, job.attempts, job.lease_until) == (RUNNING, 1, 130.0)
    assert queue.claim("another:1", now=129.0) is None and not queue.has_claimable(now=129.0)
    assert queue.has_claimable(now=130.0)
    again = queue.claim("another:1", now=130.0)
    assert (again.id, again.claimed_by, again.attempts, again.lease_until) == (job.id, "another:1", 2, 160.0)
    # The old owner's heartbeat finds the lease gone and stops.
    assert not queue.renew(job.id, f"{socket.gethostname()}:{os.getpid()}", now=131.0)
    queue.close()


def test_a_renewed_lease_keeps_the_job(state_location):
    queue = JobQueue(state_location, JobsConfig(lease=30))
    queue.enqueue(REPO, now=100.0)
    job = queue.claim("w:2", now=100.0)
    assert queue.renew(job.id, "w:2", now=125.0)
    assert queue.claim("other:2", now=150.0) is None
    assert queue.get(job.id).lease_until == 155.0
    queue.close()


def test_the_heartbeat_renews_a_long_running_job_until_it_ends(state_location):
    queue = JobQueue(state_location, JobsConfig(lease=0.6))
    queue.enqueue(REPO)
    job = queue.claim("w:2")
    with Heartbeat(queue, job.id, "w:2") as heartbeat:
        for _ in range(10):  # five lease times: without the heartbeat another worker would take it
            time.sleep(0.3)
            assert queue.claim("other:2") is None
    assert not heartbeat.lost
    time.sleep(0.7)
    assert queue.claim("other:2").id == job.id
    queue.close()


def test_a_job_that_keeps_killing_its_worker_is_failed_after_max_attempts(state_location):
    queue = JobQueue(state_location, JobsConfig(lease=10, max_attempts=3))
    job_id = queue.enqueue(REPO, now=0.0).job_id
    now = 0.0
    for attempt in (1, 2, 3):
        assert queue.claim(f"w{attempt}:2", now=now).attempts == attempt
        now += 11  # the worker dies: its lease runs out
    assert queue.claim("w4:2", now=now) is None
    gone = queue.get(job_id)
    assert gone.state == FAILED and "3 attempts" in gone.error
    queue.enqueue(REPO, now=now)  # the next push runs
    assert queue.claim("w4:2", now=now).id != job_id
    queue.close()


def test_a_failed_run_is_retried_after_a_doubling_delay_then_failed(state_location):
    settings = JobsConfig(lease=10, max_attempts=3, retry_delay=5, retry_max_delay=8)
    queue = JobQueue(state_location, settings)
    job_id = queue.enqueue(REPO, now=0.0).job_id
    assert queue.retry(queue.claim("w:2", now=0.0).id, error="fetch failed", now=1.0) == QUEUED
    assert queue.get(job_id).not_before == 6.0  # 5 s after the first attempt
    assert queue.claim("w:2", now=5.9) is None and not queue.has_claimable(now=5.9)
    assert queue.claim("w:2", now=6.0).attempts == 2
    assert queue.retry(job_id, error="fetch failed", now=7.0) == QUEUED
    assert queue.get(job_id).not_before == 15.0  # 10 s, capped at retry_max_delay 8
    queue.claim("w:2", now=15.0)
    assert queue.retry(job_id, error="fetch failed", now=16.0) == FAILED
    assert "gave up after 3 attempts" in queue.get(job_id).error
    assert queue.claim("w:2", now=1000.0) is None


def test_a_push_cuts_a_retry_delay_short(state_location):
    queue = JobQueue(state_location, JobsConfig(retry_delay=600))
    job_id = queue.enqueue(REPO, now=0.0).job_id
    queue.retry(queue.claim("w:2", now=0.0).id, error="provider down", now=1.0)
    assert queue.claim("w:2", now=2.0) is None
    assert queue.enqueue(REPO, sender="github", delivery_id="new", now=3.0) == Enqueued("coalesced", job_id)
    resumed = queue.claim("w:2", now=3.0)
    assert (resumed.id, resumed.attempts) == (job_id, 1)


def test_crashed_job_merges_into_a_waiting_one(queue):
    queue.enqueue(REPO, now=0.0)
    crashed = queue.claim("nohost-xyz:1", now=0.0)
    waiting = queue.enqueue(REPO, sender="github", delivery_id="n", now=1.0)
    assert queue.claim("w:2", now=1000.0).id == waiting.job_id
    assert queue.get(crashed.id).state == SUPERSEDED


def test_a_state_file_from_before_leases_is_upgraded(tmp_path):
    import sqlite3

    path = tmp_path / "old.db"
    old = sqlite3.connect(path)
    old.executescript("""
    CREATE TABLE jobs (id INTEGER PRIMARY KEY AUTOINCREMENT, repository TEXT NOT NULL, kind TEXT NOT NULL,
      sender TEXT NOT NULL DEFAULT '', ref TEXT, commit_sha TEXT, state TEXT NOT NULL,
      deliveries INTEGER NOT NULL DEFAULT 1, created REAL NOT NULL, updated REAL NOT NULL, started REAL,
      finished REAL, claimed_by TEXT, run_id INTEGER, error TEXT);
    INSERT INTO jobs (repository, kind, state, created, updated, claimed_by) VALUES ('example/dns', 'push', 'running', 1, 1, 'h:2');
    """)
    old.commit()
    old.close()
    queue = JobQueue(path)
    assert queue.claim("w:2").attempts == 1  # left running by the old version: no lease, so claimable
    queue.close()


def test_queue_survives_reopening(state_location):
    first = JobQueue(state_location)
    queued = first.enqueue(REPO, sender="curl")
    first.close()
    second = JobQueue(state_location)
    assert second.claim("w:2").id == queued.job_id


def test_concurrent_enqueues_from_threads_and_processes_make_one_waiting_job(state_location):
    path = state_location
    queue = JobQueue(path)
    queue.enqueue(REPO)
    queue.claim("w:2")
    script = ("import sys; from publisher.service.jobs import JobQueue; q = JobQueue(sys.argv[1]);"
              "[q.enqueue('example/dns', sender='p', delivery_id=sys.argv[2] + str(i)) for i in range(20)]")
    processes = [subprocess.Popen([sys.executable, "-c", script, str(path), f"p{n}-"]) for n in range(3)]
    threads = [threading.Thread(target=lambda n=n: [queue.enqueue(REPO, sender="t", delivery_id=f"t{n}-{i}")
                                                    for i in range(20)]) for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(process.wait() == 0 for process in processes)
    assert queue.counts() == {RUNNING: 1, QUEUED: 1}
    assert queue.jobs(state=QUEUED)[0].deliveries == 120


def test_prune_keeps_the_newest_and_the_young_and_never_touches_waiting_work(state_location):
    day = 86400.0
    queue = JobQueue(state_location)
    finished = []
    for i in range(1, 11):  # job i: delivered, run and finished on day i
        job_id = queue.enqueue(f"repo{i}", sender="github", delivery_id=f"d{i}", now=i * day).job_id
        queue.claim("w:2", now=i * day)
        queue.finish(job_id, now=i * day)
        finished.append(job_id)
    running = queue.enqueue("old/a", sender="github", delivery_id="w", now=0.5 * day).job_id
    waiting = queue.enqueue("old/b", now=0.5 * day).job_id
    assert queue.claim("w:2", now=0.5 * day).id == running  # oldest first
    behind = queue.enqueue("old/a", now=0.5 * day).job_id
    # Keep whatever is younger than day 8, or among the 3 newest.
    deleted = queue.prune(before=8 * day, keep_newest=3)
    left = {job.id for job in queue.jobs(limit=100)}
    assert left == set(finished[7:]) | {running, waiting, behind}
    assert deleted == 7 + 8  # 7 jobs (days 1-7) and 8 delivery ids (d1-d7 and "w"; d8-d10 stay)
    assert queue.enqueue("repo9", sender="github", delivery_id="d9", now=11 * day).status == "duplicate"
    assert queue.enqueue("repo1", sender="github", delivery_id="d1", now=11 * day).status == "queued"  # forgotten
    queue.close()


def test_a_stopping_worker_hands_its_job_back_at_once(state_location):
    queue = JobQueue(state_location, JobsConfig(lease=600))
    first = queue.enqueue(REPO, now=0.0).job_id
    other = queue.enqueue("other/repo", now=0.0).job_id
    assert queue.claim("stopping:2", now=1.0).id == first
    assert queue.claim("stopping:2", now=1.0).id == other
    behind = queue.enqueue("other/repo", now=2.0).job_id
    assert sorted(queue.release("stopping:2", now=3.0)) == [first, other]
    assert queue.release("stopping:2", now=3.0) == []
    assert queue.get(other).state == SUPERSEDED  # the waiting job publishes the head anyway
    resumed = queue.claim("next:2", now=4.0)  # no waiting for the 600 s lease
    assert (resumed.id, resumed.attempts) == (first, 1)  # a stop is not the job's failure
    assert queue.claim("next:2", now=4.0).id == behind
    queue.close()


# -- reading one repository's jobs (several repositories on one instance) ---------------------------

TRICKY_KEYS = ["a", "A", "a_b", "aXb", "a%", "ab", "a#request/1", "a_b#request/2", "A#request/3", "a%#request/4",
               "b#request/a#request/5"]


def test_a_repositorys_jobs_are_its_key_and_its_requests_and_sql_agrees_with_owner_key(tmp_path):
    from publisher.service.forge_events import request_queue_key
    from publisher.service.jobs import owner_key

    queue = JobQueue(tmp_path / "state.db")
    ids = {key: queue.enqueue(key, now=float(n)).job_id for n, key in enumerate(TRICKY_KEYS)}
    assert request_queue_key("a_b", 2) in ids  # what the forge side files a request's plan under
    for repository in ("a", "A", "a_b", "a%", "b", "zzz"):
        expected = {ids[key] for key in TRICKY_KEYS if owner_key(key) == repository}
        assert {job.id for job in queue.jobs(repository=repository)} == expected, repository
        assert {job.id for job in queue.active(repository)} == expected, repository
        assert queue.counts(repository) == ({QUEUED: len(expected)} if expected else {}), repository
        for key, job_id in ids.items():
            assert (queue.get(job_id, repository=repository) is not None) == (job_id in expected), (repository, key)
    assert queue.counts_by_repository()["a_b#request/2"] == {QUEUED: 1}
    queue.close()


def test_stuck_counts_the_free_workers_of_the_pool(tmp_path):
    queue = JobQueue(tmp_path / "state.db", JobsConfig(lease=60))
    queue.enqueue("busy", now=0.0)
    queue.claim("w:1", now=100.0)  # a live lease until 160
    queue.enqueue("waiting", now=10.0)
    assert queue.stuck_since(now=120.0) is None  # one worker, busy: the job waits its turn
    assert queue.stuck_since(now=120.0, workers=2) == 10.0  # a second worker should have taken it
    assert queue.live_leases(now=120.0) == 1 and queue.live_leases(now=161.0) == 0
    assert queue.stuck_since(now=161.0) == 10.0
    queue.close()

def test_jobs_of_several_repositories_run_side_by_side_longest_waiting_first(state_location):
    queue = JobQueue(state_location, JobsConfig(retry_delay=10.0))
    try:
        first = queue.enqueue("a", now=0.0)
        assert queue.claim("w", now=0.0).id == first.job_id
        queue.retry(first.job_id, error="server down", now=1.0)  # due again at 11
        other = queue.enqueue("b", now=5.0)
        also = queue.enqueue("c", now=6.0)
        # b and c never ran, b has waited longer; a ran last: b, then c, then a, although a's id is lowest.
        assert [queue.claim("w", now=20.0).id for _ in range(3)] == [other.job_id, also.job_id, first.job_id]
        assert queue.claim("w", now=20.0) is None  # one running job per repository, and each has one
    finally:
        queue.close()


def test_a_repository_that_always_has_work_cannot_starve_a_quiet_one(state_location):
    queue = JobQueue(state_location)
    try:
        busy = [f"busy-{index}" for index in range(5)]
        now = 0.0
        for name in busy:
            queue.enqueue(name, now=now)
        served = []
        for _ in range(12):  # two workers' worth of claims, the busy ones pushed again as soon as they ran
            now += 1.0
            job = queue.claim("w", now=now)
            served.append(job.repository)
            queue.finish(job.id, now=now)
            queue.enqueue(job.repository, now=now)
            if len(served) == 6:
                queue.enqueue("quiet", now=now)  # a push to a repository that has not run for long
        # every busy repository had its turn before any ran twice, and the quiet push went next
        assert sorted(served[:5]) == sorted(busy) and served[6] == "quiet"
    finally:
        queue.close()


# -- several instances on one PostgreSQL -----------------------------------------------------------

_INSTANCE = """
import json, random, sys, time
from publisher.config import JobsConfig
from publisher.service.jobs import JobQueue
url, name, pushes, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
queue = JobQueue(url, JobsConfig(lease=30))
random.seed(name)
log, statuses, pushed, most_waiting = [], [], 0, 0
deadline = time.time() + 90
while time.time() < deadline:
    if pushed < pushes:  # a webhook arrives at this instance
        repository = f"repo{random.randrange(3)}"
        statuses.append(queue.enqueue(repository, sender="github", delivery_id=f"{name}-{pushed}").status)
        pushed += 1
        waiting = queue._connection.execute("SELECT COUNT(*) FROM jobs WHERE state = 'queued'"
                                            " GROUP BY repository ORDER BY 1 DESC LIMIT 1").fetchone()
        most_waiting = max(most_waiting, waiting[0] if waiting else 0)
    job = queue.claim(name)
    if job is not None:  # this instance's worker runs it
        started = time.time()
        time.sleep(random.uniform(0.005, 0.03))
        log.append([job.repository, job.id, started, time.time()])
        queue.finish(job.id)
    elif pushed >= pushes and not queue.pending("repo0") and not queue.pending("repo1") and not queue.pending("repo2"):
        break
json.dump({"runs": log, "statuses": statuses, "most_waiting": most_waiting}, open(out, "w"))
"""


def test_instances_on_one_postgresql_never_run_a_repository_twice_at_once(postgres_server, tmp_path):
    """Four processes, each a webhook handler and a worker on one database: pushes to three
    repositories from all of them at once.  No repository ever has two runs at once, no two jobs
    of one repository ever wait at once (the burst coalesced), and every push is in exactly one job."""
    url = postgres_server.new_database()
    JobQueue(url)  # the schema, before the instances race for it
    script = tmp_path / "instance.py"
    script.write_text(_INSTANCE)
    processes = [subprocess.Popen([sys.executable, str(script), url, f"instance{n}", "60", str(tmp_path / f"{n}.json")])
                 for n in range(4)]
    assert [process.wait(timeout=180) for process in processes] == [0, 0, 0, 0]
    results = [json.loads((tmp_path / f"{n}.json").read_text()) for n in range(4)]
    runs = [run for result in results for run in result["runs"]]
    statuses = [status for result in results for status in result["statuses"]]
    assert set(statuses) <= {"queued", "coalesced"} and len(statuses) == 240
    by_repository: dict[str, list] = {}
    for repository, job_id, started, ended in runs:
        by_repository.setdefault(repository, []).append((started, ended, job_id))
    for repository, intervals in by_repository.items():
        intervals.sort()
        for (_, first_end, first), (second_start, _, second) in zip(intervals, intervals[1:]):
            assert first_end <= second_start, f"{repository}: jobs {first} and {second} ran at once"
    assert sorted(job_id for _, job_id, _, _ in runs) == sorted({job_id for _, job_id, _, _ in runs})  # each once
    queue = JobQueue(url)
    jobs = queue.jobs(limit=1000)
    assert {job.state for job in jobs} == {DONE} and len(jobs) == len(runs)
    assert sum(job.deliveries for job in jobs) == 240  # no push lost, none counted twice
    assert statuses.count("queued") == len(jobs)
    # One waiting job per repository at any moment (each instance looked after each of its pushes).
    assert max(result["most_waiting"] for result in results) == 1
    assert len(by_repository) == 3 and len(runs) > 3  # enough happened to be a test
