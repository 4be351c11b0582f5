"""``GET /metrics``: Prometheus text (a repository's reader sees its repository's series only).

Request counters live in each process; under gunicorn ``serve`` sets ``PROMETHEUS_MULTIPROC_DIR`` so
they are summed across workers.  Queue, run and outbox figures are read from the state database at
scrape time, so they are right whichever process answers.
"""

from __future__ import annotations

import os
from typing import Mapping

from flask import Blueprint, Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily

from publisher.service.web.access import OPERATOR, Viewer, current_viewer
from publisher.service.web.overview import owner_label, visible_views

blueprint = Blueprint("metrics", __name__)

WEBHOOK_REQUESTS = Counter("publisher_webhook_requests", "Webhook requests by outcome", ["outcome"])
WEBHOOK_LATENCY = Histogram("publisher_webhook_seconds", "Time to answer a webhook request",
                            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0))


class StateCollector:
    """Gauges computed from the state database, each with a ``repository`` label (the repository's
    key: its ``[[repository]]`` name, or the source's key in the one-repository form), only of the
    repositories ``viewer`` may read.  The outbox is the instance's: the operator's only."""

    def __init__(self, shared, viewer: Viewer = OPERATOR) -> None:
        self.shared = shared
        self.viewer = viewer

    def _per_repository(self, counts: Mapping[str, Mapping[str, int]]) -> dict[tuple[str, str], int]:
        """``counts`` (stored key -> label -> n) folded onto the repositories they belong to."""
        folded: dict[tuple[str, str], int] = {}
        for stored, by_label in counts.items():
            repository = owner_label(self.shared.config, stored)
            if self.viewer.sees(repository):
                for label, count in by_label.items():
                    folded[repository, label] = folded.get((repository, label), 0) + count
        return folded

    def collect(self):
        shared, config = self.shared, self.shared.config
        jobs = GaugeMetricFamily("publisher_jobs", "Jobs in the queue by state", labels=["repository", "state"])
        for (repository, state), count in sorted(self._per_repository(shared.queue.counts_by_repository()).items()):
            jobs.add_metric([repository, state], count)
        yield jobs
        runs = GaugeMetricFamily("publisher_runs", "Runs recorded, by status", labels=["repository", "status"])
        for (repository, status), count in sorted(self._per_repository(shared.runs.counts_by_repository()).items()):
            runs.add_metric([repository, status], count)
        yield runs
        if self.viewer.is_operator:
            yield GaugeMetricFamily("publisher_outbox_pending", "Notifications not delivered yet",
                                    value=shared.outbox.pending())
        last = GaugeMetricFamily("publisher_last_run_finished_timestamp_seconds", "When the last run finished",
                                 labels=["repository"])
        latest: dict[str, float] = {}
        for stored, finished in shared.runs.last_finished_by_repository().items():
            repository = owner_label(config, stored)
            if self.viewer.sees(repository) and finished is not None:
                latest[repository] = max(finished, latest.get(repository, finished))
        for repository, finished in sorted(latest.items()):
            last.add_metric([repository], finished)
        yield last
        zones = GaugeMetricFamily("publisher_zone_ok", "1 when the zone's last outcome on a provider had no problem",
                                  labels=["repository", "zone", "provider", "status"])
        if config.repositories:
            states = shared.runs.zone_states_by_repository(view.key for view in visible_views(config, self.viewer))
        else:
            states = {config.key: shared.runs.zone_states()}
        for repository, outcomes in states.items():
            for _, _, outcome in outcomes:
                zones.add_metric([repository, outcome.zone, outcome.provider, outcome.status],
                                 0 if outcome.has_problems else 1)
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
    """Every series for the operator; a repository's reader gets its repository's gauges only (the
    request counters and the outbox are the whole instance's)."""
    from publisher.service.web import services
    viewer = current_viewer()
    state = CollectorRegistry()
    state.register(StateCollector(services(), viewer))
    process = _process_metrics() if viewer.is_operator else b""
    return Response(process + generate_latest(state), mimetype=CONTENT_TYPE_LATEST)
