"""The one outcome vocabulary: one status set, one ``ZoneOutcome``, one answer to "is this a
problem" for the mail, ``/metrics`` and the CLI exit code, and old state files still read."""

from __future__ import annotations

import ast
import email
import email.policy
import re
import sqlite3
from pathlib import Path

import pytest

import publisher
from publisher import outcome
from publisher.cli import main
from publisher.model import WARNING, Change, Finding
from publisher.outcome import (APPLIED, BLOCKED, FAILED, KEPT_LAST_GOOD, OK, PROBLEMS, RUN_STATUSES, UNCHANGED,
                               ZONE_STATUSES, ZoneOutcome, run_status)
from publisher.service.runs import RunRecord, RunStore

PACKAGE = Path(publisher.__file__).parent
DRIFT = Finding(WARNING, "zone-changed-outside", "example.test.", "example.test.lua", 0, "changed outside")
HARMLESS = Finding(WARNING, "ttl-too-low", "example.test.", "example.test.lua", 3, "ttl 30 is low")


def status_definitions() -> list[tuple[str, str, str]]:
    """(module, constant, value) of every upper-case constant in the package set to a status word."""
    words = ZONE_STATUSES | RUN_STATUSES
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Assign):
                continue
            for target in node.targets:
                names = target.elts if isinstance(target, ast.Tuple) else [target]
                values = node.value.elts if isinstance(node.value, ast.Tuple) else [node.value]
                for name, value in zip(names, values):
                    if (isinstance(name, ast.Name) and name.id.isupper() and isinstance(value, ast.Constant)
                            and value.value in words):
                        found.append((str(path.relative_to(PACKAGE)), name.id, value.value))
    return found


def test_every_status_word_is_defined_once_in_publisher_outcome():
    # The login check of the status page has its own "ok" (a credential state, not an outcome).
    elsewhere = [d for d in status_definitions()
                 if d[0] != "outcome.py" and d != ("service/web/access.py", "OK", "ok")]
    assert elsewhere == []
    defined = [value for module, _, value in status_definitions() if module == "outcome.py"]
    assert sorted(defined) == sorted(ZONE_STATUSES | RUN_STATUSES)


def test_the_modules_share_the_one_class_and_the_one_word():
    from publisher.publish import orchestrator
    from publisher.service import jobs, runs

    assert orchestrator.ZoneOutcome is runs.ZoneOutcome is outcome.ZoneOutcome
    assert jobs.FAILED is outcome.FAILED and runs.FAILED is outcome.FAILED
    assert jobs.BRANCH_DELETED is outcome.BRANCH_DELETED
    assert set(jobs.FINISHED_STATES) & ZONE_STATUSES == {FAILED}


@pytest.mark.parametrize("zone, error, findings, expected", [
    (ZoneOutcome("a.", "p", UNCHANGED), "", (), OK),
    (ZoneOutcome("a.", "p", APPLIED, findings=(HARMLESS,)), "", (), OK),
    (ZoneOutcome("a.", "p", APPLIED, findings=(DRIFT,)), "", (), PROBLEMS),
    (ZoneOutcome("a.", "p", BLOCKED), "", (), PROBLEMS),
    (ZoneOutcome("a.", "p", KEPT_LAST_GOOD), "", (), PROBLEMS),
    (ZoneOutcome("a.", "p", FAILED, error="p: timeout"), "", (), FAILED),
    (ZoneOutcome("a.", "p", UNCHANGED), "checksum changed", (), FAILED),
    (ZoneOutcome("a.", "p", UNCHANGED), "", (Finding("error", "empty-repository", "", "", 0, "no zones"),), PROBLEMS),
    (ZoneOutcome("a.", "p", UNCHANGED), "", (HARMLESS,), OK),
], ids=["unchanged", "harmless-warning", "drift", "blocked", "kept", "failed", "run-error", "run-error-finding",
        "run-warning"])
def test_run_status_from_outcomes_error_and_findings(zone, error, findings, expected):
    assert run_status((zone,), error, findings) == expected
    assert zone.has_problems == (expected != OK and not error and not findings)


