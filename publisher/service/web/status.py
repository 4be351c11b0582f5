"""The status page.  The operator's ``/`` lists the repositories and the recent runs of all (in the
one-repository form: that repository's page, as before); ``/repositories/<name>`` is one repository's
runs and zones, where a repository's reader lands; ``/runs/<id>`` is one run."""

from __future__ import annotations

import time

from flask import Blueprint, abort, redirect, render_template, url_for

from publisher.config import Config
from publisher.service.web import MAX_ID, services, shown_run
from publisher.service.web.access import current_viewer
from publisher.service.web.overview import owner_label, store_scope, summaries, visible_view

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


@blueprint.app_template_global("repository_of")
def repository_of(stored_key: str) -> tuple[str, bool]:
    """(the name shown for the repository a run or job is filed under, whether it has a page)."""
    config = services().config
    name = owner_label(config, stored_key)
    return name, bool(config.repositories) and config.view(name) is not None


@blueprint.get("/")
def index():
    shared, viewer = services(), current_viewer()
    if not viewer.is_operator:
        return redirect(url_for("status.repository", name=viewer.repository))
    config = shared.config
    if not config.repositories:
        return _repository_page(config)
    return render_template("index.html", repositories=summaries(shared, config.views()),
                           runs=[shown_run(run) for run in shared.runs.recent(50, with_zones=False)],
                           jobs=shared.queue.counts(), pending_mail=shared.outbox.pending())


@blueprint.get("/repositories/<path:name>")
def repository(name: str):
    view = visible_view(services().config, current_viewer(), name)
    if view is None:
        abort(404)
    return _repository_page(view)


def _repository_page(view: Config):
    shared, viewer = services(), current_viewer()
    scope = store_scope(shared.config, view)
    return render_template("repository.html", view=view, several=bool(shared.config.repositories),
                           runs=[shown_run(run) for run in shared.runs.recent(50, with_zones=False, repository=scope)],
                           zones=shared.runs.zone_states(scope), jobs=shared.queue.counts(scope),
                           pending_mail=shared.outbox.pending() if viewer.is_operator else None, source=view.source)


@blueprint.get(f"/runs/<int(max={MAX_ID}):run_id>")
def run(run_id: int):
    found = services().runs.get(run_id, repository=current_viewer().repository)
    if found is None:
        abort(404)
    return render_template("run.html", run=shown_run(found), several=bool(services().config.repositories))
