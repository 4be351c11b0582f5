"""The background side of the service: run queued jobs, poll the branches, send notifications.

One ``Worker`` per service (``zone-publisher serve`` starts it in a dedicated process, never once per
gunicorn worker).  A bounded pool of ``[jobs] workers`` job threads runs the repositories' jobs: runs
of different repositories side by side, one repository's runs one at a time (the queue never lets a
repository have two live leases), the longest-waiting job first, so a repository that always has
work, or whose Lua spins to its CPU limit, holds one thread of the pool and never the queue (Lua
runs in sandbox processes, so the threads evaluate in parallel).  Each job runs with its repository's
view of the configuration (``Config.view``): its source, git cache, checkout lock, providers, mail
recipients and forge.  A run is: fetch the configured branch -> ``publish()``
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
from publisher.service.jobs import (BRANCH_DELETED, DONE, FAILED as JOB_FAILED, POLL, PUSH, QUEUED, SUPERSEDED,
                                    Enqueued, Heartbeat, Job, JobQueue, worker_identity)
from publisher.service import forge_events
from publisher.service.forge import ForgeStore
from publisher.service.notify import (FORGE, MAIL, WEBHOOK, DeliveryError, Notifier, Outbox, OutboxItem,
                                      RejectedDelivery, deliver_mail, deliver_webhook, problem_fingerprint,
                                      queue_run_notifications)
from publisher.outcome import BRANCH_DELETED as RUN_BRANCH_DELETED, FAILED, OK, PLANNED
from publisher.service.runs import RunRecord, RunStore

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


class Worker:
    """Claims jobs from the queue and runs them, ``[jobs] workers`` at a time, each with its
    repository's view of the configuration."""

    def __init__(self, config: Config, *, status_url: str = "", providers=None,
                 notify_delays: tuple[float, float] = (2.0, 600.0)) -> None:
        from publisher.publish.ownership import OwnershipStore
        from publisher.publish.state import StateStore

        self.config = config  # the instance's configuration; each repository's is ``self.views[key]``
        self.views: dict[str, Config] = {view.key: view for view in config.views()}
        self.repository = config.views()[0].key  # the one repository of a one-repository instance
        self.queue = JobQueue(config.state.location, config.jobs)
        self.identity = worker_identity()  # the owner named on this worker's leases (every job thread's)
        self.runs = RunStore(config.state.location)
        self.outbox = Outbox(config.state.location)
        self.state = StateStore(config.state.location)
        self.ownership = OwnershipStore(config.state.location)
        self.forge_store = ForgeStore(config.state.location) if any(v.forge for v in self.views.values()) else None
        self.status_url = status_url
        self._forge_deliveries = {key: forge_events.forge_deliveries(view, self.forge_store, status_url).get(FORGE)
                                  for key, view in self.views.items()}
        self.notifier = Notifier(self.outbox, config.views()[0].notify, initial_delay=notify_delays[0],
                                 max_delay=notify_delays[1],
                                 deliveries={MAIL: self._deliver_mail, WEBHOOK: self._deliver_webhook,
                                             FORGE: self._deliver_forge})
        self.providers = providers
        self.wake = threading.Event()
        # Per repository: the job threads and its poller share its git cache.
        self._checkout_locks = {key: threading.Lock() for key in self.views}
        # Drift checks plan every zone: at most a pool's worth at once, however many repositories poll.
        self._poll_slots = threading.BoundedSemaphore(max(1, config.jobs.workers))

    def close(self) -> None:
        for store in (self.queue, self.runs, self.outbox, self.state, self.ownership, self.forge_store):
            if store is not None:
                store.close()

    @property
    def checkout_lock(self) -> threading.Lock:
        """The one repository's checkout lock (one-repository form)."""
        return self._checkout_locks[self.repository]

    def checkout_lock_of(self, view: Config) -> threading.Lock:
        return self._checkout_locks.setdefault(view.key, threading.Lock())

    def view_of(self, queue_key: str) -> Config | None:
        """The configuration of the repository a job (or a message) is filed under; None when that
        repository is no longer configured.  Messages from before several repositories name none."""
        key = forge_events.repository_of(queue_key)
        if not key and len(self.views) == 1:
            return self.config.views()[0]
        return self.views.get(key)

    # -- deliveries: each message through its own repository's settings -------------------------

    def _settings_of(self, item: OutboxItem) -> Config:
        view = self.view_of(item.repository)
        if view is None:
            raise RejectedDelivery("its repository is no longer in the configuration")
        return view

    def _deliver_mail(self, item: OutboxItem) -> None:
        deliver_mail(item, self._settings_of(item).notify)

    def _deliver_webhook(self, item: OutboxItem) -> None:
        deliver_webhook(item, self._settings_of(item).notify)

    def _deliver_forge(self, item: OutboxItem) -> None:
        delivery = self._forge_deliveries.get(self._settings_of(item).key)
        if delivery is None:  # kept: a [forge] table added back delivers it
            raise DeliveryError("its repository has no [forge] table")
        delivery(item)

    # -- jobs -----------------------------------------------------------------------------------

    def run_once(self) -> RunRecord | None:
        """Claim and run one job under a lease; None when there is nothing to run."""
        while True:
            job = self.queue.claim(self.identity)
            if job is None:
                return None
            view = self.view_of(job.repository)
            if view is None:  # its [[repository]] was removed from the configuration
                self._refuse_unconfigured(job)
                continue
            with Heartbeat(self.queue, job.id, self.identity) as heartbeat:
                try:
                    if job.kind == forge_events.PLAN:  # a pull request's plan: never applied
                        return forge_events.run_request_plan(self, job, view)
                    if job.kind == PUSH and self.already_published(job.commit, view):
                        # A late webhook of a burst: the run that published the head already included it.
                        self.queue.finish(job.id, state=SUPERSEDED, error="commit already published")
                        if self.forge_store is not None and view.forge is not None:
                            forge_events.queue_skipped_statuses(self.forge_store, self.outbox, view.forge, job)
                        log.info("job %d skipped: commit %s is already published", job.id, (job.commit or "")[:12])
                        continue
                    run = self._run_claimed(job, view)
                except Exception as error:  # the run could not be recorded (a database error, a bug)
                    log.exception("job %d: attempt %d broke off", job.id, job.attempts)
                    self._retry_later(job, f"internal error: {type(error).__name__}: {str(error)[:500]}")
                    return None
                if heartbeat.lost:
                    log.warning("job %d ran past its lease; another worker may have run it too", job.id)
                return run

    def _refuse_unconfigured(self, job: Job) -> None:
        error = (f"repository {forge_events.repository_of(job.repository)!r} is no longer in the configuration; "
                 "the job was not run")
        log.warning("job %d: %s", job.id, error)
        self.queue.finish(job.id, state=JOB_FAILED, error=error)

    def _retry_later(self, job: Job, error: str) -> None:
        try:
            state = self.queue.retry(job.id, error=error)
        except Exception:  # the database refuses writes: the lease runs out and the job comes back
            log.exception("job %d: cannot requeue it now; it is claimed again when its lease runs out", job.id)
            return
        log.warning("job %d: %s", job.id, "queued for a retry" if state == QUEUED else state)

    def _run_claimed(self, job: Job, view: Config | None = None) -> RunRecord:
        view = view or self.config.views()[0]
        log.info("job %d (%s of %s from %s, attempt %d) started", job.id, job.kind, view.name or "the repository",
                 job.sender or "-", job.attempts)
        try:
            run, published = self.execute(job, view)
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
                queued.extend(queue_run_notifications(self.outbox, replace(run, id=run_id), view.notify,
                                                      status_url=self.status_url, db=db))
            if self.forge_store is not None and view.forge is not None and forge_events.queue_run_statuses(
                    self.forge_store, self.outbox, view.forge, replace(run, id=run_id), db):
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

    def already_published(self, commit: str | None, view: Config | None = None) -> bool:
        """True when ``commit`` is the published commit, or an ancestor of it while the branch still
        points at the published commit (after a force-push back to an older commit, it must run)."""
        view = view or self.config.views()[0]
        published = self.queue.published_commit(view.key)
        if not commit or not published:
            return False
        if commit == published:
            return True
        source = view.source
        if not source.url or not is_ancestor(Path(source.cache or "var/cache/repository"), commit, published):
            return False
        try:
            return remote_head(source, view.fetch) == published
        except FetchError:
            return False

    def repeats_last_news(self, run: RunRecord, *, retrying: bool = False) -> bool:
        """A poll run or a retry whose problems are exactly those of the previous run of the same
        repository (a server still down, a zone still broken) is recorded but not mailed again; a
        push's first run is always answered."""
        if (run.trigger != POLL and not retrying) or not run.has_problems:
            return False
        # The previous deploy run filed under exactly this key (not one of its requests' plans).
        last = self.runs.last_runs([run.repository]).get(run.repository)
        previous = self.runs.get(last.id) if last is not None else None
        return previous is not None and problem_fingerprint(previous) == problem_fingerprint(run)

    def execute(self, job: Job, view: Config | None = None) -> tuple[RunRecord, str | None]:
        """Run ``job``; returns its record and the commit to mark published (None: run it again later)."""
        view = view or self.config.views()[0]
        started = time.time()
        source = view.source
        base = RunRecord(job.repository, job.kind, OK, started, started, commit=job.commit, sender=job.sender,
                         job_id=job.id)
        if job.kind == BRANCH_DELETED:
            message = (f"the deploy branch {source.branch} was deleted at the forge ({job.sender or 'unknown sender'});"
                       " nothing was published and the last published zones stay served")
            return replace(base, status=RUN_BRANCH_DELETED, finished=time.time(), error=message), None
        with self.checkout_lock_of(view):
            return self._publish(job, base, view)

    def _publish(self, job: Job, base: RunRecord, view: Config) -> tuple[RunRecord, str | None]:
        from publisher.publish.orchestrator import publish

        source = view.source
        timings: dict[str, float] = {}
        mark = time.perf_counter()
        if source.url:
            try:
                checkout = fetch(source, limits=view.fetch)
            except FetchError as error:
                return replace(base, status=FAILED, finished=time.time(), error=redact(str(error)),
                               timings={"fetch": time.perf_counter() - mark}), None
        else:
            checkout = _local_checkout(Path(source.path))
        timings["fetch"] = time.perf_counter() - mark
        base = replace(base, commit=checkout.commit or job.commit, author_name=checkout.author_name,
                       author_email=checkout.author_email, subject=checkout.subject)
        report = publish(view, checkout.path, apply=True, state=self.state, providers=self.providers,
                         ownership=self.ownership)
        timings.update(report.timings)
        status = report.status
        plan_markdown = report.plan.to_markdown() if any(o.changes for o in report.outcomes) else ""
        run = replace(base, status=status, finished=time.time(), zones=report.outcomes, findings=tuple(report.findings),
                      timings=timings, error=report.error, plan_markdown=plan_markdown)
        return run, (checkout.commit or None) if status != FAILED else None

    # -- polling --------------------------------------------------------------------------------

    def poll_once(self, view: Config | None = None) -> Enqueued | None:
        """Queue a run when the branch head moved past the last published commit (a lost webhook,
        or a failed run to repair), or when a provider no longer serves what was published (drift)."""
        view = view or self.config.views()[0]
        source = view.source
        if self.queue.pending(view.key):
            return None
        head = None
        if source.url:
            try:
                head = remote_head(source, view.fetch)
            except FetchError as error:
                log.warning("poll%s failed: %s", _of(view), redact(str(error)))
                return None
            if head is None:
                log.warning("poll%s: branch %s not found at %s", _of(view), source.branch, source.display_url)
                return None
            if head != self.queue.published_commit(view.key):
                return self._enqueue_poll(head, "head %s not published yet" % head[:12], view)
        return self.check_drift(head, view)

    def check_drift(self, head: str | None, view: Config | None = None) -> Enqueued | None:
        """Plan (never apply) against the providers; queue a run when a zone would change safely or a
        provider was edited outside the publisher.  Blocked or broken zones are left to the next push,
        so a standing problem does not mail someone every poll."""
        from publisher.publish.orchestrator import publish

        view = view or self.config.views()[0]
        with self._poll_slots, self.checkout_lock_of(view):
            try:
                checkout = fetch(view.source, limits=view.fetch) if view.source.url else _local_checkout(
                    Path(view.source.path))
            except FetchError as error:
                log.warning("poll%s: %s", _of(view), redact(str(error)))
                return None
            report = publish(view, checkout.path, apply=False, state=self.state, providers=self.providers,
                             ownership=self.ownership)
        drifted = sorted({f"{o.zone} on {o.provider}" for o in report.outcomes
                          if (o.status == PLANNED and o.changes)
                          or any(f.code == "zone-changed-outside" for f in o.findings)})
        if not drifted:
            return None
        return self._enqueue_poll(head or checkout.commit or None, "drift: " + ", ".join(drifted[:5]), view)

    def _enqueue_poll(self, commit: str | None, why: str, view: Config | None = None) -> Enqueued:
        view = view or self.config.views()[0]
        queued = self.queue.enqueue(view.key, kind=POLL, sender="poll", ref=f"refs/heads/{view.source.branch}",
                                    commit=commit)
        log.info("poll%s: %s; job %s %s", _of(view), why, queued.job_id, queued.status)
        self.wake.set()
        return queued

    # -- loops ----------------------------------------------------------------------------------

    def run_jobs(self, stop: threading.Event, idle: float = 0.05) -> None:
        """One job thread of the pool (``start`` runs ``[jobs] workers`` of them)."""
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

    def poll_loop(self, stop: threading.Event, view: Config | None = None) -> None:
        """Poll one repository's branch, at its own ``[poll] interval``."""
        # One poll at start-up whatever the interval: pushes that arrived while the service was
        # down are caught at once, and a fresh `make run` publishes its zones without a push.
        view = view or self.config.views()[0]
        interval = view.poll.interval
        while not stop.is_set():
            try:
                self.poll_once(view)
            except Exception:
                log.exception("poller%s error", _of(view))
            if interval <= 0 or stop.wait(interval):
                return

    def start(self, stop: threading.Event) -> list[threading.Thread]:
        """Start the pool of job threads, one poller per repository, the notification and retention
        threads.  Jobs a dead worker left running are claimed again once their lease runs out."""
        threads = [threading.Thread(target=self.run_jobs, args=(stop,), name=f"jobs-{number}", daemon=True)
                   for number in range(1, max(1, self.config.jobs.workers) + 1)]
        threads += [threading.Thread(target=self.poll_loop, args=(stop, view), name=f"poll-{view.name or 'source'}",
                                     daemon=True) for view in self.views.values()]
        threads += [threading.Thread(target=self.retention_loop, args=(stop,), name="retention", daemon=True),
                    threading.Thread(target=self.notifier.run, args=(stop,), name="notify", daemon=True)]
        for thread in threads:
            thread.start()
        return threads


def _of(view: Config) -> str:
    """`` of NAME`` in a log line about a named repository (nothing in the one-repository form)."""
    return f" of {view.name}" if view.name else ""

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
    if config.repositories:
        log.info("worker started: %d repositories, %d job thread(s)", len(config.repositories), config.jobs.workers)
    else:
        log.info("worker started (source %s, %s)", config.source.display_url or config.source.path,
                 f"poll at start-up, then every {config.poll.interval} s" if config.poll.interval
                 else "poll at start-up only")
    while not stop.wait(1.0):
        if args.parent and os.getppid() != args.parent:
            log.warning("serve process is gone; worker exits")
            break
    stop.set()
    try:  # a deliberate stop hands every running job back now; a restart need not wait for the leases
        released = worker.queue.release(worker.identity)
        if released:
            log.info("worker stopping: job(s) %s handed back to the queue", released)
    except Exception:
        log.exception("cannot hand the running job back; it is claimed again when its lease runs out")
    return 0


if __name__ == "__main__":
    sys.exit(main())
