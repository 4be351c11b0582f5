"""The worker against a real git remote and the zone-file provider: publish, keep the last good
version of a broken zone, report a deleted branch, poll for lost webhooks, refuse unsafe checkouts."""

import time
from pathlib import Path

import pytest

from publisher.config import load_config_text
from publisher.service.jobs import BRANCH_DELETED, DONE, FAILED as JOB_FAILED, POLL, QUEUED
from publisher.service.notify import Notifier
from publisher.outcome import BRANCH_DELETED as RUN_DELETED, FAILED, OK, PROBLEMS
from publisher.service.worker import Worker
from tests.test_fetch import Remote

DATA = Path(__file__).parent / "data" / "service"
ZONE = (DATA / "repo" / "example.test.lua").read_text()


def config_for(tmp_path: Path, remote: Remote, extra: str = ""):
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
{extra}
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


def test_failed_run_is_retried_with_backoff_without_polling_then_given_up(tmp_path):
    remote = Remote(tmp_path / "git")
    remote.commit({"example.test.lua": ZONE}, "First version")
    worker = Worker(config_for(tmp_path, remote, "[jobs]\nretry_delay = 0.4\nmax_attempts = 3"))
    assert worker.config.poll.interval == 0
    remote.link("leak.lua", "/etc/hostname", "symlink out")
    job_id = worker.queue.enqueue(worker.repository).job_id
    run = worker.run_once()
    assert run.status == FAILED and "leak.lua" in run.error
    job = worker.queue.get(job_id)
    assert job.state == QUEUED and job.attempts == 1 and job.not_before == pytest.approx(time.time() + 0.4, abs=0.3)
    assert worker.outbox.pending() == 1
    assert worker.run_once() is None  # waiting out the delay
    time.sleep(0.5)
    again = worker.run_once()
    assert again.status == FAILED and again.job_id == job_id
    assert worker.outbox.pending() == 1  # the same news is not mailed at every retry
    assert worker.queue.get(job_id).not_before - again.finished == pytest.approx(0.8, abs=0.3)  # doubled
    time.sleep(0.9)
    assert worker.run_once().job_id == job_id
    given_up = worker.queue.get(job_id)
    assert given_up.state == JOB_FAILED and "gave up after 3 attempts" in given_up.error
    time.sleep(1.7)
    assert worker.run_once() is None  # never retried forever
    assert worker.poll_once() is not None  # a poll, when configured, still tries the unpublished head
    remote.commit({"example.test.lua": ZONE.replace("192.0.2.1", "192.0.2.2")}, "Another push, same problem")
    worker.queue.enqueue(worker.repository, sender="github", delivery_id="after")
    worker.run_once()
    assert worker.outbox.pending() == 2  # a push is always answered
    worker.close()


def test_a_poison_job_is_retried_with_backoff_then_failed_and_the_queue_moves_on(setup, monkeypatch):
    """A job whose run cannot even be recorded (here: the record raises every time) must not be
    retried at once forever nor keep the jobs behind it waiting."""
    import threading

    from publisher.config import JobsConfig
    from tests.test_service_e2e import wait_until

    tmp_path, remote, worker = setup
    worker.queue.settings = JobsConfig(retry_delay=0.2, max_attempts=3)
    original, attempts = worker.runs.record, []

    def poisoned(run, **kwargs):
        if run.job_id == poison:
            attempts.append(time.monotonic())
            raise ValueError("this job breaks the worker")
        return original(run, **kwargs)

    monkeypatch.setattr(worker.runs, "record", poisoned)
    poison = worker.queue.enqueue(worker.repository).job_id
    stop = threading.Event()
    thread = threading.Thread(target=worker.run_jobs, args=(stop,))
    thread.start()
    try:
        wait_until(lambda: worker.queue.get(poison).state == JOB_FAILED, "the poison job to be given up")
        later = worker.queue.enqueue(worker.repository, sender="github", delivery_id="later").job_id
        wait_until(lambda: worker.queue.get(later).state == DONE, "the next job to run")
    finally:
        stop.set()
        thread.join()
    assert len(attempts) == 3 and "gave up after 3 attempts" in worker.queue.get(poison).error
    gaps = [b - a for a, b in zip(attempts, attempts[1:])]
    assert gaps[0] >= 0.2 and gaps[1] >= 0.4, gaps  # 0.2 s, then doubled
    assert "192.0.2.1" in served(tmp_path)


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
    from publisher.config import JobsConfig
    worker.queue.settings = JobsConfig(retry_delay=0.1)
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


