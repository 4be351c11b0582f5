"""The web service: a Flask app factory with one blueprint per area.

* ``webhooks``: ``POST /notifications/<token>/push`` (alias ``/hooks/<token>``): verify, queue, 202.
* ``status``: the HTML status page (``/``, ``/runs/<id>``).
* ``api``: ``/api/runs``, ``/api/runs/<id>``, ``/api/jobs/<id>``, ``/healthz``.
* ``metrics``: ``/metrics`` for Prometheus.

Only the insert into the job queue happens inside a request; fetching and publishing run in the
background worker (``publisher.service.worker``), started once per service by ``zone-publisher serve``.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any, Mapping

from flask import Flask, jsonify, request

from publisher.config import Config
from publisher.service.jobs import JobQueue, source_key
from publisher.service.notify import Outbox
from publisher.service.runs import RunStore
from publisher.service.tokens import TokenSet
from publisher.service.web.ratelimit import FailureLimiter

_TOKEN_IN_PATH = re.compile(r"(/(?:notifications|hooks)/)[^/?#\s]+")


def redact(text: str) -> str:
    """``text`` with the secret token of any webhook path replaced by ``[redacted]``."""
    return _TOKEN_IN_PATH.sub(r"\1[redacted]", text)


class PublisherFlask(Flask):
    """Flask, but the error log never shows the token from a webhook URL."""

    def log_exception(self, exc_info: Any) -> None:
        self.logger.error("Exception on %s [%s]", redact(request.path), request.method, exc_info=exc_info)


@dataclass
class Services:
    """What the blueprints share: the stores on the state database and the webhook settings."""

    config: Config
    queue: JobQueue
    runs: RunStore
    outbox: Outbox
    tokens: TokenSet
    limiter: FailureLimiter
    repository: str  # the job queue's key for the configured source


def services() -> Services:
    from flask import current_app
    return current_app.extensions["publisher"]


def create_app(config: Config | None = None, test_config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app for ``config`` (default: the embedded default configuration).

    ``test_config`` overrides Flask settings and these service settings: ``TOKEN_HASHES``,
    ``WEBHOOK_SECRETS``, ``AUTH_FAILURE_LIMIT`` (failures per ``AUTH_FAILURE_WINDOW`` seconds
    before 429), ``STATE_PATH``.
    """
    config = config or Config.default()
    app = PublisherFlask(__name__)
    app.config.update(
        MAX_CONTENT_LENGTH=config.webhook.max_body,
        TOKEN_HASHES=list(config.webhook.tokens),
        WEBHOOK_SECRETS=[config.webhook.secret] if config.webhook.secret else [],
        AUTH_FAILURE_LIMIT=20,
        AUTH_FAILURE_WINDOW=60.0,
        STATE_PATH=str(config.state.path),
        JSON_SORT_KEYS=False,
    )
    if test_config:
        app.config.update(test_config)
    state = app.config["STATE_PATH"]
    app.extensions["publisher"] = Services(
        config=config, queue=JobQueue(state), runs=RunStore(state), outbox=Outbox(state),
        tokens=TokenSet(app.config["TOKEN_HASHES"]),
        limiter=FailureLimiter(app.config["AUTH_FAILURE_LIMIT"], app.config["AUTH_FAILURE_WINDOW"]),
        repository=source_key(config.source))

    from publisher.service.web import api, metrics, status, webhooks
    app.wsgi_app = webhooks.WebhookGate(app.wsgi_app, app.extensions["publisher"])
    app.register_blueprint(webhooks.blueprint)
    app.register_blueprint(status.blueprint)
    app.register_blueprint(api.blueprint)
    app.register_blueprint(metrics.blueprint)

    @app.errorhandler(413)
    def too_large(error):  # JSON, and no token echoed
        return jsonify(status="refused", reason=f"body larger than {app.config['MAX_CONTENT_LENGTH']} bytes"), 413

    @app.errorhandler(404)
    def not_found(error):
        return jsonify(status="not found"), 404

    @app.errorhandler(405)
    def not_allowed(error):
        return jsonify(status="method not allowed"), 405

    logging.getLogger("publisher").setLevel(logging.INFO)
    return app
