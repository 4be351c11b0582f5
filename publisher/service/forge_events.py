"""What the web handler and the worker do for ``[forge]``: statuses of pushed commits, plans of
pull requests.

* A push queued as job N: a ``pending`` status on its commit (queued from the request handler, in
  the outbox, so the answer stays fast).  When the run ends: ``success`` or ``failure`` with a
  one-line summary and the run page, on the run's commit and on every commit that was told
  "pending" for that job (a burst coalesced into one run).
* A pull/merge-request event for the deploy branch: a ``plan`` job of its own (queue key
  ``<source>#request/<n>``, so a request's pushes coalesce with each other and never with the
  deploy branch's).  The worker fetches the head the forge keeps for the request from the
  configured remote, plans it with ``plan_request`` (never applying), records the run, and queues
  the request's comment (edited in place later) and a status under ``<context>/plan``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from publisher.config import Config, FetchConfig, ForgeConfig, SourceConfig
from publisher.redaction import redact
from publisher.service.fetch import Checkout, FetchError, fetch
from publisher.database import Connection
from publisher.service.forge import FAILURE, PENDING, SUCCESS, ForgeStore
from publisher.service.jobs import DONE, FAILED as JOB_FAILED, REQUEST_SEPARATOR, Job, JobQueue
from publisher.service.notify import Outbox
from publisher.service.pull_requests import is_full_commit
from publisher.outcome import FAILED, OK
from publisher.service.runs import RunRecord
from publisher.service.senders import Push

log = logging.getLogger(__name__)

PLAN = "plan"  # the job kind (and run trigger) of a pull-request plan
_REQUEST = REQUEST_SEPARATOR


def request_queue_key(repository: str, number: int) -> str:
    """The job queue's key for request ``number`` of the source whose key is ``repository``."""
    return f"{repository}{_REQUEST}{number}"


def request_number(queue_key: str) -> int:
    return int(queue_key.rsplit(_REQUEST, 1)[1])


def repository_of(queue_key: str) -> str:
    """The repository a job or run is filed under: its queue key, less a request's suffix."""
    return queue_key.split(_REQUEST, 1)[0]


def plan_context(forge: ForgeConfig) -> str:
    return f"{forge.context}/plan"


def run_url(forge: ForgeConfig, status_url: str, run_id: int | None) -> str:
    base = (forge.status_url or status_url or "").rstrip("/")
    return f"{base}/runs/{run_id}" if base and run_id is not None else ""


# --- the web side -----------------------------------------------------------------------------

def forge_store(extensions: dict[str, Any], path: str) -> ForgeStore:
    """The web process's store (one per app, made on first use)."""
    store = extensions.get("publisher.forge")
    if store is None:
        store = extensions["publisher.forge"] = ForgeStore(path)
    return store


def queue_push_pending(store: ForgeStore, outbox: Outbox, forge: ForgeConfig, job_id: int, commit: str,
                       repository: str = "") -> None:
    """``pending`` on a pushed commit that job ``job_id`` of ``repository`` will publish."""
    store.queue_status(outbox, commit, PENDING, f"queued as job {job_id}", context=forge.context, job_id=job_id,
                       repository=repository)


def enqueue_request_plan(config: Config, queue: JobQueue, store: ForgeStore, outbox: Outbox, repository: str,
                         push: Push) -> tuple[int, str, dict[str, Any]]:
    """Queue the plan of ``push.request``: (HTTP status, outcome, answer fields)."""
    request, forge = push.request, config.forge
    if forge is None:
        return 200, "ignored", {"reason": "pull-request events need a [forge] table; nothing planned"}
    if not request.wants_plan:
        return 200, "ignored", {"reason": f"{push.sender} request action {request.action!r} needs no plan"}
    if request.base_branch != config.source.branch:
        return 200, "ignored", {"reason": "the request is not for the deploy branch"}
    if request.fork and not forge.plan_forks:
        return 200, "ignored", {"reason": "the request comes from a fork: not planned ([forge] plan_forks = false)"}
    if not config.source.url:
        return 200, "ignored", {"reason": "[source] is a local directory: a request's head cannot be fetched"}
    head = request.head if is_full_commit(request.head) else None
    queued = queue.enqueue(request_queue_key(repository, request.number), kind=PLAN, sender=push.sender,
                           delivery_id=push.delivery_id, ref=request.fetch_ref, commit=head,
                           replay_key=push.signed_key)
    if queued.status == "duplicate":
        return 200, "duplicate", {"job": queued.job_id, "reason": "delivery seen before"}
    if head is not None:
        store.queue_status(outbox, head, PENDING, f"plan queued as job {queued.job_id}",
                           context=plan_context(forge), job_id=queued.job_id, repository=repository)
    log.info("request %d from %s: plan queued as job %s (%s)", request.number, push.sender, queued.job_id,
             queued.status)
    return 202, queued.status, {"job": queued.job_id, "reason": f"plan of request {request.number} queued"}


# --- the worker side --------------------------------------------------------------------------

