"""The background side of the service: run queued jobs, poll the branch, send notifications.

One ``Worker`` per service (``zone-publisher serve`` starts it in a dedicated process, never once per
gunicorn worker), so runs never overlap.  A run is: fetch the configured branch -> ``publish()``
(evaluate, validate, plan, apply, each zone isolated) -> store the run record -> queue the
notifications in the outbox -> mark the job done.  Each step is durable before the next starts:
a crash anywhere means the job is run again once its lease runs out, never that a mail is lost.
A failed run is retried with a growing delay (``[jobs]``), polling or not; old runs, jobs, delivery
ids and sent mail are pruned on a schedule (``[retention]``).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

from publisher.config import Config, load_config
from publisher.redaction import redact
from publisher.service.fetch import Checkout, FetchError, fetch, is_ancestor, remote_head
from publisher.service.jobs import (BRANCH_DELETED, DONE, POLL, PUSH, QUEUED, SUPERSEDED, Enqueued, Heartbeat, Job,
                                    JobQueue, source_key, worker_identity)
from publisher.service import forge_events
from publisher.service.forge import ForgeStore
from publisher.service.notify import Notifier, Outbox, problem_fingerprint, queue_run_notifications
from publisher.service.runs import BRANCH_DELETED as RUN_BRANCH_DELETED, FAILED, OK, PROBLEMS, RunRecord, RunStore, ZoneOutcome

log = logging.getLogger("publisher.service.worker")


def _local_checkout(path: Path) -> Checkout:
    """A ``[source] path`` directory: published as it is; commit facts when it is inside a git work tree."""
    try:
        import git
        repo = git.Repo(path, search_parent_directories=True)
        head = repo.head.commit
        return Checkout(path, head.hexsha, head.author.name or "", head.author.email or "", head.summary)
    except Exception:  # not a git work tree, or no commit yet: publish the directory anyway
        return Checkout(path, "", "", "", "")


def run_status(report) -> str:
    """OK, PROBLEMS or FAILED for a ``PublishReport``."""
    if report.error or any(o.status == "failed" for o in report.outcomes):
        return FAILED
    return PROBLEMS if report.has_problems else OK


class Worker:
    """Claims jobs from the queue and runs them, one at a time."""

    def __init__(self, config: Config, *, status_url: str = "", providers=None,
                 notify_delays: tuple[float, float] = (2.0, 600.0)) -> None:
        from publisher.publish.state import StateStore

        self.config = config
        self.repository = source_key(config.source)
        self.queue = JobQueue(config.state.location, config.jobs)
        self.identity = worker_identity()  # the owner named on this worker's leases
        self.runs = RunStore(config.state.location)
        self.outbox = Outbox(config.state.location)
        self.state = StateStore(config.state.location)
        self.forge_store = ForgeStore(config.state.location) if config.forge else None
        self.notifier = Notifier(self.outbox, config.notify, initial_delay=notify_delays[0],
                                 max_delay=notify_delays[1],
                                 deliveries=forge_events.forge_deliveries(config, self.forge_store, status_url))
        self.status_url = status_url
        self.providers = providers
        self.wake = threading.Event()
        self.checkout_lock = threading.Lock()  # the job thread and the poller share the git cache

    def close(self) -> None:
        for store in (self.queue, self.runs, self.outbox, self.state, self.forge_store):
            if store is not None:
                store.close()

    # -- jobs -----------------------------------------------------------------------------------

    def run_once(self) -> RunRecord | None:
        """Claim and run one job under a lease; None when there is nothing to run."""
        while True:
            job = self.queue.claim(self.identity)
            if job is None:
                return None
            with Heartbeat(self.queue, job.id, self.identity) as heartbeat:
                try:
                    if job.kind == forge_events.PLAN:  # a pull request's plan: never applied
                        return forge_events.run_request_plan(self, job)
                    if job.kind == PUSH and self.already_published(job.commit):
                        # A late webhook of a burst: the run that published the head already included it.
                        self.queue.finish(job.id, state=SUPERSEDED, error="commit already published")
                        if self.forge_store is not None:
                            forge_events.queue_skipped_statuses(self.forge_store, self.outbox, self.config.forge, job)
                        log.info("job %d skipped: commit %s is already published", job.id, (job.commit or "")[:12])
                        continue
                    run = self._run_claimed(job)
                except Exception as error:  # the run could not be recorded (a database error, a bug)
                    log.exception("job %d: attempt %d broke off", job.id, job.attempts)
                    self._retry_later(job, f"internal error: {type(error).__name__}: {str(error)[:500]}")
                    return None
                if heartbeat.lost:
                    log.warning("job %d ran past its lease; another worker may have run it too", job.id)
                return run

    def _retry_later(self, job: Job, error: str) -> None:
        try:
            state = self.queue.retry(job.id, error=error)
        except Exception:  # the database refuses writes: the lease runs out and the job comes back
            log.exception("job %d: cannot requeue it now; it is claimed again when its lease runs out", job.id)
            return
        log.warning("job %d: %s", job.id, "queued for a retry" if state == QUEUED else state)

    def _run_claimed(self, job: Job) -> RunRecord:
        log.info("job %d (%s from %s, attempt %d) started", job.id, job.kind, job.sender or "-", job.attempts)
        try:
            run, published = self.execute(job)
        except Exception as error:  # a bug must not kill the loop nor leave the job running
            log.exception("job %d crashed", job.id)
            now = time.time()
            run, published = RunRecord(job.repository, job.kind, FAILED, now, now, commit=job.commit,
                                       sender=job.sender, error=redact(f"internal error: {type(error).__name__}: {error}"),
                                       job_id=job.id), None
        queued: list[int] = []
        notify = not self.repeats_last_news(run, retrying=job.attempts > 1)
        outcome: list[str] = []

        def mail_and_finish(db, run_id: int) -> None:
            # One transaction: the record, its mail and the job's end commit together, so a crash
            # leaves either all of them (mail will be sent) or none (the job runs again).
            if notify:
                queued.extend(queue_run_notifications(self.outbox, replace(run, id=run_id), self.config.notify,
                                                      status_url=self.status_url, db=db))
            if self.forge_store is not None and forge_events.queue_run_statuses(
                    self.forge_store, self.outbox, self.config.forge, replace(run, id=run_id), db):
                queued.append(run_id)
            if run.status == FAILED:  # fetch, a provider or the publisher failed: try again later
                outcome.append(self.queue.retry(job.id, error=run.error or "run failed", run_id=run_id, db=db))
            else:
                self.queue.finish(job.id, state=DONE, run_id=run_id, error=run.error or None,
                                  published_commit=published, db=db)
                outcome.append(DONE)

        run_id = self.runs.record(run, then=mail_and_finish)
        run = replace(run, id=run_id)
        if queued:
            self.notifier.wake.set()
        retry = ""
        if outcome == [QUEUED]:
            retry = f"; retry in {self.config.jobs.retry_after(job.attempts):g} s"
        log.info("job %d finished: run %d %s (commit %s), job %s%s", job.id, run_id, run.status,
                 (run.commit or "-")[:12], outcome[0], retry)
        return run

    def already_published(self, commit: str | None) -> bool:
        """True when ``commit`` is the published commit, or an ancestor of it while the branch still
        points at the published commit (after a force-push back to an older commit, it must run)."""
        published = self.queue.published_commit(self.repository)
        if not commit or not published:
            return False
        if commit == published:
            return True
        source = self.config.source
        if not source.url or not is_ancestor(Path(source.cache or "var/cache/repository"), commit, published):
            return False
        try:
            return remote_head(source, self.config.fetch) == published
        except FetchError:
            return False

    def repeats_last_news(self, run: RunRecord, *, retrying: bool = False) -> bool:
        """A poll run or a retry whose problems are exactly those of the previous run (a server still
        down, a zone still broken) is recorded but not mailed again; a push's first run is always
        answered."""
        if (run.trigger != POLL and not retrying) or not run.has_problems:
            return False
        previous = self.runs.recent(1)
        return bool(previous) and problem_fingerprint(previous[0]) == problem_fingerprint(run)

    def execute(self, job: Job) -> tuple[RunRecord, str | None]:
        """Run ``job``; returns its record and the commit to mark published (None: run it again later)."""
        started = time.time()
        source = self.config.source
        base = RunRecord(job.repository, job.kind, OK, started, started, commit=job.commit, sender=job.sender,
                         job_id=job.id)
        if job.kind == BRANCH_DELETED:
            message = (f"the deploy branch {source.branch} was deleted at the forge ({job.sender or 'unknown sender'});"
                       " nothing was published and the last published zones stay served")
            return replace(base, status=RUN_BRANCH_DELETED, finished=time.time(), error=message), None
        with self.checkout_lock:
            return self._publish(job, base)

    def _publish(self, job: Job, base: RunRecord) -> tuple[RunRecord, str | None]:
        from publisher.publish.orchestrator import publish

        source = self.config.source
        timings: dict[str, float] = {}
        mark = time.perf_counter()
        if source.url:
            try:
                checkout = fetch(source, limits=self.config.fetch)
            except FetchError as error:
                return replace(base, status=FAILED, finished=time.time(), error=redact(str(error)),
                               timings={"fetch": time.perf_counter() - mark}), None
        else:
            checkout = _local_checkout(Path(source.path))
        timings["fetch"] = time.perf_counter() - mark
        base = replace(base, commit=checkout.commit or job.commit, author_name=checkout.author_name,
                       author_email=checkout.author_email, subject=checkout.subject)
        report = publish(self.config, checkout.path, apply=True, state=self.state, providers=self.providers)
        timings.update(report.timings)
        zones = tuple(ZoneOutcome(o.zone, o.provider, o.status, tuple(o.changes), tuple(o.findings), o.error)
                      for o in report.outcomes)
        status = run_status(report)
        plan_markdown = report.plan.to_markdown() if any(o.changes for o in report.outcomes) else ""
        run = replace(base, status=status, finished=time.time(), zones=zones, findings=tuple(report.findings),
                      timings=timings, error=report.error, plan_markdown=plan_markdown)
        return run, (checkout.commit or None) if status != FAILED else None

    # -- polling --------------------------------------------------------------------------------

    def poll_once(self) -> Enqueued | None:
        """Queue a run when the branch head moved past the last published commit (a lost webhook,
        or a failed run to repair), or when a provider no longer serves what was published (drift)."""
        source = self.config.source
        if self.queue.pending(self.repository):
            return None
        head = None
        if source.url:
            try:
                head = remote_head(source, self.config.fetch)
            except FetchError as error:
                log.warning("poll failed: %s", redact(str(error)))
                return None
            if head is None:
                log.warning("poll: branch %s not found at %s", source.branch, source.display_url)
                return None
            if head != self.queue.published_commit(self.repository):
                return self._enqueue_poll(head, "head %s not published yet" % head[:12])
        return self.check_drift(head)

    def check_drift(self, head: str | None) -> Enqueued | None:
        """Plan (never apply) against the providers; queue a run when a zone would change safely or a
        provider was edited outside the publisher.  Blocked or broken zones are left to the next push,
        so a standing problem does not mail someone every poll."""
        from publisher.publish.orchestrator import publish

        with self.checkout_lock:
            try:
                checkout = fetch(self.config.source, limits=self.config.fetch) if self.config.source.url else _local_checkout(
                    Path(self.config.source.path))
            except FetchError as error:
                log.warning("poll: %s", redact(str(error)))
                return None
            report = publish(self.config, checkout.path, apply=False, state=self.state, providers=self.providers)
        drifted = sorted({f"{o.zone} on {o.provider}" for o in report.outcomes
                          if (o.status == "planned" and o.changes)
                          or any(f.code == "zone-changed-outside" for f in o.findings)})
        if not drifted:
            return None
        return self._enqueue_poll(head or checkout.commit or None, "drift: " + ", ".join(drifted[:5]))

    def _enqueue_poll(self, commit: str | None, why: str) -> Enqueued:
        source = self.config.source
        queued = self.queue.enqueue(self.repository, kind=POLL, sender="poll", ref=f"refs/heads/{source.branch}",
                                    commit=commit)
        log.info("poll: %s; job %s %s", why, queued.job_id, queued.status)
        self.wake.set()
        return queued

    # -- loops ----------------------------------------------------------------------------------

    def run_jobs(self, stop: threading.Event, idle: float = 0.05) -> None:
        # The web workers are other processes: the queue is looked at every ``idle`` seconds with a
        # read-only query, which keeps push-to-publish latency low without holding the write lock.
        errors = 0
        while not stop.is_set():
            try:
                if self.queue.has_claimable() and self.run_once() is not None:
                    errors = 0
                    continue
                errors = 0
            except Exception:  # the database may be unavailable for a while: keep going, more slowly
                errors += 1
                log.exception("worker loop error")
            self.wake.wait(min(idle * 2 ** errors, 10.0))
            self.wake.clear()

    # -- retention ------------------------------------------------------------------------------

    def prune_once(self, now: float | None = None) -> int:
        """Delete what ``[retention]`` no longer keeps, then give the space back; returns rows deleted."""
        now = time.time() if now is None else now
        keep = self.config.retention
        before = now - keep.keep_days * 86400
        deleted = (self.runs.prune(before, keep.keep_newest) + self.queue.prune(before, keep.keep_newest)
                   + self.outbox.prune(before, keep.keep_newest))
        self.runs.compact()
        if deleted:
            log.info("retention: pruned %d row(s) older than %g days beyond the newest %d", deleted,
                     keep.keep_days, keep.keep_newest)
        return deleted

    def retention_loop(self, stop: threading.Event) -> None:
        while True:
            try:
                self.prune_once()
            except Exception:
                log.exception("retention error")
            if stop.wait(self.config.retention.prune_interval):
                return

    def poll_loop(self, stop: threading.Event) -> None:
        # One poll at start-up whatever the interval: pushes that arrived while the service was
        # down are caught at once, and a fresh `make run` publishes its zones without a push.
        interval = self.config.poll.interval
        while not stop.is_set():
            try:
                self.poll_once()
            except Exception:
                log.exception("poller error")
            if interval <= 0 or stop.wait(interval):
                return

    def start(self, stop: threading.Event) -> list[threading.Thread]:
        """Start the job, poll, notification and retention threads.  Jobs a dead worker left running
        are claimed again once their lease runs out."""
        threads = [threading.Thread(target=self.run_jobs, args=(stop,), name="jobs", daemon=True),
                   threading.Thread(target=self.poll_loop, args=(stop,), name="poll", daemon=True),
                   threading.Thread(target=self.retention_loop, args=(stop,), name="retention", daemon=True),
                   threading.Thread(target=self.notifier.run, args=(stop,), name="notify", daemon=True)]
        for thread in threads:
            thread.start()
        return threads


def main(argv: list[str] | None = None) -> int:
    """``python -m publisher.service.worker``: the dedicated background process ``serve`` starts."""
    parser = argparse.ArgumentParser(prog="publisher.service.worker")
    parser.add_argument("--config")
    parser.add_argument("--status-url", default="")
    parser.add_argument("--parent", type=int, default=0, help="exit when this process is gone")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s [worker %(process)d] %(levelname)s %(name)s: %(message)s")
    config = load_config(args.config) if args.config else Config.default()
    worker = Worker(config, status_url=args.status_url)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    worker.start(stop)
    log.info("worker started (source %s, %s)", config.source.display_url or config.source.path,
             f"poll at start-up, then every {config.poll.interval} s" if config.poll.interval
             else "poll at start-up only")
    while not stop.wait(1.0):
        if args.parent and os.getppid() != args.parent:
            log.warning("serve process is gone; worker exits")
            break
    stop.set()
    try:  # a deliberate stop hands the job back now; a restart need not wait for the lease
        released = worker.queue.release(worker.identity)
        if released:
            log.info("worker stopping: job(s) %s handed back to the queue", released)
    except Exception:
        log.exception("cannot hand the running job back; it is claimed again when its lease runs out")
    return 0


if __name__ == "__main__":
    sys.exit(main())
