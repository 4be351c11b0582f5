"""Notifications: the persisted outbox, SMTP (plain, STARTTLS, TLS, auth) against a real aiosmtpd
server, retry after an outage, .eml files, and the signed outbound webhook."""

import email
import email.policy
import hashlib
import hmac
import http.server
import json
import ssl
import threading
import time
from dataclasses import replace

import pytest

from publisher.config import NotifyConfig
from publisher.model import Change, Finding
from publisher.service.notify import MAIL, Notifier, Outbox, queue_run_notifications, run_text, webhook_signature
from publisher.outcome import OK, PROBLEMS, ZoneOutcome
from publisher.service.runs import RunRecord
from tests.mailserver import MailServer, free_port, self_signed_certificate

BROKEN = Finding("error", "cname-and-other-data", "example.com.", "example.com.lua", 7,
                 "www has a CNAME and other data")


def problem_run(**overrides) -> RunRecord:
    run = RunRecord(
        repository="example/dns", trigger="push", status=PROBLEMS, started=100.0, finished=101.5,
        commit="abcdef0123456789abcdef0123456789abcdef01", sender="github", author_name="Alice",
        author_email="alice@example.org", subject="Add www",
        zones=(ZoneOutcome("example.com.", "primary", "kept-last-good", (), (BROKEN,)),
               ZoneOutcome("example.net.", "primary", "applied",
                           (Change("create", "www.example.net.", "A", 300, (), ("192.0.2.1",)),), ())),
        id=42)
    return replace(run, **overrides)


@pytest.fixture
def outbox(state_location):
    box = Outbox(state_location)
    yield box
    box.close()


def test_body_names_zone_file_line_and_the_plan():
    text = run_text(problem_run(), "http://publisher.example/")
    assert "zone example.com." in text
    assert "example.com.lua:7: error: www has a CNAME and other data [cname-and-other-data]" in text
    assert "create www.example.net. A 300: + 192.0.2.1" in text
    assert "http://publisher.example/runs/42" in text


def test_huge_plans_are_truncated_in_mail():
    text = run_text(problem_run(plan_markdown="| create | x |\n" * 20000))
    assert len(text) < 110_000 and "plan truncated" in text


def test_only_runs_with_problems_are_mailed_unless_every_run(outbox, tmp_path):
    settings = NotifyConfig(to=("ops@example.org",), outbox=tmp_path / "mail")
    assert queue_run_notifications(outbox, problem_run(status=OK, zones=()), settings) == []
    assert len(queue_run_notifications(outbox, problem_run(), settings)) == 1
    assert len(queue_run_notifications(outbox, problem_run(status=OK), replace(settings, every_run=True))) == 1
    assert outbox.pending() == 2


def test_eml_files_written_for_make_run(outbox, tmp_path):
    settings = NotifyConfig(to=("ops@example.org",), outbox=tmp_path / "mail", notify_author=True)
    queue_run_notifications(outbox, problem_run(), settings)
    assert Notifier(outbox, settings).send_due() == 1
    files = list((tmp_path / "mail").glob("*.eml"))
    assert len(files) == 1
    message = email.message_from_bytes(files[0].read_bytes(), policy=email.policy.default)
    assert message["To"] == "ops@example.org, alice@example.org"
    assert "example.com.lua:7" in message.get_content()
    assert outbox.pending() == 0


def test_smtp_delivery_to_a_real_server(outbox):
    server = MailServer().start()
    try:
        settings = NotifyConfig(smtp_host="127.0.0.1", smtp_port=server.port, to=("ops@example.org",),
                                from_="publisher@example.org")
        queue_run_notifications(outbox, problem_run(), settings)
        assert Notifier(outbox, settings).send_due() == 1
        [message] = server.wait_for(1)
        assert server.handler.envelopes[0] == ("publisher@example.org", ("ops@example.org",))
        assert "example.com.lua:7: error" in message.get_content()
        assert message["Subject"].startswith("[zone-publisher] problems publishing abcdef012345")
    finally:
        server.stop()


def test_smtp_down_then_back_loses_nothing(outbox):
    port = free_port()
    settings = NotifyConfig(smtp_host="127.0.0.1", smtp_port=port, to=("ops@example.org",), timeout=5)
    notifier = Notifier(outbox, settings, initial_delay=10, max_delay=40)
    queue_run_notifications(outbox, problem_run(), settings)
    assert notifier.send_due() == 0
    [row] = outbox.items()
    assert row["attempts"] == 1 and row["sent"] is None and "SMTP 127.0.0.1" in row["last_error"]
    assert row["next_attempt"] > time.time() + 5  # backing off, not hammering
    assert notifier.send_due() == 0  # not due yet: nothing attempted
    assert outbox.items()[0]["attempts"] == 1
    server = MailServer(port).start()
    try:
        assert notifier.send_due(now=time.time() + 60) == 1
        assert len(server.wait_for(1)) == 1
        assert outbox.pending() == 0
    finally:
        server.stop()


