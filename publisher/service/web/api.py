"""The JSON API: runs, jobs and a health check."""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from publisher.redaction import redact
from publisher.service.web import MAX_ID, services, shown_run

blueprint = Blueprint("api", __name__)


@blueprint.get("/api/runs")
def runs():
    limit = max(1, min(request.args.get("limit", 50, type=int) or 50, 500))
    return jsonify(runs=[shown_run(run).to_dict(include_changes=False) for run in services().runs.recent(limit)])


@blueprint.get(f"/api/runs/<int(max={MAX_ID}):run_id>")
def run(run_id: int):
    found = services().runs.get(run_id)
    if found is None:
        return jsonify(status="not found"), 404
    return jsonify(shown_run(found).to_dict())


@blueprint.get(f"/api/jobs/<int(max={MAX_ID}):job_id>")
def job(job_id: int):
    found = services().queue.get(job_id)
    if found is None:
        return jsonify(status="not found"), 404
    return jsonify(id=found.id, kind=found.kind, state=found.state, sender=found.sender, ref=found.ref,
                   commit=found.commit, deliveries=found.deliveries, created=found.created, started=found.started,
                   finished=found.finished, run_id=found.run_id,
                   error=redact(found.error) if found.error else found.error)


@blueprint.get("/healthz")
def healthz():
    """200 when the service can do its job, else 503 with the reasons (open to load balancers)."""
    from publisher.service.health import check_health

    shared = services()
    health = check_health(shared.queue, shared.outbox, shared.config.health)
    if not health.ok:
        return jsonify(status="unhealthy", reasons=list(health.reasons), **health.facts), 503
    return jsonify(status="ok", **health.facts)
