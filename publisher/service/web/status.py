"""The status page: recent runs and each zone's state (``/``), one page per run (``/runs/<id>``)."""

from __future__ import annotations

import time

from flask import Blueprint, abort, render_template

from publisher.service.web import MAX_ID, services, shown_run

blueprint = Blueprint("status", __name__, template_folder="templates", static_folder="static",
                      static_url_path="/static")


@blueprint.app_template_filter("when")
def when(timestamp: float | None) -> str:
    if not timestamp:
        return ""
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(timestamp))


@blueprint.app_template_filter("short")
def short(commit: str | None) -> str:
    return (commit or "")[:12]


@blueprint.get("/")
def index():
    shared = services()
    return render_template("index.html", runs=[shown_run(run) for run in shared.runs.recent(50, with_zones=False)],
                           zones=shared.runs.zone_states(), jobs=shared.queue.counts(),
                           pending_mail=shared.outbox.pending(), source=shared.config.source)


@blueprint.get(f"/runs/<int(max={MAX_ID}):run_id>")
def run(run_id: int):
    found = services().runs.get(run_id)
    if found is None:
        abort(404)
    return render_template("run.html", run=shown_run(found))
