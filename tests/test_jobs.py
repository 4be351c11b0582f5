"""The durable job queue: dedupe, coalescing, one run per repository, crash recovery."""

import os
import subprocess
import sys
import threading

import pytest

from publisher.service.jobs import BRANCH_DELETED, DONE, POLL, QUEUED, RUNNING, SUPERSEDED, JobQueue, owner_alive

REPO = "example/dns"


@pytest.fixture
def queue(tmp_path):
    queue = JobQueue(tmp_path / "state.db")
    yield queue
    queue.close()


def test_enqueue_then_claim_then_finish(queue):
    assert not queue.has_queued()
    result = queue.enqueue(REPO, sender="github", delivery_id="d1", ref="refs/heads/main", commit="a" * 40)
    assert result.status == "queued"
    assert queue.has_queued()
    job = queue.claim("host:1")
    assert not queue.has_queued()
    assert (job.id, job.state, job.commit, job.sender) == (result.job_id, RUNNING, "a" * 40, "github")
    assert queue.claim("host:1") is None
    queue.finish(job.id, run_id=7, published_commit="a" * 40)
    finished = queue.get(job.id)
    assert (finished.state, finished.run_id) == (DONE, 7)
    assert queue.published_commit(REPO) == "a" * 40


def test_repeated_delivery_id_is_not_queued_again(queue):
    first = queue.enqueue(REPO, sender="github", delivery_id="same", commit="a" * 40)
    queue.finish(queue.claim().id)
    again = queue.enqueue(REPO, sender="github", delivery_id="same", commit="a" * 40)
    assert again.status == "duplicate" and again.job_id == first.job_id
    assert queue.claim() is None
    # The same id from another sender is another delivery.
    assert queue.enqueue(REPO, sender="gitlab", delivery_id="same").status == "queued"


def test_already_published_commit_is_not_run_again(queue):
    queue.enqueue(REPO, delivery_id="d1", sender="github", commit="b" * 40)
    queue.finish(queue.claim().id, published_commit="b" * 40)
    assert queue.enqueue(REPO, delivery_id="d2", sender="github", commit="b" * 40).status == "published"
    assert queue.claim() is None
    assert queue.enqueue(REPO, delivery_id="d3", sender="github", commit="c" * 40).status == "queued"


def test_a_burst_coalesces_into_one_waiting_job_with_the_newest_commit(queue):
    running = queue.enqueue(REPO, sender="github", delivery_id="d0", commit="0" * 39 + "1")
    queue.claim()
    ids = {queue.enqueue(REPO, sender="github", delivery_id=f"d{i}", commit=f"{i:040x}").job_id for i in range(2, 52)}
    assert len(ids) == 1 and running.job_id not in ids
    waiting = queue.get(ids.pop())
    assert waiting.commit == f"{51:040x}" and waiting.deliveries == 50
    assert queue.counts() == {RUNNING: 1, QUEUED: 1}


def test_one_running_job_per_repository_but_other_repositories_proceed(queue):
    queue.enqueue(REPO)
    first = queue.claim()
    queue.enqueue(REPO)
    queue.enqueue("other/repo")
    second = queue.claim()
    assert second.repository == "other/repo"
    assert queue.claim() is None
    queue.finish(first.id)
    assert queue.claim().repository == REPO


def test_branch_deletion_report_is_never_merged_into_a_publish(queue):
    queue.enqueue(REPO, kind=POLL)
    report = queue.enqueue(REPO, kind=BRANCH_DELETED, sender="github", delivery_id="x")
    assert report.status == "queued"
    push = queue.enqueue(REPO, sender="github", delivery_id="y")
    assert push.status == "coalesced" and push.job_id != report.job_id
    assert queue.get(push.job_id).kind == "push"  # a push upgrades a waiting poll


def test_job_of_a_dead_worker_is_requeued(tmp_path, queue):
    queue.enqueue(REPO, commit="d" * 40)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    import socket
    owner = f"{socket.gethostname()}:{dead.stdout.strip()}"
    assert not owner_alive(owner)
    assert owner_alive(f"{socket.gethostname()}:{os.getpid()}")
    job = queue.claim(owner)
    assert queue.requeue_abandoned() == [job.id]
    assert queue.get(job.id).state == QUEUED
    assert queue.claim().id == job.id


def test_crashed_job_merges_into_a_waiting_one(queue):
    queue.enqueue(REPO)
    crashed = queue.claim("nohost-xyz:1")
    waiting = queue.enqueue(REPO, sender="github", delivery_id="n")
    assert queue.requeue_abandoned(alive=lambda owner: False) == [crashed.id]
    assert queue.get(crashed.id).state == SUPERSEDED
    assert queue.claim().id == waiting.job_id


def test_live_owner_keeps_its_job(queue):
    queue.enqueue(REPO)
    job = queue.claim()
    assert queue.requeue_abandoned() == []
    assert queue.get(job.id).state == RUNNING


def test_queue_survives_reopening(tmp_path):
    first = JobQueue(tmp_path / "s.db")
    queued = first.enqueue(REPO, sender="curl")
    first.close()
    second = JobQueue(tmp_path / "s.db")
    assert second.claim().id == queued.job_id


def test_concurrent_enqueues_from_threads_and_processes_make_one_waiting_job(tmp_path):
    path = tmp_path / "s.db"
    queue = JobQueue(path)
    queue.enqueue(REPO)
    queue.claim()
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
