"""``GET /metrics``: Prometheus text.

Request counters live in each process; under gunicorn ``serve`` sets ``PROMETHEUS_MULTIPROC_DIR`` so
they are summed across workers.  Queue, run and outbox figures are read from the state database at
scrape time, so they are right whichever process answers.
"""

from __future__ import annotations

import os

from flask import Blueprint, Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily

blueprint = Blueprint("metrics", __name__)

WEBHOOK_REQUESTS = Counter("publisher_webhook_requests", "Webhook requests by outcome", ["outcome"])
WEBHOOK_LATENCY = Histogram("publisher_webhook_seconds", "Time to answer a webhook request",
                            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0))


class StateCollector:
    """Gauges computed from the state database."""

    def __init__(self, shared) -> None:
        self.shared = shared

    def collect(self):
        jobs = GaugeMetricFamily("publisher_jobs", "Jobs in the queue by state", labels=["state"])
        for state, count in sorted(self.shared.queue.counts().items()):
            jobs.add_metric([state], count)
        yield jobs
        runs = GaugeMetricFamily("publisher_runs", "Runs recorded, by status", labels=["status"])
        for status, count in sorted(self.shared.runs.counts().items()):
            runs.add_metric([status], count)
        yield runs
        yield GaugeMetricFamily("publisher_outbox_pending", "Notifications not delivered yet",
                                value=self.shared.outbox.pending())
        last = self.shared.runs.last_finished()
        if last is not None:
            yield GaugeMetricFamily("publisher_last_run_finished_timestamp_seconds", "When the last run finished",
                                    value=last)
        zones = GaugeMetricFamily("publisher_zone_ok", "1 when the zone's last outcome on a provider had no problem",
                                  labels=["zone", "provider", "status"])
        for _, _, outcome in self.shared.runs.zone_states():
            zones.add_metric([outcome.zone, outcome.provider, outcome.status], 0 if outcome.has_problems else 1)
        yield zones


def _process_metrics() -> bytes:
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory and os.path.isdir(directory):
        from prometheus_client import multiprocess
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)
    return generate_latest(REGISTRY)


@blueprint.get("/metrics")
def metrics():
    from publisher.service.web import services
    state = CollectorRegistry()
    state.register(StateCollector(services()))
    return Response(_process_metrics() + generate_latest(state), mimetype=CONTENT_TYPE_LATEST)
