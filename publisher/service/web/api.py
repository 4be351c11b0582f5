"""The JSON API: repositories, runs, jobs, zones and a health check.

What a viewer may not read (another repository's run, job or zones, a repository that is not
configured) answers 404, as a missing id does.  Lists are bounded: ``limit`` is clamped to its
range; a ``repository`` the viewer cannot read, or an ``offset`` that is not a number, is a 4xx.
"""

from __future__ import annotations

from flask import Blueprint, abort, jsonify, request

from publisher.redaction import redact
from publisher.service.web import MAX_ID, services, shown_run
from publisher.service.web.access import current_viewer
from publisher.service.web.overview import owner_label, store_scope, summaries, visible_view, visible_views

blueprint = Blueprint("api", __name__)

MAX_RUNS = 500
MAX_ZONES = 5000  # zone states in one answer; ``offset`` pages on


def _limit(default: int, most: int) -> int:
    """``?limit=``, clamped to 1..``most`` (anything that is not a number: ``default``)."""
    return max(1, min(request.args.get("limit", default, type=int) or default, most))


def _offset() -> int:
    text = request.args.get("offset", "0")
    if not (text.isascii() and text.isdigit()) or len(text) > 18:
        abort(400, "offset must be a whole number")
    return int(text)


@blueprint.errorhandler(400)
def bad_request(error):
    return jsonify(status="bad request", reason=error.description), 400


def _scope() -> str | None:
    """The store filter for this request: ``?repository=NAME`` (404 when the viewer cannot read it),
    else everything the viewer may read."""
    shared, viewer = services(), current_viewer()
    name = request.args.get("repository")
    if name is None:
        return viewer.repository
    view = visible_view(shared.config, viewer, name)
    if view is None:
        abort(404)
    return store_scope(shared.config, view)


@blueprint.get("/api/repositories")
def repositories():
    shared = services()
    return jsonify(repositories=[summary.to_dict() for summary in
                                 summaries(shared, visible_views(shared.config, current_viewer()))])


@blueprint.get("/api/repositories/<path:name>/zones")
def repository_zones(name: str):
    """The latest outcome of each zone on each provider, by zone; a page of ``limit`` from ``offset``."""
    shared = services()
    view = visible_view(shared.config, current_viewer(), name)
    if view is None:
        abort(404)
    limit, offset = _limit(1000, MAX_ZONES), _offset()
    states = shared.runs.zone_states(store_scope(shared.config, view), limit=limit + 1, offset=offset)
    zones = [{**outcome.to_dict(include_changes=False), "has_problems": outcome.has_problems, "run_id": run_id,
              "finished": finished} for run_id, finished, outcome in states[:limit]]
    return jsonify(repository=view.key, zones=zones, next_offset=offset + limit if len(states) > limit else None)


@blueprint.get("/api/runs")
def runs():
    scope = _scope()
    limit = _limit(50, MAX_RUNS)
    return jsonify(runs=[shown_run(run).to_dict(include_changes=False)
                         for run in services().runs.recent(limit, repository=scope)])


@blueprint.get(f"/api/runs/<int(max={MAX_ID}):run_id>")
def run(run_id: int):
    found = services().runs.get(run_id, repository=current_viewer().repository)
    if found is None:
        return jsonify(status="not found"), 404
    return jsonify(shown_run(found).to_dict())


@blueprint.get(f"/api/jobs/<int(max={MAX_ID}):job_id>")
def job(job_id: int):
    shared = services()
    found = shared.queue.get(job_id, repository=current_viewer().repository)
    if found is None:
        return jsonify(status="not found"), 404
    return jsonify(id=found.id, repository=owner_label(shared.config, found.repository), kind=found.kind,
                   state=found.state, sender=found.sender, ref=found.ref, commit=found.commit,
                   deliveries=found.deliveries, created=found.created, started=found.started,
                   finished=found.finished, run_id=found.run_id,
                   error=redact(found.error) if found.error else found.error)


@blueprint.get("/healthz")
def healthz():
    """200 when the service can do its job, else 503 with the reasons (open to load balancers: the
    answer is instance-wide and names no repository)."""
    from publisher.service.health import check_health

    shared = services()
    health = check_health(shared.queue, shared.outbox, shared.config.health, workers=shared.config.jobs.workers)
    if not health.ok:
        return jsonify(status="unhealthy", reasons=list(health.reasons), **health.facts), 503
    return jsonify(status="ok", **health.facts)
