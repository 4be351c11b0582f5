"""The web service: a Flask app factory with one blueprint per area.

* ``webhooks``: ``POST /notifications/<token>/push`` (alias ``/hooks/<token>``): verify, queue, 202.
* ``status``: the HTML status page (``/``, ``/repositories/<name>``, ``/runs/<id>``).
* ``api``: ``/api/repositories``, ``/api/repositories/<name>/zones``, ``/api/runs``, ``/api/runs/<id>``,
  ``/api/jobs/<id>``, ``/healthz``.
* ``metrics``: ``/metrics`` for Prometheus.
* ``access`` (no routes): the client address behind ``[web] trusted_proxies``, the login that
  every blueprint but the webhooks and ``/healthz`` requires from anything but loopback, and who
  sees what (the operator every repository, a repository's read token its own); ``overview``: what
  the three say about each repository.

Only the insert into the job queue happens inside a request; fetching and publishing run in the
background worker (``publisher.service.worker``), started once per service by ``zone-publisher serve``.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field, replace
from typing import Any, Mapping
from urllib.parse import unquote

from flask import Flask, jsonify, request

from publisher.config import Config
from publisher.redaction import REDACTED, redact as redact_credentials
from publisher.service.jobs import JobQueue
from publisher.service.notify import Outbox
from publisher.service.runs import RunRecord, RunStore
from publisher.service.tokens import TokenSet
from publisher.service.web.access import ClientAddresses, Login
from publisher.service.web.ratelimit import FailureLimiter

# Everything after /notifications/ or /hooks/ up to the end of the path, whatever it is made of
# (``/notifications/../TOKEN/push`` too); the path is percent-decoded first.
_TOKEN_IN_PATH = re.compile(r"(?i)/(notifications|hooks)/[^\s\"'?#]*")
_QUERY = re.compile(r"\?[^\s\"']*")


def _hide_token(match: re.Match) -> str:
    kept = "/push" if match.group(1).lower() == "notifications" and match.group(0).lower().endswith("/push") else ""
    return f"/{match.group(1)}/{REDACTED}{kept}"


def redact(text: str) -> str:
    """``text`` (a log line, a request line) with nothing secret left: credentials in URLs, the
    token of a webhook path, and every query string (``?token=…``) replaced by ``[redacted]``."""
    text = redact_credentials(unquote(text, errors="replace"))
    return _TOKEN_IN_PATH.sub(_hide_token, _QUERY.sub("?" + REDACTED, text))


class RedactingFilter(logging.Filter):
    """Formats a record's message now and redacts it, whatever the logger (Flask's, gunicorn's
    error log: it quotes request lines it could not parse)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed call: let logging report it as it would
            return True
        record.msg, record.args = redact(message), ()
        return True


def install_log_redaction(*loggers: logging.Logger) -> None:
    for logger in loggers:
        if not any(isinstance(f, RedactingFilter) for f in logger.filters):
            logger.addFilter(RedactingFilter())


class PublisherFlask(Flask):
    """Flask, but the error log never shows the token from a webhook URL."""

    def log_exception(self, exc_info: Any) -> None:
        self.logger.error("Exception on %s [%s]", redact(request.path), request.method, exc_info=exc_info)


@dataclass(frozen=True)
class Webhook:
    """One repository's push webhook: the URL tokens that name it, the secrets that sign its
    deliveries, and its view of the configuration (source, branches, forge, queue key)."""

    view: Config
    tokens: TokenSet
    secrets: tuple[str, ...] = field(default=(), repr=False)


@dataclass
class Services:
    """What the blueprints share: the stores on the state database and the webhook settings."""

    config: Config
    queue: JobQueue
    runs: RunStore
    outbox: Outbox
    webhooks: tuple[Webhook, ...]  # one per repository
    limiter: FailureLimiter  # webhook token failures
    clients: ClientAddresses
    login: Login
    repository: str  # the job queue's key for the configured source ("" with several repositories)

    def webhook_for(self, token: str) -> Webhook | None:
        """The repository whose webhook ``token`` is, or None.  Every repository's tokens are
        compared, with no early exit: the time taken says nothing about which one (if any) was close."""
        matched = [hook for hook in self.webhooks if hook.tokens.matches(token)]
        return matched[0] if matched else None