def test_backoff_doubles_and_is_capped(outbox):
    notifier = Notifier(outbox, NotifyConfig(), initial_delay=2, max_delay=30)
    assert [notifier.backoff(n) for n in range(6)] == [2, 4, 8, 16, 30, 30]


@pytest.fixture
def tls_context(tmp_path, monkeypatch):
    cert, key = self_signed_certificate(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # the client trusts our test CA
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


@pytest.mark.parametrize("security", ["starttls", "tls"])
def test_smtp_tls_with_authentication(outbox, tls_context, security):
    server = MailServer(tls=tls_context, implicit_tls=security == "tls", credentials=("publisher", "pw-123")).start()
    try:
        settings = NotifyConfig(smtp_host="127.0.0.1", smtp_port=server.port, smtp_security=security,
                                smtp_username="publisher", smtp_password="pw-123", to=("ops@example.org",))
        queue_run_notifications(outbox, problem_run(), settings)
        assert Notifier(outbox, settings).send_due() == 1
        assert len(server.wait_for(1)) == 1

        anonymous = replace(settings, smtp_username=None, smtp_password=None)
        queue_run_notifications(outbox, problem_run(), anonymous)
        assert Notifier(outbox, anonymous).send_due() == 0  # the server requires AUTH
        assert "530" in outbox.items()[0]["last_error"]
        assert len(server.messages) == 1
    finally:
        server.stop()


def test_outbound_webhook_is_signed_like_github(outbox):
    received = []

    class Receiver(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((dict(self.headers), body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/hook"
        settings = NotifyConfig(webhook_url=url, webhook_secret="slack-secret")
        [item] = queue_run_notifications(outbox, problem_run(), settings)
        assert Notifier(outbox, settings).send_due() == 1
        headers, body = received[0]
        expected = "sha256=" + hmac.new(b"slack-secret", body, hashlib.sha256).hexdigest()
        assert headers["X-Hub-Signature-256"] == expected == webhook_signature("slack-secret", body)
        payload = json.loads(body)
        assert payload["run"]["id"] == 42 and "example.com.lua:7" in payload["text"]
    finally:
        server.shutdown()


def test_webhook_error_status_is_retried(outbox):
    settings = NotifyConfig(webhook_url=f"http://127.0.0.1:{free_port()}/nothing-listens")
    queue_run_notifications(outbox, problem_run(), settings)
    assert Notifier(outbox, settings).send_due() == 0
    assert outbox.pending() == 1 and outbox.items()[0]["kind"] != MAIL


_SENDER = """
import sys, time
from publisher.config import NotifyConfig
from publisher.service.notify import Notifier, Outbox
url, port = sys.argv[1], int(sys.argv[2])
outbox = Outbox(url)
notifier = Notifier(outbox, NotifyConfig(smtp_host="127.0.0.1", smtp_port=port, from_="zp@example.org"), lease=60)
deadline = time.time() + 90
while outbox.pending() and time.time() < deadline:
    notifier.send_due()
"""


def test_senders_of_several_instances_send_each_mail_exactly_once(postgres_server, tmp_path):
    """Four instances' notifiers on one PostgreSQL outbox, delivering to a real SMTP server: every
    message arrives, none twice (each is claimed under a lease before it is sent)."""
    import subprocess
    import sys

    url = postgres_server.new_database()
    outbox = Outbox(url)
    for n in range(120):
        outbox.add(MAIL, ["ops@example.org"], f"Subject: message {n}\r\n\r\nbody {n}\r\n".encode())
    server = MailServer().start()
    try:
        script = tmp_path / "sender.py"
        script.write_text(_SENDER)
        senders = [subprocess.Popen([sys.executable, str(script), url, str(server.port)]) for _ in range(4)]
        assert [sender.wait(timeout=180) for sender in senders] == [0, 0, 0, 0]
        subjects = sorted(str(message["Subject"]) for message in server.wait_for(120, timeout=10))
    finally:
        server.stop()
    assert subjects == sorted(f"message {n}" for n in range(120))
    assert outbox.pending() == 0
    claimed_by = {row[0] for row in outbox._connection.execute("SELECT claimed_by FROM outbox").fetchall()}
    assert len(claimed_by) > 1  # the work was shared, or this proves nothing


def test_a_message_claimed_by_a_dead_sender_is_sent_by_another_after_its_lease(state_location):
    outbox = Outbox(state_location)
    item_id = outbox.add(MAIL, ["ops@example.org"], b"Subject: x\r\n\r\nbody\r\n", now=100.0)
    assert outbox.claim("dead:1", lease=60, now=100.0).id == item_id  # then its instance was killed
    assert outbox.claim("alive:1", lease=60, now=159.0) is None
    assert outbox.due(now=159.0) == []
    assert outbox.claim("alive:1", lease=60, now=160.0).id == item_id
    outbox.mark_sent(item_id)
    assert outbox.claim("alive:1", lease=60, now=1000.0) is None and outbox.pending() == 0