def queue_run_statuses(store: ForgeStore, outbox: Outbox, forge: ForgeConfig, run: RunRecord,
                       db: Connection, *, outcomes=None, context: str | None = None,
                       planned: bool = False) -> int:
    """The final status of ``run`` on its commit and on every commit told "pending" for its job,
    inside the caller's transaction ``db``.  ``outcomes`` (a plan's) default to the run's zones.
    Returns how many were queued."""
    from publisher.publish.request_plan import Outcomes

    context = context or forge.context
    if outcomes is None:
        outcomes = Outcomes.of(run.zones, run.all_findings, run.error)
    broken = outcomes.broken or run.status == FAILED
    if run.status == FAILED and run.error and not run.zones and not outcomes.changed:
        summary = f"{'plan' if planned else 'run'} failed: {run.error}"  # nothing was evaluated
    else:
        summary = outcomes.summary(planned=planned)
    targets = [sha for sha, ctx in (store.pending_commits(run.job_id, db) if run.job_id is not None else [])
               if ctx == context]
    if run.commit:
        targets.append(run.commit)
    count = 0
    for commit in dict.fromkeys(targets):
        text = (summary if commit == run.commit or not run.commit
                else f"{'planned' if planned else 'published'} with {run.commit[:12]}: {summary}")
        store.queue_status(outbox, commit, FAILURE if broken else SUCCESS, text, context=context, run_id=run.id,
                           db=db, repository=repository_of(run.repository))
        count += 1
    return count


def queue_skipped_statuses(store: ForgeStore, outbox: Outbox, forge: ForgeConfig, job: Job) -> None:
    """A job skipped because its commit was already published still answers its "pending"."""
    for commit, context in store.pending_commits(job.id):
        if context == forge.context:
            store.queue_status(outbox, commit, SUCCESS, "already published by an earlier run", context=context,
                               repository=repository_of(job.repository))


def request_cache(source: SourceConfig) -> Path:
    """Requests get a clone of their own: planning one never touches the deploy branch's checkout."""
    cache = Path(source.cache or "var/cache/repository")
    return cache.with_name(cache.name + "-requests")


def fetch_request(source: SourceConfig, ref: str, number: int, cache: Path,
                  limits: FetchConfig = FetchConfig()) -> Checkout:
    """Fetch ``ref`` (the forge's ref for the request's head, or a commit) from ``[source] url``
    only, with the deploy branch's hardening and ``[fetch]`` limits, and check it out cleanly.
    Raises FetchError."""
    return fetch(source, cache, limits=limits, ref=ref, local_ref=f"refs/zone-publisher/requests/{number}")


def run_request_plan(worker, job: Job, config: Config | None = None) -> RunRecord:
    """Plan the request of ``job`` (a PLAN job) for ``worker`` with ``config``, the view of the job's
    repository (default: the worker's one repository), and record it; never applies."""
    from publisher.publish.request_plan import plan_request, request_comment, request_outcomes

    config = config or worker.config
    forge = config.forge
    number = request_number(job.repository)
    started = time.time()
    base = RunRecord(job.repository, PLAN, OK, started, started, commit=job.commit, sender=job.sender, job_id=job.id)
    report = None
    with worker.checkout_lock_of(config):
        try:
            if forge is None:
                raise FetchError("no [forge] table: request plans are off")
            checkout = fetch_request(config.source, job.ref or "", number, request_cache(config.source), config.fetch)
        except FetchError as error:
            run = replace(base, status=FAILED, finished=time.time(), error=redact(str(error)))
        else:
            base = replace(base, commit=checkout.commit, author_name=checkout.author_name,
                           author_email=checkout.author_email, subject=checkout.subject)
            report = plan_request(config, checkout.path, state=worker.state, providers=worker.providers)
            run = replace(base, status=report.status, finished=time.time(), findings=report.all_findings,
                          error=redact(report.error), plan_markdown=report.plan.to_markdown(),
                          timings=dict(report.timings))

    def statuses_and_finish(db: Connection, run_id: int) -> None:
        recorded = replace(run, id=run_id)
        if forge is not None:
            store = worker.forge_store
            if report is not None:
                body = request_comment(report, recorded.commit or "", run_url=run_url(forge, worker.status_url, run_id))
                store.queue_comment(worker.outbox, f"{forge.type}:{forge.repository}#{number}", number, body,
                                    run_id=run_id, db=db, repository=config.key)
            queue_run_statuses(store, worker.outbox, forge, recorded, db, context=plan_context(forge), planned=True,
                               outcomes=request_outcomes(report) if report is not None else None)
        worker.queue.finish(job.id, state=JOB_FAILED if run.status == FAILED else DONE, run_id=run_id,
                            error=run.error or None, db=db)

    run_id = worker.runs.record(run, then=statuses_and_finish)
    worker.notifier.wake.set()
    log.info("job %d: plan of request %d, run %d %s (commit %s)", job.id, number, run_id, run.status,
             (run.commit or "-")[:12])
    return replace(run, id=run_id)


def forge_deliveries(config: Config, store: ForgeStore | None, status_url: str) -> dict:
    """The notifier's delivery for ``forge`` items, when ``[forge]`` is configured."""
    from publisher.service.forge import ForgeDelivery
    from publisher.service.notify import FORGE

    if config.forge is None or store is None:
        return {}
    return {FORGE: ForgeDelivery(config.forge, store, status_url)}


__all__ = ["PLAN", "enqueue_request_plan", "queue_push_pending", "queue_run_statuses", "run_request_plan",
           "forge_deliveries", "forge_store", "fetch_request", "request_queue_key"]
