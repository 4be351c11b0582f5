"""Is the service able to do its job?  The answer ``/healthz`` gives a load balancer or a monitor.

Unhealthy means one of: the job queue stands still (a job of any repository has waited longer than
``[health] queue_wait`` while fewer than ``[jobs] workers`` leases are live: the workers are dead or
wedged; the answer names no repository, ``/healthz`` is open to anyone), the state database
refuses a real write, or mail has stayed undelivered longer than ``[health] mail_failing``.  Each
reason is a fixed sentence with figures; nothing in it comes from a secret (the mail server's own
error, which may quote a user name, stays on the status page).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Mapping

from publisher.config import HealthConfig
from publisher.database import DatabaseError, write_problem
from publisher.service.jobs import JobQueue
from publisher.service.notify import Outbox


@dataclass(frozen=True)
class Health:
    reasons: tuple[str, ...]  # empty when healthy
    facts: Mapping[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.reasons


def check_health(queue: JobQueue, outbox: Outbox, settings: HealthConfig, *, now: float | None = None,
                 write_timeout: float = 5.0, workers: int = 1) -> Health:
    """Look at the queue, the outbox and the database (one real, tiny write).  ``workers`` is the
    size of the worker pool (``[jobs] workers``): a job of any repository that waits while fewer
    leases are live than that means the workers are not taking it."""
    now = time.time() if now is None else now
    reasons = []
    problem = write_problem(queue.database, timeout=write_timeout)
    if problem:
        reasons.append(f"the state database cannot be written: {problem}")
    facts: dict[str, Any] = {}
    try:
        facts["jobs"] = queue.counts()
        facts["outbox_pending"] = outbox.pending()
        stuck = queue.stuck_since(now, workers=workers)
        if stuck is not None and now - stuck > settings.queue_wait:
            live = queue.live_leases(now)
            held = "no worker holds a live lease" if live == 0 else \
                f"only {live} of [jobs] workers {workers} hold a live lease"
            reasons.append(f"the job queue has not moved for {now - stuck:.0f} s (more than [health] queue_wait "
                           f"{settings.queue_wait:g} s): a job is waiting and {held}")
        oldest = outbox.oldest_unsent()
        if oldest is not None and now - oldest > settings.mail_failing:
            reasons.append(f"notifications have stayed undelivered for {now - oldest:.0f} s (more than [health] "
                           f"mail_failing {settings.mail_failing:g} s); {facts['outbox_pending']} waiting")
    except DatabaseError as error:
        reasons.append(f"the state database cannot be read: {error}")
    return Health(tuple(reasons), facts)
