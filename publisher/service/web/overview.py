"""What the status page, the API and the metrics say about each repository, and whose each stored
job or run is: one definition for the three of them.

A repository is shown by its ``key`` (``Config.key``: the ``[[repository]]`` name, or in the
one-repository form the source's key, which holds no credentials), the same string its jobs and
runs are filed under.  In the one-repository form every stored row is the one repository's (its
key may have changed with its URL): the stores are read unfiltered, as before.
"""

from __future__ import annotations

from dataclasses import dataclass

from publisher.config import Config
from publisher.redaction import redact
from publisher.service.jobs import Job, owner_key
from publisher.service.runs import RunRecord
from publisher.service.web.access import Viewer


def visible_views(config: Config, viewer: Viewer) -> tuple[Config, ...]:
    """The repositories ``viewer`` may read, in the configuration's order."""
    return tuple(view for view in config.views() if viewer.sees(view.key))


def visible_view(config: Config, viewer: Viewer, key: str) -> Config | None:
    """The repository filed under ``key`` when ``viewer`` may read it, else None (the caller answers
    404 either way: a reader learns nothing of another repository)."""
    view = config.view(key)
    return view if view is not None and viewer.sees(view.key) else None


def store_scope(config: Config, view: Config) -> str | None:
    """The ``repository`` argument of the stores' read methods for ``view``: its key, or None (every
    row) in the one-repository form."""
    return view.key if config.repositories else None


def owner_label(config: Config, stored_key: str) -> str:
    """The repository a stored job or run belongs to, as shown: a configured repository's key, or
    for rows of a repository no longer configured, their key without credentials."""
    if not config.repositories:
        return config.key
    return redact(owner_key(stored_key))


@dataclass(frozen=True)
class RepositorySummary:
    """One line of the operator's list of repositories."""

    view: Config
    last_run: RunRecord | None
    zones: int
    zones_with_problems: int
    active_jobs: tuple[Job, ...]  # queued and running, its requests' plans included

    @property
    def name(self) -> str:
        return self.view.key

    def to_dict(self) -> dict:
        run = self.last_run
        return {"name": self.name,
                "last_run": None if run is None else {"id": run.id, "status": run.status, "commit": run.commit,
                                                      "trigger": run.trigger, "finished": run.finished},
                "zones": self.zones, "zones_with_problems": self.zones_with_problems,
                "jobs": [{"id": job.id, "state": job.state, "kind": job.kind} for job in self.active_jobs]}


def summaries(shared, views: tuple[Config, ...]) -> list[RepositorySummary]:
    """Each of ``views`` now: its last deploy run, its zones' states, its waiting and running jobs."""
    config = shared.config
    keys = [view.key for view in views]
    last = shared.runs.last_runs(keys)
    if config.repositories:
        states = shared.runs.zone_states_by_repository(keys)
    else:
        states = {config.key: shared.runs.zone_states()}
    active: dict[str, list[Job]] = {}
    for job in shared.queue.active():
        active.setdefault(owner_label(config, job.repository), []).append(job)
    return [RepositorySummary(view, last.get(view.key), len(states.get(view.key, ())),
                              sum(1 for _, _, outcome in states.get(view.key, ()) if outcome.has_problems),
                              tuple(active.get(view.key, ()))) for view in views]