def test_an_old_state_file_without_the_serial_columns_still_reads(tmp_path):
    path = tmp_path / "state.db"
    old = sqlite3.connect(path)  # the run_zones table as the previous release created it
    old.executescript("""
        CREATE TABLE runs (id INTEGER PRIMARY KEY AUTOINCREMENT, job_id INTEGER, repository TEXT NOT NULL,
            trigger TEXT NOT NULL, sender TEXT NOT NULL DEFAULT '', commit_sha TEXT,
            author_name TEXT NOT NULL DEFAULT '', author_email TEXT NOT NULL DEFAULT '',
            subject TEXT NOT NULL DEFAULT '', status TEXT NOT NULL, started REAL NOT NULL, finished REAL NOT NULL,
            timings TEXT NOT NULL DEFAULT '{}', findings TEXT NOT NULL DEFAULT '[]', error TEXT NOT NULL DEFAULT '',
            plan_markdown TEXT NOT NULL DEFAULT '');
        CREATE TABLE run_zones (run_id INTEGER NOT NULL, zone TEXT NOT NULL, provider TEXT NOT NULL,
            status TEXT NOT NULL, changes TEXT NOT NULL DEFAULT '[]', findings TEXT NOT NULL DEFAULT '[]',
            error TEXT NOT NULL DEFAULT '');
        INSERT INTO runs (repository, trigger, status, started, finished) VALUES ('example/dns', 'push', 'problems', 1, 2);
        INSERT INTO run_zones (run_id, zone, provider, status, findings) VALUES (1, 'example.com.', 'p', 'blocked', '[]');
    """)
    old.close()
    store = RunStore(path)
    try:
        (kept,) = store.get(1).zones
        assert (kept.zone, kept.status, kept.serial_before, kept.serial_after, kept.file) == (
            "example.com.", BLOCKED, None, None, "")
        assert kept.has_problems
        change = Change("create", "www.example.net.", "A", 300, (), ("192.0.2.7",))
        new = ZoneOutcome("example.net.", "p", APPLIED, (change,), (DRIFT,), serial_before=2026120101,
                          serial_after=2026120102, file="example.net.lua", timings={"apply": 0.25})
        run_id = store.record(RunRecord("example/dns", "push", PROBLEMS, 3, 4, zones=(new,)))
        assert store.get(run_id).zones == (new,)
        states = {o.zone: o for _, _, o in store.zone_states()}
        assert states["example.net."].serial_after == 2026120102 and states["example.net."].has_problems
        assert states["example.com."].status == BLOCKED
        assert store.get(run_id).to_dict()["zones"][0]["serial_after"] == 2026120102
    finally:
        store.close()


# -- a drift warning is a problem for the mail, /metrics and the CLI exit code alike -----------

def test_a_drift_warning_is_mailed_and_metrics_say_the_zone_is_not_ok(tmp_path):
    from publisher.service.web import create_app
    from publisher.service.worker import Worker
    from tests.test_fetch import Remote
    from tests.test_worker import ZONE, config_for

    remote = Remote(tmp_path / "git")
    remote.commit({"example.test.lua": ZONE}, "First version")
    config = config_for(tmp_path, remote)
    worker = Worker(config)
    try:
        worker.queue.enqueue(worker.repository)
        assert worker.run_once().status == OK and worker.outbox.pending() == 0
        app = create_app(config, {"TESTING": True})
        client = app.test_client()
        assert re.search(r'publisher_zone_ok\{provider="files",repository="[^"]*",status="applied",zone="example.test."\} 1\.0',
                         client.get("/metrics").get_data(as_text=True))

        served = tmp_path / "served" / "example.test.zone"
        text = served.read_text()
        serial = int(re.search(r"SOA \S+ \S+ (\d+)", text).group(1))
        served.write_text(text.replace("192.0.2.1", "192.0.2.66").replace(f" {serial} ", f" {serial + 1} ", 1))
        assert worker.poll_once() is not None
        run = worker.run_once()
        (zone,) = run.zones
        assert zone.status == APPLIED and any(f.code == "zone-changed-outside" for f in zone.findings)
        assert run.status == PROBLEMS

        (mail,) = worker.outbox.due(now=float("inf"))
        body = email.message_from_bytes(mail.payload, policy=email.policy.default).get_body(("plain",)).get_content()
        assert "zone-changed-outside" in body
        metrics = client.get("/metrics").get_data(as_text=True)
        assert re.search(r'publisher_zone_ok\{provider="files",repository="[^"]*",status="applied",zone="example.test."\} 0\.0',
                         metrics), metrics
    finally:
        worker.close()


def test_apply_exits_1_when_it_repaired_a_zone_changed_outside(tmp_path, capsys):
    (tmp_path / "zones").mkdir()
    (tmp_path / "zones" / "example.test.lua").write_text('a("", "192.0.2.1")\na("www", "192.0.2.2")\n')
    (tmp_path / "config.toml").write_text("""
[source]
path = "zones"
[defaults]
nameservers = ["ns1.example.net.", "ns2.example.net."]
[[provider]]
name = "files"
type = "zonefile"
directory = "served"
[state]
path = "state.db"
""")
    config = str(tmp_path / "config.toml")
    assert main(["apply", "--config", config]) == 0
    served = tmp_path / "served" / "example.test.zone"
    text = served.read_text()
    serial = int(re.search(r"SOA \S+ \S+ (\d+)", text).group(1))
    served.write_text(text.replace("192.0.2.2", "192.0.2.66").replace(f" {serial} ", f" {serial + 1} ", 1))
    capsys.readouterr()
    assert main(["apply", "--config", config]) == 1
    out = capsys.readouterr().out
    assert "example.test. -> files: applied" in out and "zone-changed-outside" in out
    assert "192.0.2.66" not in served.read_text()
    assert main(["apply", "--config", config]) == 0  # repaired: nothing left to hear about