# The largest id SQLite stores: a bigger one in a URL is a 404, not an OverflowError.
MAX_ID = 2**63 - 1


def shown_run(run: RunRecord) -> RunRecord:
    """``run`` as pages and the API show it: credentials out of the repository and the error (rows
    stored before redaction existed may hold them)."""
    return replace(run, repository=redact_credentials(run.repository),
                   error=redact_credentials(run.error) if run.error else run.error)


def services() -> Services:
    from flask import current_app
    return current_app.extensions["publisher"]


def create_app(config: Config | None = None, test_config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app for ``config`` (default: the embedded default configuration).

    ``test_config`` overrides Flask settings and these service settings: ``TOKEN_HASHES``,
    ``WEBHOOK_SECRETS`` (the one repository's, in the one-repository form), ``AUTH_FAILURE_LIMIT``
    (failures per ``AUTH_FAILURE_WINDOW`` seconds before 429), ``STATE_PATH``.
    """
    config = config or Config.default()
    app = PublisherFlask(__name__)
    app.config.update(
        # With several repositories, the largest body any of them takes; each one's own limit is
        # applied once its token has named it.
        MAX_CONTENT_LENGTH=max(view.webhook.max_body for view in config.views()),
        TOKEN_HASHES=list(config.webhook.tokens),
        WEBHOOK_SECRETS=[config.webhook.secret] if config.webhook.secret else [],
        AUTH_FAILURE_LIMIT=20,
        AUTH_FAILURE_WINDOW=60.0,
        STATE_PATH=str(config.state.location),
        JSON_SORT_KEYS=False,
    )
    if test_config:
        app.config.update(test_config)
    state = app.config["STATE_PATH"]
    limit, window = app.config["AUTH_FAILURE_LIMIT"], app.config["AUTH_FAILURE_WINDOW"]
    if config.repositories:
        webhooks = tuple(Webhook(view, TokenSet(view.webhook.tokens),
                                 (view.webhook.secret,) if view.webhook.secret else ())
                         for view in config.repositories)
    else:
        webhooks = (Webhook(config, TokenSet(app.config["TOKEN_HASHES"]), tuple(app.config["WEBHOOK_SECRETS"])),)
    app.extensions["publisher"] = Services(
        config=config, queue=JobQueue(state), runs=RunStore(state), outbox=Outbox(state),
        webhooks=webhooks, limiter=FailureLimiter(limit, window),
        clients=ClientAddresses(config.web.trusted_proxies),
        login=Login(config.web.users, config.web.read_tokens, FailureLimiter(limit, window),
                    repository_tokens={view.key: view.read_tokens for view in config.repositories}),
        repository="" if config.repositories else config.key)

    from publisher.service.web import access, api, metrics, status, webhooks
    app.before_request(access.require_login)
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

    def state_unavailable(error):
        # The state database is down or refuses writes (a PostgreSQL failover, a full disk): nothing was
        # queued, and the sender should retry later; say so with a 503, never a traceback or a 500.
        app.logger.error("state database unavailable: %s", redact(str(error)))
        response = jsonify(status="unavailable", reason="the state database is unavailable; retry later")
        response.headers["Retry-After"] = "30"
        return response, 503

    from publisher.database import DatabaseError, StateDatabaseError
    for error_class in (*DatabaseError, StateDatabaseError):
        app.register_error_handler(error_class, state_unavailable)

    @app.errorhandler(405)
    def not_allowed(error):
        return jsonify(status="method not allowed"), 405

    logging.getLogger("publisher").setLevel(logging.INFO)
    # gunicorn's error log quotes request lines it cannot parse (one without an HTTP version too).
    install_log_redaction(app.logger, logging.getLogger("publisher"), logging.getLogger("publisher.webhooks"),
                          logging.getLogger("gunicorn.error"),
                          logging.getLogger("gunicorn.access"), logging.getLogger("werkzeug"))
    return app