def _worker_in_a_pid_namespace(config_path: Path, log_path: Path):
    """``python -m publisher.service.worker`` as pid 1 of a new PID namespace (as in a container)."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    return subprocess.Popen(["unshare", "--pid", "--fork", "--mount-proc", "--kill-child", sys.executable, "-m",
                             "publisher.service.worker", "--config", str(config_path)],
                            stdout=subprocess.DEVNULL, stderr=log_path.open("ab"), env=env)


def _namespace_init(unshare) -> int:
    """The pid (seen from here) of the process unshare forked: pid 1 inside its namespace."""
    from tests.test_service_e2e import wait_until

    children = Path(f"/proc/{unshare.pid}/task/{unshare.pid}/children")
    return int(wait_until(lambda: children.read_text().split(), "unshare to fork the worker")[0])


def _hanging_first_run(tmp_path: Path):
    """A remote, a config file whose zone check hangs on the first attempt only, and a queued push:
    (config path, queue, job id, marker that appears when the first attempt hangs)."""
    from publisher.service.jobs import JobQueue

    remote = Remote(tmp_path / "git")
    remote.commit({"example.test.lua": ZONE}, "First version")
    marker = tmp_path / "first-check-started"
    check = tmp_path / "check.sh"
    check.write_text(f"if [ ! -e {marker} ]; then touch {marker}; sleep 120; fi\n")
    config_text = f"""
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
check_command = "sh {check}"
[state]
path = "state.db"
[jobs]
lease = 2
"""
    config_path = tmp_path / "config.toml"
    config_path.write_text(config_text)
    config = load_config_text(config_text, base=tmp_path)
    queue = JobQueue(config.state.path)
    job_id = queue.enqueue(config.key, sender="github", delivery_id="1").job_id
    return config_path, queue, job_id, marker, remote, config.key


def test_a_worker_stopped_with_sigterm_hands_its_job_back_at_once(tmp_path):
    import os
    import signal
    import subprocess
    import sys

    from publisher.service.jobs import RUNNING
    from tests.test_service_e2e import wait_until

    config_path, queue, job_id, marker, _, _ = _hanging_first_run(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    worker = subprocess.Popen([sys.executable, "-m", "publisher.service.worker", "--config", str(config_path)],
                              stdout=subprocess.DEVNULL, stderr=(tmp_path / "worker.log").open("ab"), env=env,
                              start_new_session=True)
    try:
        wait_until(marker.exists, "the worker to reach the zone check")
        assert queue.get(job_id).state == RUNNING
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=30) == 0
    finally:
        try:
            os.killpg(worker.pid, signal.SIGKILL)  # the hanging check's sleep, and the worker if still there
        except ProcessLookupError:
            pass
        worker.wait()
    job = queue.get(job_id)
    assert (job.state, job.attempts, job.lease_until) == ("queued", 0, None), (tmp_path / "worker.log").read_text()
    queue.close()


@pytest.mark.skipif(__import__("os").geteuid() != 0, reason="unshare --pid needs root")
def test_kill_9_of_a_worker_in_a_pid_namespace_does_not_wedge_the_queue(tmp_path):
    """The container case: the worker is pid 1 of its PID namespace, killed with -9 mid-run, and a new
    worker (pid 1 again, same host name) starts in a new namespace.  The job is claimed again once
    its lease runs out and finishes."""
    import os
    import signal

    from publisher.service.jobs import RUNNING
    from tests.test_service_e2e import wait_until

    config_path, queue, job_id, marker, remote, repository = _hanging_first_run(tmp_path)
    log_path = tmp_path / "worker.log"
    first = _worker_in_a_pid_namespace(config_path, log_path)
    second = None
    try:
        wait_until(marker.exists, "the first worker to reach the zone check")
        running = queue.get(job_id)
        assert running.state == RUNNING and running.claimed_by.split(":")[1] == "1", running  # pid 1 in there
        os.kill(_namespace_init(first), signal.SIGKILL)
        assert first.wait(timeout=30) != 0
        wait_until(lambda: queue.stuck_since() is not None, "the dead worker's lease to run out")
        second = _worker_in_a_pid_namespace(config_path, log_path)
        finished = wait_until(lambda: (job := queue.get(job_id)).state not in (RUNNING, "queued") and job,
                              "the job to finish in the new worker", timeout=60)
        assert finished.state == DONE, (finished, log_path.read_text()[-3000:])
        assert finished.attempts == 2 and finished.claimed_by.split(":")[1] == "1"
        assert "192.0.2.1" in served(tmp_path)
        later = queue.enqueue(repository, sender="github", delivery_id="2", commit=remote.commit(
            {"example.test.lua": ZONE.replace("192.0.2.1", "192.0.2.9")}, "Second")).job_id
        wait_until(lambda: queue.get(later).state == DONE, "the next push to be published")
        assert "192.0.2.9" in served(tmp_path)
    finally:
        for unshare in (first, second):
            if unshare is not None and unshare.poll() is None:
                os.kill(_namespace_init(unshare), signal.SIGKILL)
                unshare.wait(timeout=30)
        queue.close()


def test_repeated_runs_do_not_grow_the_database_without_bound(tmp_path):
    """Runs, jobs, delivery ids and sent mail beyond [retention] are pruned on the worker's schedule
    and their pages given back: the file stops growing however many runs follow."""
    import sqlite3

    from publisher.model import Change
    from publisher.service.notify import MAIL
    from publisher.outcome import ZoneOutcome
    from publisher.service.runs import RunRecord

    remote = Remote(tmp_path / "git")
    remote.commit({"example.test.lua": ZONE}, "First version")
    worker = Worker(config_for(tmp_path, remote, "[retention]\nkeep_days = 1\nkeep_newest = 5"))
    database = tmp_path / "state.db"
    changes = tuple(Change("create", f"host{i}.example.test.", "A", 300, (), (f"192.0.2.{i % 250}",))
                    for i in range(2000))

    def replayed_delivery(n: int) -> None:
        """What a replayed push leaves behind: a delivery id, a job, a run with a big plan, a mail."""
        job_id = worker.queue.enqueue(worker.repository, sender="github", delivery_id=f"replay-{n}").job_id
        worker.queue.claim(worker.identity)
        now = time.time()
        run_id = worker.runs.record(RunRecord(worker.repository, "push", OK, now, now, job_id=job_id,
                                              plan_markdown="x" * 50_000,
                                              zones=(ZoneOutcome("example.test.", "files", "applied", changes),)))
        worker.queue.finish(job_id, run_id=run_id)
        worker.outbox.mark_sent(worker.outbox.add(MAIL, ["ops@example.org"], b"m" * 20_000, run_id=run_id))

    def size() -> int:
        return sum(path.stat().st_size for path in tmp_path.glob("state.db*"))

    sizes, unpruned = [], []
    for cycle in range(12):
        for n in range(10):
            replayed_delivery(cycle * 10 + n)
        unpruned.append(size())
        assert worker.prune_once(now=time.time() + 2 * 86400) > 0  # two days on: all beyond the newest 5 go
        sizes.append(size())
    assert sizes[-1] < unpruned[-1] * 0.6, (unpruned, sizes)  # 15 runs down to 5: the file shrinks
    with sqlite3.connect(database) as db:
        counts = [db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
                  for table in ("runs", "jobs", "job_deliveries", "outbox")]
        assert db.execute("PRAGMA auto_vacuum").fetchone()[0] == 2  # incremental
        assert db.execute("PRAGMA freelist_count").fetchone()[0] == 0  # every freed page given back
    assert counts == [5, 5, 5, 5]
    assert max(sizes[3:]) <= sizes[2] * 1.2, sizes  # flat after the first cycles, not 12 times larger
    assert sizes[-1] < 3 * 1024 * 1024, sizes  # about five runs' worth
    worker.close()


def test_an_old_state_file_without_auto_vacuum_is_converted_and_shrinks(tmp_path):
    import sqlite3

    database = tmp_path / "state.db"
    old = sqlite3.connect(database)  # as the first version made it: no auto-vacuum
    old.execute("CREATE TABLE filler (data BLOB)")
    old.executemany("INSERT INTO filler VALUES (?)", [(b"x" * 100_000,) for _ in range(50)])
    old.commit()
    old.execute("DELETE FROM filler")
    old.commit()
    old.close()
    before = database.stat().st_size
    remote = Remote(tmp_path / "git")
    remote.commit({"example.test.lua": ZONE}, "First version")
    worker = Worker(config_for(tmp_path, remote))
    worker.prune_once()
    assert database.stat().st_size < before / 5
    with sqlite3.connect(database) as db:
        assert db.execute("PRAGMA auto_vacuum").fetchone()[0] == 2
    worker.close()
