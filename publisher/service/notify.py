"""Notifications through a persisted outbox: mail (SMTP or ``.eml`` files) and an outbound webhook.

A run's messages are written to the ``outbox`` table of the state database first; a sender thread
delivers them and retries with exponential backoff, so a mail server outage (or a restart, or a
``kill -9``) loses nothing.

Several instances on one PostgreSQL database each run a sender: a message is **claimed** under a
lease before it is sent (``Outbox.claim``), so exactly one instance sends it; a sender that dies
leaves its message to another once the lease runs out.  The one window left is a crash between
the receiver's acceptance and the commit of "sent": that message is sent again (with the same
Message-ID, so a mail store can tell), which beats losing it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import smtplib
import ssl
import tempfile
import threading
import time
import urllib.error
import urllib.request
from contextlib import nullcontext
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Callable, Mapping, Sequence

from publisher.config import NotifyConfig
from publisher.redaction import redact
from publisher.database import (BLOB, ID, INTEGER, REAL, TEXT, Column, Connection, Index, PerThreadStore,
                                        Table, transaction)
from publisher.outcome import BLOCKED, BRANCH_DELETED, FAILED, UNCHANGED
from publisher.service.jobs import worker_identity
from publisher.service.runs import RunRecord

log = logging.getLogger(__name__)

MAIL, WEBHOOK, FORGE = "mail", "webhook", "forge"
# Kinds delivered strictly in order: while one is being retried, the later ones wait (a commit's
# "success" must never overtake its "pending").
ORDERED_KINDS = (FORGE,)
MAX_PLAN_CHARS = 100_000

TABLES = (
    Table("outbox", (
        Column("id", ID), Column("kind", TEXT, True), Column("run_id", INTEGER), Column("destination", TEXT, True),
        Column("payload", BLOB, True), Column("created", REAL, True), Column("attempts", INTEGER, True, "0"),
        Column("next_attempt", REAL, True), Column("sent", REAL), Column("last_error", TEXT, True, "''"),
        # the sender delivering it now (several instances share the outbox)
        Column("claimed_by", TEXT), Column("lease_until", REAL),
        Column("repository", TEXT, True, "''")),  # the key of the repository whose run queued it
        indexes=(Index("outbox_due", "sent, next_attempt"),)),
)

# One definition of "a sender may take this message now" (parameters: now, now, *ORDERED_KINDS,
# now, now): unsent, due, not under a live lease, and for a kind delivered in order, no earlier
# unsent message of its kind waiting for a retry or being sent.
_ORDERED = ", ".join("?" * len(ORDERED_KINDS))
_DUE = ("sent IS NULL AND next_attempt <= ? AND COALESCE(lease_until, 0) <= ?"
        f" AND NOT (kind IN ({_ORDERED}) AND EXISTS (SELECT 1 FROM outbox e WHERE e.kind = o.kind"
        " AND e.sent IS NULL AND e.id < o.id AND (e.next_attempt > ? OR COALESCE(e.lease_until, 0) > ?)))")


def _item(row) -> "OutboxItem":
    return OutboxItem(row["id"], row["kind"], row["run_id"], tuple(json.loads(row["destination"])),
                      bytes(row["payload"]), row["attempts"], row["created"], row["repository"])


@dataclass(frozen=True)
class OutboxItem:
    id: int
    kind: str
    run_id: int | None
    destination: tuple[str, ...]  # mail recipients, or (url,)
    payload: bytes  # the whole RFC 5322 message, or the JSON body
    attempts: int
    created: float
    repository: str = ""  # whose message: its SMTP settings and forge deliver it ("" before several repositories)


class Outbox(PerThreadStore):
    """The persisted queue of outgoing messages (one connection per thread)."""

    TABLES = TABLES

    def add(self, kind: str, destination: Sequence[str], payload: bytes, *, run_id: int | None = None,
            now: float | None = None, db: Connection | None = None, repository: str = "") -> int:
        """Queue one message of ``repository`` (the key its run is filed under); with ``db``, inside the
        caller's open transaction on that connection."""
        now = time.time() if now is None else now
        own = db is None
        db = self._connection if own else db
        with transaction(db) if own else nullcontext():
            return db.execute(
                "INSERT INTO outbox (kind, run_id, destination, payload, created, next_attempt, repository)"
                " VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
                (kind, run_id, json.dumps(list(destination)), payload, now, now, repository)).fetchone()[0]

    def due(self, now: float | None = None, limit: int = 50) -> list[OutboxItem]:
        """The messages a sender may take now, oldest first (a read: nothing is claimed)."""
        now = time.time() if now is None else now
        rows = self._connection.execute(f"SELECT * FROM outbox o WHERE {_DUE} ORDER BY id LIMIT ?",
                                        (now, now, *ORDERED_KINDS, now, now, limit)).fetchall()
        return [_item(row) for row in rows]

    def claim(self, owner: str, *, lease: float, now: float | None = None, skip_ids: Sequence[int] = (),
              skip_kinds: Sequence[str] = ()) -> OutboxItem | None:
        """Take the oldest message a sender may send now (see ``_DUE``) under a lease of ``lease``
        seconds, or None; ``skip_*`` leave out what this round already tried.  One claim at a time
        across instances (the ``outbox`` lock): the in-order kinds stay in order."""
        now = time.time() if now is None else now
        skip = ""
        if skip_ids:
            skip += f" AND id NOT IN ({', '.join('?' * len(skip_ids))})"
        if skip_kinds:
            skip += f" AND kind NOT IN ({', '.join('?' * len(skip_kinds))})"
        with transaction(self._connection) as db:
            db.lock("outbox")
            row = db.execute(f"SELECT * FROM outbox o WHERE {_DUE}{skip} ORDER BY id LIMIT 1",
                             (now, now, *ORDERED_KINDS, now, now, *skip_ids, *skip_kinds)).fetchone()
            if row is None:
                return None
            db.execute("UPDATE outbox SET claimed_by = ?, lease_until = ? WHERE id = ?", (owner, now + lease, row["id"]))
        return _item(row)

    def mark_sent(self, item_id: int, now: float | None = None) -> None:
        with transaction(self._connection) as db:
            db.execute("UPDATE outbox SET sent = ?, attempts = attempts + 1, last_error = '', lease_until = NULL"
                       " WHERE id = ?", (time.time() if now is None else now, item_id))

    def mark_failed(self, item_id: int, error: str, next_attempt: float) -> None:
        with transaction(self._connection) as db:
            db.execute("UPDATE outbox SET attempts = attempts + 1, last_error = ?, next_attempt = ?, lease_until = NULL"
                       " WHERE id = ?", (error[:500], next_attempt, item_id))

    def mark_dropped(self, item_id: int, error: str) -> None:
        """The receiver refused the message for good: stop retrying it (the error stays recorded)."""
        with transaction(self._connection) as db:
            db.execute("UPDATE outbox SET sent = ?, attempts = attempts + 1, last_error = ?, lease_until = NULL"
                       " WHERE id = ?", (time.time(), "dropped: " + error[:490], item_id))

    def pending(self) -> int:
        return self._connection.execute("SELECT COUNT(*) FROM outbox WHERE sent IS NULL").fetchone()[0]

    def items(self, limit: int = 100) -> list[dict]:
        rows = self._connection.execute(
            "SELECT id, kind, run_id, destination, created, attempts, next_attempt, sent, last_error"
            " FROM outbox ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
        return [dict(row) for row in rows]

    def next_due(self) -> float | None:
        row = self._connection.execute("SELECT MIN(next_attempt) FROM outbox WHERE sent IS NULL").fetchone()
        return row[0]

    def oldest_unsent(self) -> float | None:
        """When the longest-waiting unsent message was queued (``/healthz``: mail failing for long)."""
        return self._connection.execute("SELECT MIN(created) FROM outbox WHERE sent IS NULL").fetchone()[0]

    def prune(self, before: float, keep_newest: int) -> int:
        """Delete messages sent before ``before`` beyond the newest ``keep_newest`` sent ones
        (``[retention]``); unsent ones are never deleted.  Returns the number deleted."""
        with transaction(self._connection) as db:
            return db.execute("DELETE FROM outbox WHERE sent IS NOT NULL AND sent < ? AND id NOT IN"
                              " (SELECT id FROM outbox WHERE sent IS NOT NULL ORDER BY id DESC LIMIT ?)",
                              (before, keep_newest)).rowcount


# --- composing -------------------------------------------------------------------------------

def wants_notification(run: RunRecord, settings: NotifyConfig) -> bool:
    """One message per run that has problems, or per run when ``every_run`` is set."""
    return run.has_problems or settings.every_run


def problem_fingerprint(run: RunRecord) -> str:
    """What a run's problems are, ignoring when and why it ran: two runs with the same fingerprint
    would send the same news."""
    zones = sorted(f"{z.zone}|{z.provider}|{z.status}|{z.error}" for z in run.zones if z.has_problems)
    findings = sorted(f.to_text() for f in run.all_findings)
    return hashlib.sha256(json.dumps([run.status, run.error, zones, findings]).encode()).hexdigest()


def recipients(run: RunRecord, settings: NotifyConfig) -> tuple[str, ...]:
    people = list(settings.to)
    if settings.notify_author and run.author_email and run.author_email not in people:
        people.append(run.author_email)
    return tuple(people)


def run_summary(run: RunRecord) -> str:
    """Short headline: what happened, for which commit (never with credentials of the source URL)."""
    return redact(_summary(run))


def _summary(run: RunRecord) -> str:
    commit = (run.commit or "")[:12] or "the branch head"
    if run.status == BRANCH_DELETED:
        return f"deploy branch of {run.repository} was deleted: nothing published"
    errors = sum(1 for f in run.all_findings if f.is_error)
    warnings = sum(1 for f in run.all_findings if not f.is_error)
    failed = sorted({f"{z.zone} on {z.provider}" for z in run.zones if z.status in (FAILED, BLOCKED)})
    parts = [f"{run.status} publishing {commit} of {run.repository}"]
    if errors or warnings:
        parts.append(f"{errors} error(s), {warnings} warning(s)")
    if failed:
        parts.append("not applied: " + ", ".join(failed[:3]) + (" …" if len(failed) > 3 else ""))
    return "; ".join(parts)


def run_text(run: RunRecord, status_url: str = "") -> str:
    """The plain-text body: every problem as ``file:line: severity: message [code]`` under its zone,
    then the plan (the changes made or blocked)."""
    lines = [run_summary(run), ""]
    if run.commit:
        lines.append(f"Commit:  {run.commit}")
    if run.author_name or run.author_email:
        lines.append(f"Author:  {run.author_name} <{run.author_email}>".replace(" <>", ""))
    if run.subject:
        lines.append(f"Message: {run.subject}")
    lines.append(f"Trigger: {run.trigger}" + (f" ({run.sender})" if run.sender else ""))
    if status_url and run.id is not None:
        lines.append(f"Details: {status_url.rstrip('/')}/runs/{run.id}")
    if run.error:
        lines += ["", "Error:", f"  {redact(run.error)}"]
    findings = run.all_findings
    if findings:
        lines += ["", "Problems:"]
        by_zone: dict[str, list] = {}
        for finding in findings:
            by_zone.setdefault(finding.zone or "(repository)", []).append(finding)
        for zone, items in sorted(by_zone.items()):
            lines.append(f"  zone {zone}")
            lines += [f"    {finding.to_text()}" for finding in items]
    outcomes = [z for z in run.zones if z.error or z.status != UNCHANGED]
    if outcomes:
        lines += ["", "Zones:"]
        for outcome in outcomes:
            lines.append(f"  {outcome.zone} on {outcome.provider}: {outcome.status}"
                         + (f": {outcome.error}" if outcome.error else ""))
    if run.plan_markdown.strip():
        plan = run.plan_markdown.rstrip()
        if len(plan) > MAX_PLAN_CHARS:  # a first publish can hold thousands of changes
            plan = plan[:MAX_PLAN_CHARS].rsplit("\n", 1)[0] + "\n… (plan truncated; the status page has it all)"
        lines += ["", "Plan:", plan]
    else:
        changed = [z for z in run.zones if z.changes]
        if changed:
            lines += ["", "Plan:"]
            for outcome in changed:
                lines.append(f"  {outcome.zone} on {outcome.provider} ({outcome.status}):")
                for change in outcome.changes:
                    old = " ".join(change.old)
                    new = " ".join(change.new)
                    detail = {"create": f"+ {new}", "delete": f"- {old}"}.get(change.action, f"{old} -> {new}")
                    lines.append(f"    {change.action} {change.name} {change.type} {change.ttl}: {detail}")
    return "\n".join(lines) + "\n"


def compose_mail(run: RunRecord, settings: NotifyConfig, status_url: str = "") -> EmailMessage:
    message = EmailMessage(policy=SMTP_POLICY)
    message["From"] = settings.from_
    message["To"] = ", ".join(recipients(run, settings))
    message["Subject"] = "[zone-publisher] " + run_summary(run)
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(f"run{run.id}", domain="zone-publisher")
    message["X-Zone-Publisher-Run"] = str(run.id)
    message.set_content(run_text(run, status_url))
    return message


def queue_run_notifications(outbox: Outbox, run: RunRecord, settings: NotifyConfig, *, status_url: str = "",
                            db: Connection | None = None) -> list[int]:
    """Write the run's messages to the outbox (before anything is sent); returns their ids.
    ``db``: add them inside the caller's transaction (see ``Outbox.add``)."""
    if not wants_notification(run, settings):
        return []
    queued = []
    people = recipients(run, settings)
    if people and (settings.smtp_host or settings.outbox):
        queued.append(outbox.add(MAIL, people, bytes(compose_mail(run, settings, status_url)), run_id=run.id,
                                 db=db, repository=run.repository))
    if settings.webhook_url:
        body = json.dumps({"event": "run", "summary": run_summary(run), "text": run_text(run, status_url),
                           "run": run.to_dict()}, sort_keys=True).encode()
        queued.append(outbox.add(WEBHOOK, (settings.webhook_url,), body, run_id=run.id, db=db,
                                 repository=run.repository))
    return queued


def webhook_signature(secret: str, body: bytes) -> str:
    """``sha256=<hex>``, exactly as GitHub signs its webhooks (``X-Hub-Signature-256``)."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


# --- delivering ------------------------------------------------------------------------------

class DeliveryError(Exception):
    """A message could not be delivered this time; it stays in the outbox."""


class RejectedDelivery(DeliveryError):
    """The receiver refused the message in a way no retry can change; it is dropped."""


def deliver_mail(item: OutboxItem, settings: NotifyConfig) -> None:
    if settings.outbox is not None:
        _write_eml(settings.outbox, item)
        return
    if not settings.smtp_host:
        raise DeliveryError("no smtp_host and no outbox directory configured")
    try:
        if settings.smtp_security == "tls":
            client: smtplib.SMTP = smtplib.SMTP_SSL(settings.smtp_host, settings.smtp_port, timeout=settings.timeout,
                                                    context=ssl.create_default_context())
        else:
            client = smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=settings.timeout)
        with client:
            if settings.smtp_security == "starttls":
                client.starttls(context=ssl.create_default_context())
            if settings.smtp_username:
                client.login(settings.smtp_username, settings.smtp_password or "")
            client.sendmail(settings.from_, list(item.destination), item.payload)
    except (OSError, smtplib.SMTPException) as error:
        # SMTP errors carry the server's reply, never our password.
        raise DeliveryError(f"SMTP {settings.smtp_host}:{settings.smtp_port}: {type(error).__name__}: {error}") from error


def _write_eml(directory: Path, item: OutboxItem) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    name = f"{time.strftime('%Y%m%dT%H%M%S', time.gmtime(item.created))}-{item.id:06d}.eml"
    handle, temporary = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=".eml")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(item.payload)
        os.replace(temporary, directory / name)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def deliver_webhook(item: OutboxItem, settings: NotifyConfig) -> None:
    headers = {"Content-Type": "application/json", "User-Agent": "zone-publisher",
               "X-Zone-Publisher-Event": "run", "X-Zone-Publisher-Delivery": str(item.id)}
    if settings.webhook_secret:
        headers["X-Hub-Signature-256"] = webhook_signature(settings.webhook_secret, item.payload)
    request = urllib.request.Request(item.destination[0], data=item.payload, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=settings.timeout) as response:
            response.read()
    except urllib.error.HTTPError as error:
        raise DeliveryError(f"webhook answered HTTP {error.code}") from error
    except (OSError, ValueError) as error:
        raise DeliveryError(f"webhook: {type(error).__name__}: {getattr(error, 'reason', error)}") from error


class Notifier:
    """Delivers due outbox items; failures are retried after ``initial_delay * 2**attempts``
    seconds, capped at ``max_delay``, forever (a message is dropped only by hand, or when its receiver
    refuses it in a way no retry can change: ``RejectedDelivery``).  Each message is claimed under
    a lease of ``lease`` seconds (default: four delivery timeouts, at least a minute) before it is
    sent, so senders of several instances never send one twice."""

    def __init__(self, outbox: Outbox, settings: NotifyConfig, *, initial_delay: float = 2.0,
                 max_delay: float = 600.0,
                 deliveries: Mapping[str, Callable[[OutboxItem], None]] | None = None,
                 lease: float | None = None) -> None:
        self.outbox = outbox
        self.owner = worker_identity()
        self.lease = lease if lease is not None else max(60.0, 4 * settings.timeout)
        self.deliveries = {MAIL: lambda item: deliver_mail(item, self.settings),
                           WEBHOOK: lambda item: deliver_webhook(item, self.settings), **(deliveries or {})}
        self.settings = settings
        self.initial_delay = initial_delay
        self.max_delay = max_delay
        self.wake = threading.Event()

    def backoff(self, attempts: int) -> float:
        return min(self.max_delay, self.initial_delay * (2 ** min(attempts, 30)))

    def send_due(self, now: float | None = None, limit: int = 50) -> int:
        """Claim and try every due item once (at most ``limit``); returns how many were delivered."""
        delivered = 0
        stalled: set[str] = set()
        tried: list[int] = []
        while len(tried) < limit:
            item = self.outbox.claim(self.owner, lease=self.lease, now=now, skip_ids=tried, skip_kinds=sorted(stalled))
            if item is None:
                break
            tried.append(item.id)
            deliver = self.deliveries.get(item.kind)
            try:
                if deliver is None:
                    raise DeliveryError(f"nothing delivers {item.kind!r} messages in this process")
                deliver(item)
            except RejectedDelivery as error:
                log.warning("notification %d refused for good, dropped: %s", item.id, error)
                self.outbox.mark_dropped(item.id, str(error))
                continue
            except DeliveryError as error:
                if item.kind in ORDERED_KINDS:
                    stalled.add(item.kind)
                delay = self.backoff(item.attempts)
                log.warning("notification %d not delivered (attempt %d, retry in %.0f s): %s",
                            item.id, item.attempts + 1, delay, error)
                self.outbox.mark_failed(item.id, str(error), time.time() + delay)
                continue
            self.outbox.mark_sent(item.id)
            delivered += 1
        return delivered

    def run(self, stop: threading.Event, idle: float = 1.0) -> None:
        """Deliver until ``stop`` is set; ``wake`` is set by the worker when it queues something."""
        while not stop.is_set():
            try:
                self.send_due()
            except Exception:  # the loop must survive anything (a locked database, a bug)
                log.exception("notification sender failed; retrying")
            self.wake.wait(idle)
            self.wake.clear()
