"""Several repositories on one instance (issue 9): each publishes only its own zones, a zone belongs
to one repository, a webhook token names one repository, runs of different repositories share a
pool of job threads.  Fast tests use the zone-file provider and local sources; the slow ones run
ten repositories with a bare git remote each into a real BIND, through the real Flask app and the
real ``zone-publisher serve``."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from dataclasses import replace
from pathlib import Path

import pytest

from publisher.cli import main as cli_main
from publisher.commands.serve import repository_lines
from publisher.config import Config, load_config_text
from publisher.publish.orchestrator import APPLIED, BLOCKED, PLANNED, publish
from publisher.publish.ownership import OwnershipStore
from publisher.publish.state import StateStore
from publisher.service.jobs import FAILED as JOB_FAILED, POLL
from publisher.service.notify import Notifier
from publisher.service.tokens import hash_token
from publisher.service.web import create_app
from publisher.service.worker import Worker

NAMES = ("alpha", "bravo")
SECRETS = {"alpha": "secret-of-alpha", "bravo": "secret-of-bravo"}
TOKENS = {"alpha": "token-of-alpha-0123456789abcdef", "bravo": "token-of-bravo-0123456789abcdef"}


def zone_text(address: str) -> str:
    return f'a("www", "{address}")\n'


# The instance-wide part most tests here share: one state database, one name server, one shared
# zone-file provider "files".
SHARED = """
[state]
path = "state.db"
[defaults]
nameservers = ["ns1.host.example."]
[[provider]]
name = "files"
type = "zonefile"
directory = "served"
"""


def instance(tmp_path: Path, repositories: dict[str, str] | None = None, shared: str = "") -> Config:
    """An instance of repositories (name -> extra keys of its table) sharing the provider ``files``;
    each has its source in repos/<name>, its own recipients, outbox, token and secret."""
    text = f"""
[state]
path = "state.db"
[defaults]
nameservers = ["ns1.host.example.", "ns2.host.example."]
[[provider]]
name = "files"
type = "zonefile"
directory = "served"
{shared}
"""
    for name, extra in (repositories or {name: "" for name in NAMES}).items():
        (tmp_path / "repos" / name).mkdir(parents=True, exist_ok=True)
        text += f"""
[[repository]]
name = "{name}"
{extra}
[repository.source]
path = "repos/{name}"
[repository.webhook]
tokens = ["{hash_token(TOKENS.get(name, name + '-token'))}"]
secret = "{SECRETS.get(name, name + '-secret')}"
repository = "acme/{name}"
[repository.notify]
to = ["dns@{name}.example"]
outbox = "mail-{name}"
"""
    return load_config_text(text, base=tmp_path)


def write(tmp_path: Path, repository: str, zone: str, address: str) -> None:
    (tmp_path / "repos" / repository / f"{zone}.lua").write_text(zone_text(address))


def served(tmp_path: Path, zone: str) -> str:
    path = tmp_path / "served" / f"{zone}.zone"
    return path.read_text() if path.exists() else ""


def apply(config: Config, name: str, *, force: bool = False, plan: bool = False):
    view = config.view(name)
    with StateStore(config.state.path) as state:
        return publish(view, view.source.path, apply=not plan, force=force, state=state)


def outcome(report, zone: str):
    (found,) = {o.zone: o for o in report.outcomes if o.zone == zone}.values()
    return found


# -- ownership in the orchestrator --------------------------------------------------------------

def test_a_repository_cannot_publish_a_zone_another_owns(tmp_path):
    config = instance(tmp_path)
    write(tmp_path, "alpha", "shared.example", "192.0.2.1")
    assert outcome(apply(config, "alpha"), "shared.example.").status == APPLIED
    write(tmp_path, "bravo", "shared.example", "198.51.100.66")
    write(tmp_path, "bravo", "bravo.example", "198.51.100.1")

    report = apply(config, "bravo", force=True)
    taken = outcome(report, "shared.example.")
    assert taken.status == BLOCKED and not taken.changes and report.exit_code == 1
    [refusal] = [f for f in taken.findings if f.is_error]
    assert refusal.code == "zone-owned-elsewhere" and "alpha" not in refusal.message  # never the owner's name
    assert "192.0.2.1" in served(tmp_path, "shared.example") and "198.51.100.66" not in served(tmp_path, "shared.example")
    assert outcome(report, "bravo.example.").status == APPLIED  # its own zones go on
    assert "shared.example." in report.plan.to_text() and "zone-owned-elsewhere" in report.plan.to_text()
    with OwnershipStore(tmp_path / "state.db") as ownership:
        assert ownership.owners() == {"shared.example.": "alpha", "bravo.example.": "bravo"}
    # alpha's next run is unaffected
    write(tmp_path, "alpha", "shared.example", "192.0.2.2")
    assert outcome(apply(config, "alpha"), "shared.example.").status == APPLIED
    assert "192.0.2.2" in served(tmp_path, "shared.example")


def test_a_zone_outside_owns_is_refused_without_reading_the_provider(tmp_path):
    config = instance(tmp_path, {"alpha": 'owns = ["alpha.example", "*.alpha.example"]', "bravo": ""})
    write(tmp_path, "alpha", "alpha.example", "192.0.2.1")
    write(tmp_path, "alpha", "sub.alpha.example", "192.0.2.2")
    write(tmp_path, "alpha", "bank.example", "192.0.2.3")
    (tmp_path / "served").mkdir()
    (tmp_path / "served" / "bank.example.zone").write_text("not a zone file: reading it would fail\n")
    report = apply(config, "alpha")
    refused = outcome(report, "bank.example.")
    assert refused.status == BLOCKED and [f.code for f in refused.findings if f.is_error] == ["zone-not-allowed"]
    assert not refused.error  # the provider was never asked: it would have failed on that file
    assert served(tmp_path, "bank.example") == "not a zone file: reading it would fail\n"
    assert {outcome(report, z).status for z in ("alpha.example.", "sub.alpha.example.")} == {APPLIED}


def test_a_run_never_deletes_the_zones_of_another_repository_on_a_shared_provider(tmp_path):
    config = instance(tmp_path, {"alpha": "", "bravo": "[repository.defaults]\nallow_zone_deletion = true"})
    write(tmp_path, "alpha", "alpha.example", "192.0.2.1")
    write(tmp_path, "bravo", "bravo.example", "198.51.100.1")
    apply(config, "alpha")
    apply(config, "bravo")
    report = apply(config, "bravo", force=True)
    assert [o.zone for o in report.outcomes] == ["bravo.example."]  # alpha's zone is not "a removed file"
    assert "192.0.2.1" in served(tmp_path, "alpha.example")


def test_deleting_a_zone_gives_its_ownership_back(tmp_path):
    config = instance(tmp_path)
    write(tmp_path, "alpha", "alpha.example", "192.0.2.1")
    write(tmp_path, "alpha", "moving.example", "192.0.2.2")
    apply(config, "alpha")
    (tmp_path / "repos" / "alpha" / "moving.example.lua").unlink()
    deleted = apply(config, "alpha", force=True)
    assert outcome(deleted, "moving.example.").status == APPLIED and not served(tmp_path, "moving.example")
    with OwnershipStore(tmp_path / "state.db") as ownership:
        assert ownership.owner("moving.example.") is None and ownership.owner("alpha.example.") == "alpha"
    write(tmp_path, "bravo", "moving.example", "198.51.100.9")
    assert outcome(apply(config, "bravo"), "moving.example.").status == APPLIED
    assert "198.51.100.9" in served(tmp_path, "moving.example")


def test_a_plan_only_checks_and_an_apply_claims(tmp_path):
    config = instance(tmp_path)
    write(tmp_path, "alpha", "new.example", "192.0.2.1")
    write(tmp_path, "bravo", "new.example", "198.51.100.1")
    for name in NAMES:  # both may publish it as far as a plan can tell
        assert outcome(apply(config, name, plan=True), "new.example.").status == PLANNED
    with OwnershipStore(tmp_path / "state.db") as ownership:
        assert ownership.owners() == {}
    assert outcome(apply(config, "bravo"), "new.example.").status == APPLIED
    assert outcome(apply(config, "alpha", plan=True), "new.example.").status == BLOCKED


def test_two_repositories_applying_the_same_new_zone_at_once_one_wins(tmp_path):
    config = instance(tmp_path)
    addresses = {"alpha": "192.0.2.1", "bravo": "198.51.100.1"}
    for name, address in addresses.items():
        write(tmp_path, name, "contested.example", address)
    start = threading.Barrier(2)
    reports = {}

    def race(name: str) -> None:
        start.wait()
        reports[name] = apply(config, name)

    threads = [threading.Thread(target=race, args=(name,)) for name in NAMES]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    statuses = {name: outcome(report, "contested.example.").status for name, report in reports.items()}
    assert sorted(statuses.values()) == [APPLIED, BLOCKED]
    [winner] = [name for name, status in statuses.items() if status == APPLIED]
    assert addresses[winner] in served(tmp_path, "contested.example")
    with OwnershipStore(tmp_path / "state.db") as ownership:
        assert ownership.owner("contested.example.") == winner


def test_the_one_repository_form_claims_nothing(tmp_path):
    (tmp_path / "zones").mkdir()
    (tmp_path / "zones" / "one.example.lua").write_text(zone_text("192.0.2.1"))
    config = load_config_text('[source]\npath = "zones"\n[defaults]\nnameservers = ["ns1.host.example."]\n'
                              '[[provider]]\nname = "files"\ntype = "zonefile"\ndirectory = "served"\n'
                              '[state]\npath = "state.db"\n', base=tmp_path)
    with StateStore(config.state.path) as state:
        assert outcome(publish(config, tmp_path / "zones", apply=True, state=state), "one.example.").status == APPLIED
    with OwnershipStore(tmp_path / "state.db") as ownership:
        assert ownership.owners() == {}


# -- the worker -----------------------------------------------------------------------------------

def broken(tmp_path: Path, repository: str, zone: str) -> None:
    (tmp_path / "repos" / repository / f"{zone}.lua").write_text('a("www", \n')


def test_each_repository_is_mailed_through_its_own_settings(tmp_path):
    config = instance(tmp_path)
    broken(tmp_path, "alpha", "alpha.example")
    write(tmp_path, "bravo", "bravo.example", "198.51.100.1")
    broken(tmp_path, "bravo", "broken-bravo.example")
    worker = Worker(config)
    try:
        for name in NAMES:
            worker.queue.enqueue(name)
            run = worker.run_once()
            assert run.repository == name and run.status == "problems"
        assert Notifier(worker.outbox, config.notify, deliveries=worker.notifier.deliveries).send_due() == 2
        for name in NAMES:
            [mail] = (tmp_path / f"mail-{name}").glob("*.eml")
            text = mail.read_text()
            other = next(n for n in NAMES if n != name)
            assert f"To: dns@{name}.example" in text and f"{other}.example" not in text
    finally:
        worker.close()


def test_a_poll_repeating_its_own_repositorys_last_news_is_not_mailed_again(tmp_path):
    config = instance(tmp_path)
    broken(tmp_path, "alpha", "alpha.example")
    write(tmp_path, "bravo", "bravo.example", "198.51.100.1")
    worker = Worker(config)
    try:
        worker.queue.enqueue("alpha")
        first = worker.run_once()
        worker.queue.enqueue("bravo")  # another repository's run comes in between
        assert worker.run_once().status == "ok"
        worker.queue.enqueue("alpha", kind=POLL)
        again = worker.run_once()
        assert again.status == first.status == "problems"
        assert [item["run_id"] for item in worker.outbox.items()] == [first.id]  # mailed once
    finally:
        worker.close()


def test_a_job_of_a_repository_no_longer_configured_fails_with_a_clear_error(tmp_path, caplog):
    config = instance(tmp_path)
    worker = Worker(config)
    try:
        queued = worker.queue.enqueue("charlie")
        assert worker.run_once() is None
        job = worker.queue.get(queued.job_id)
        assert job.state == JOB_FAILED and "'charlie' is no longer in the configuration" in job.error
        assert worker.runs.recent() == [] and "Traceback" not in caplog.text
    finally:
        worker.close()


# -- the webhook ----------------------------------------------------------------------------------

def github_push(repository: str, branch: str = "main", secret: str | None = None) -> tuple[bytes, dict]:
    body = json.dumps({"ref": f"refs/heads/{branch}", "after": "1" * 40,
                       "repository": {"full_name": repository}}).encode()
    signature = "sha256=" + hmac.new((secret or "").encode(), body, hashlib.sha256).hexdigest()
    return body, {"X-GitHub-Event": "push", "X-GitHub-Delivery": hashlib.sha1(body + signature.encode()).hexdigest(),
                  "Content-Type": "application/json", "X-Hub-Signature-256": signature}


def test_a_token_names_its_repository_and_can_neither_trigger_nor_publish_another(tmp_path):
    config = instance(tmp_path)
    app = create_app(config, {"TESTING": True})
    client = app.test_client()
    queue = app.extensions["publisher"].queue

    def hook(token: str, repository: str, secret: str):
        body, headers = github_push(repository, secret=secret)
        return client.post(f"/notifications/{token}/push", data=body, headers=headers)

    answer = hook(TOKENS["alpha"], "acme/alpha", SECRETS["alpha"])
    assert answer.status_code == 202
    assert queue.get(answer.get_json()["job"]).repository == "alpha"
    # alpha's token with bravo's repository, or signed with bravo's secret: refused, nothing queued
    assert hook(TOKENS["alpha"], "acme/bravo", SECRETS["alpha"]).get_json()["status"] == "wrong-repository"
    assert hook(TOKENS["alpha"], "acme/bravo", SECRETS["bravo"]).status_code == 401
    assert hook(TOKENS["alpha"], "acme/alpha", SECRETS["bravo"]).status_code == 401
    assert hook("token-of-nobody-0123456789abcdef", "acme/bravo", SECRETS["bravo"]).status_code == 403
    assert [job.repository for job in queue.jobs()] == ["alpha"]
    answer = hook(TOKENS["bravo"], "acme/bravo", SECRETS["bravo"])
    assert answer.status_code == 202 and queue.get(answer.get_json()["job"]).repository == "bravo"


def test_each_repository_has_its_own_deploy_branch_at_the_webhook(tmp_path):
    config = instance(tmp_path)
    bravo = config.view("bravo")
    config = replace(config, repositories=(config.view("alpha"),
                                           replace(bravo, source=replace(bravo.source, branch="live"))))
    client = create_app(config, {"TESTING": True}).test_client()
    for token, repository, secret, branch, status in (
            (TOKENS["bravo"], "acme/bravo", SECRETS["bravo"], "main", "ignored"),  # alpha's branch, not bravo's
            (TOKENS["bravo"], "acme/bravo", SECRETS["bravo"], "live", "queued"),
            (TOKENS["alpha"], "acme/alpha", SECRETS["alpha"], "live", "ignored")):
        body, headers = github_push(repository, branch=branch, secret=secret)
        assert client.post(f"/notifications/{token}/push", data=body, headers=headers).get_json()["status"] == status


# -- commands -------------------------------------------------------------------------------------

def config_file(tmp_path: Path) -> Path:
    instance(tmp_path)  # makes the source directories
    path = tmp_path / "publisher.toml"
    text = SHARED
    for name in NAMES:
        text += f'[[repository]]\nname = "{name}"\n[repository.source]\npath = "repos/{name}"\n'
    path.write_text(text)
    return path


def test_plan_and_apply_need_a_repository_name_with_several(tmp_path, capsys):
    path = config_file(tmp_path)
    write(tmp_path, "alpha", "alpha.example", "192.0.2.1")
    write(tmp_path, "bravo", "bravo.example", "198.51.100.1")
    assert cli_main(["plan", "--config", str(path)]) == 2
    assert "--repository NAME (alpha, bravo)" in capsys.readouterr().err
    assert cli_main(["apply", "--config", str(path), "--repository", "charlie"]) == 2
    assert "no repository named 'charlie'; it has: alpha, bravo" in capsys.readouterr().err
    assert cli_main(["apply", "--config", str(path), "--repository", "alpha"]) == 0
    assert "alpha.example." in capsys.readouterr().out and served(tmp_path, "alpha.example")
    assert not served(tmp_path, "bravo.example")
    write(tmp_path, "bravo", "alpha.example", "198.51.100.2")  # ownership from the state database
    assert cli_main(["plan", "--config", str(path), "--repository", "bravo"]) == 0
    assert "zone-owned-elsewhere" in capsys.readouterr().out
    assert cli_main(["build", str(tmp_path / "repos" / "bravo"), "--out", str(tmp_path / "built"),
                     "--config", str(path), "--repository", "bravo"]) == 1
    assert "zone-owned-elsewhere" in capsys.readouterr().err
    assert (tmp_path / "built" / "bravo.example.zone").exists() and not (tmp_path / "built" / "alpha.example.zone").exists()


def test_serve_names_each_repository_and_never_a_token(tmp_path):
    config = instance(tmp_path)
    lines = repository_lines(config, "http://127.0.0.1:8053")
    assert [line.split()[2] for line in lines] == list(NAMES)
    assert all("/notifications/<token>/push" in line for line in lines)
    assert not any(token in "\n".join(lines) or hash_token(token) in "\n".join(lines) for token in TOKENS.values())


# -- for real: ten repositories, a bare git remote each, one BIND, one `zone-publisher serve` -------

def lua_zone(address: str) -> str:
    """The zone as named.new_zone() made it (its NS and glue), plus the www address under test."""
    return f'ns("", concat("ns1", _a))\na("ns1", "127.0.0.1")\na("www", "{address}")\n'


def www(named, origin: str) -> set[str]:
    import dns.message
    import dns.query
    import dns.rdatatype

    query = dns.message.make_query(f"www.{origin}", dns.rdatatype.A)
    try:
        response = dns.query.udp(query, named.address, port=named.port, timeout=1)
    except Exception:
        return set()
    return {rdata.address for rrset in response.answer for rdata in rrset}


class Tenant:
    """One customer: a bare git remote with one zone in a real BIND, a webhook token and secret."""

    def __init__(self, root: Path, named, index: int) -> None:
        from tests.test_fetch import Remote
        from publisher.service.tokens import generate_token

        self.name = f"customer-{index}"
        self.named = named
        self.origin = named.new_zone()
        self.remote = Remote(root / self.name)
        self.token = generate_token()
        self.secret = generate_token(16)

    def commit(self, address: str, message: str = "update", origin: str | None = None) -> str:
        return self.remote.commit({f"{(origin or self.origin).rstrip('.')}.lua": lua_zone(address)}, message)

    def table(self, extra: str = "") -> str:
        return f"""
[[repository]]
name = "{self.name}"
{extra}
[repository.source]
url = "{self.remote.bare}"
branch = "main"
[repository.webhook]
tokens = ["{hash_token(self.token)}"]
secret = "{self.secret}"
repository = "acme/{self.name}"
"""

    def served(self, origin: str | None = None) -> set[str]:
        return www(self.named, origin or self.origin)


def service_config(root: Path, named, tenants: list[Tenant], extra: dict[str, str] | None = None,
                   workers: int = 3) -> Path:
    text = f"""
[state]
path = "state.db"
[jobs]
workers = {workers}
retry_delay = 1
[[provider]]
name = "bind"
type = "rfc2136"
server = "{named.address}"
port = {named.port}
tsig_keyfile = "{named.keyfile}"
timeout = 5
""" + "".join(tenant.table((extra or {}).get(tenant.name, "")) for tenant in tenants)
    path = root / "publisher.toml"
    path.write_text(text)
    return path


def signed_push(tenant: Tenant, commit: str, *, repository: str | None = None, secret: str | None = None):
    from publisher.service.tokens import generate_token

    body = json.dumps({"ref": "refs/heads/main", "after": commit, "head_commit": {"id": commit},
                       "repository": {"full_name": repository or f"acme/{tenant.name}"}}).encode()
    signature = "sha256=" + hmac.new((secret or tenant.secret).encode(), body, hashlib.sha256).hexdigest()
    return body, {"X-GitHub-Event": "push", "X-GitHub-Delivery": generate_token(8),
                  "Content-Type": "application/json", "X-Hub-Signature-256": signature}


def last_run(state: Path, repository: str) -> tuple[int, str, list[tuple[str, str, str]]] | None:
    """(id, status, [(zone, status, findings json)]) of the repository's newest run, read from the database."""
    import sqlite3

    with sqlite3.connect(state) as db:
        row = db.execute("SELECT id, status FROM runs WHERE repository = ? ORDER BY id DESC LIMIT 1",
                         (repository,)).fetchone()
        if row is None:
            return None
        zones = db.execute("SELECT zone, status, findings FROM run_zones WHERE run_id = ?", (row[0],)).fetchall()
    return row[0], row[1], zones


def jobs_of(state: Path, repository: str) -> int:
    import sqlite3

    with sqlite3.connect(state) as db:
        return db.execute("SELECT COUNT(*) FROM jobs WHERE repository = ?", (repository,)).fetchone()[0]


@pytest.mark.slow
def test_ten_repositories_on_one_serve_into_bind(tmp_path, named_server):
    import os
    import signal
    import subprocess
    import sys

    import requests

    from tests.mailserver import free_port
    from tests.test_service_e2e import ROOT, wait_until

    tenants = [Tenant(tmp_path, named_server, index) for index in range(10)]
    for index, tenant in enumerate(tenants):
        tenant.commit(f"192.0.2.{index + 1}", "first version")
    owner, other, deleter = tenants[0], tenants[1], tenants[2]
    config = service_config(tmp_path, named_server, tenants,
                            {deleter.name: "[repository.defaults]\nallow_zone_deletion = true"})
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PUBLISHER_WEB_WORKERS": "2"}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    with log.open("ab") as stream:
        process = subprocess.Popen([sys.executable, "-m", "publisher", "serve", "--config", str(config),
                                    "--listen", f"127.0.0.1:{port}"], cwd=tmp_path, env=env, stdout=stream,
                                   stderr=stream, start_new_session=True)

    def hook(tenant: Tenant, commit: str, token: str | None = None, **kwargs) -> requests.Response:
        body, headers = signed_push(tenant, commit, **kwargs)
        return requests.post(f"{url}/notifications/{token or tenant.token}/push", data=body, headers=headers,
                             timeout=10)

    def healthy() -> bool:
        if process.poll() is not None:
            raise AssertionError(log.read_text()[-3000:])
        try:
            return requests.get(url + "/healthz", timeout=5).status_code == 200
        except requests.RequestException:
            return False

    state = tmp_path / "state.db"
    try:
        wait_until(healthy, "serve to answer")
        printed = log.read_text()
        assert all(f"repository {t.name} " in printed for t in tenants)
        assert not any(t.token in printed for t in tenants)
        # Each publishes its own zone (the start-up poll, then a push each through its own token).
        for index, tenant in enumerate(tenants):
            wait_until(lambda: tenant.served() == {f"192.0.2.{index + 1}"}, f"{tenant.name}'s first version")
        for index, tenant in enumerate(tenants):
            assert hook(tenant, tenant.commit(f"198.51.100.{index + 1}", "second")).status_code == 202
        for index, tenant in enumerate(tenants):
            wait_until(lambda: tenant.served() == {f"198.51.100.{index + 1}"}, f"{tenant.name}'s push")

        # A token of one repository can neither trigger nor publish another.
        waiting = other.commit("203.0.113.7", "not announced yet")
        jobs_before = jobs_of(state, other.name)
        assert hook(other, waiting, token=owner.token, secret=owner.secret).status_code == 403  # names `other`
        assert hook(other, waiting, token=owner.token).status_code == 401  # signed with other's secret
        assert hook(owner, waiting, token=other.token, secret=owner.secret).status_code == 401
        assert jobs_of(state, other.name) == jobs_before and other.served() == {"198.51.100.2"}
        assert hook(other, waiting).status_code == 202
        wait_until(lambda: other.served() == {"203.0.113.7"}, "the announced push")

        # One repository cannot publish a zone another owns: an error on its run, the zone untouched.
        run_before = last_run(state, owner.name)[0]
        takeover = owner.commit("203.0.113.66", "take over", origin=other.origin)
        assert hook(owner, takeover).status_code == 202
        run = wait_until(lambda: (lambda r: r if r and r[0] != run_before else None)(last_run(state, owner.name)),
                         "the takeover run")
        zones = {zone: (status, json.loads(findings)) for zone, status, findings in run[2]}
        status, findings = zones[other.origin]
        assert status == BLOCKED and run[1] == "problems"
        assert [f["code"] for f in findings if f["severity"] == "error"] == ["zone-owned-elsewhere"]
        assert not any(other.name in f["message"] for f in findings)
        assert zones[owner.origin][0] in ("applied", "unchanged")
        assert other.served() == {"203.0.113.7"} and owner.served() == {"198.51.100.1"}
        assert hook(other, other.commit("203.0.113.8", "the owner goes on")).status_code == 202
        wait_until(lambda: other.served() == {"203.0.113.8"}, "the owner's next push")
        assert last_run(state, other.name)[1] == "ok"

        # A repository allowed to delete zones never deletes another's (a shared provider).
        assert hook(deleter, deleter.commit("198.51.100.99", "deleter runs")).status_code == 202
        wait_until(lambda: deleter.served() == {"198.51.100.99"}, "the deleting repository's run")
        assert [zone for zone, _, _ in last_run(state, deleter.name)[2]] == [deleter.origin]
        for index, tenant in enumerate(tenants[3:], start=3):
            assert tenant.served() == {f"198.51.100.{index + 1}"}
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.mark.slow
def test_ten_repositories_through_the_flask_app_into_bind(tmp_path, named_server):
    """The real app and the real worker in this process: a token publishes only its own repository."""
    from publisher.config import load_config

    tenants = [Tenant(tmp_path, named_server, index) for index in range(10)]
    commits = {t.name: t.commit(f"192.0.2.{index + 1}", "first") for index, t in enumerate(tenants)}
    config = load_config(service_config(tmp_path, named_server, tenants))
    app = create_app(config, {"TESTING": True})
    client = app.test_client()
    worker = Worker(config)
    try:
        for index, tenant in enumerate(tenants):
            body, headers = signed_push(tenant, commits[tenant.name])
            assert client.post(f"/notifications/{tenant.token}/push", data=body, headers=headers).status_code == 202
        while worker.run_once() is not None:
            pass
        assert [t.served() for t in tenants] == [{f"192.0.2.{index + 1}"} for index in range(10)]
        first, second = tenants[0], tenants[1]
        second.commit("203.0.113.1", "waiting")
        body, headers = signed_push(second, commits[second.name], secret=first.secret)
        assert client.post(f"/notifications/{first.token}/push", data=body, headers=headers).status_code == 403
        assert worker.run_once() is None and second.served() == {"192.0.2.2"}
    finally:
        worker.close()


@pytest.mark.slow
def test_a_repository_spinning_to_its_cpu_limit_holds_one_thread_of_the_pool(tmp_path):
    from tests.test_fetch import Remote

    spinning, quick = Remote(tmp_path / "spinning"), Remote(tmp_path / "quick")
    spinning.commit({f"spin{index}.example.lua": "while true do end\n" for index in range(4)}, "spin")
    config = load_config_text(f"""
{SHARED}[jobs]
workers = 2
[sandbox]
cpu_seconds = 1
wall_seconds = 5
[[repository]]
name = "spinning"
[repository.source]
url = "{spinning.bare}"
[[repository]]
name = "quick"
[repository.source]
url = "{quick.bare}"
""", base=tmp_path)
    worker = Worker(config)
    stop = threading.Event()
    try:
        spun = worker.queue.enqueue("spinning")
        worker.start(stop)  # the quick repository has no branch yet: its start-up poll finds nothing
        from tests.test_service_e2e import wait_until
        wait_until(lambda: worker.queue.get(spun.job_id).state == "running", "the spinning run to start")
        worker.queue.enqueue("spinning", sender="again")  # it keeps having work: one job waits
        quick.commit({"quick.example.lua": zone_text("192.0.2.1")}, "quick")
        worker.queue.enqueue("quick")
        wait_until(lambda: served(tmp_path, "quick.example"), "the quick repository's zone")
        assert worker.queue.get(spun.job_id).state == "running"  # still spinning: the quick run did not wait for it
        assert [run.repository for run in worker.runs.recent()] == ["quick"]
        wait_until(lambda: worker.queue.get(spun.job_id).state == "done", "the spinning run to end", timeout=120)
        [spin] = worker.runs.recent(repository="spinning", limit=1)
        assert {z.status for z in spin.zones} == {"kept-last-good"}
        assert any("cpu" in f.message.lower() for f in spin.all_findings)
    finally:
        stop.set()
        worker.close()


@pytest.mark.slow
def test_sigterm_hands_every_running_job_of_the_pool_back(tmp_path):
    import os
    import signal
    import subprocess
    import sys

    from publisher.service.jobs import JobQueue
    from tests.test_fetch import Remote
    from tests.test_service_e2e import ROOT, wait_until

    tables = ""
    for name in NAMES:
        remote = Remote(tmp_path / name)
        remote.commit({f"spin{index}.{name}.example.lua": "while true do end\n" for index in range(3)}, "spin")
        tables += f'[[repository]]\nname = "{name}"\n[repository.source]\nurl = "{remote.bare}"\n'
    config_path = tmp_path / "publisher.toml"
    config_path.write_text(f"""
{SHARED}[jobs]
workers = 2
[sandbox]
cpu_seconds = 20
wall_seconds = 30
{tables}""")
    queue = JobQueue(tmp_path / "state.db")
    jobs = [queue.enqueue(name).job_id for name in NAMES]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    worker = subprocess.Popen([sys.executable, "-m", "publisher.service.worker", "--config", str(config_path)],
                              stdout=subprocess.DEVNULL, stderr=(tmp_path / "worker.log").open("ab"), env=env,
                              start_new_session=True)
    try:
        wait_until(lambda: all(queue.get(job).state == "running" for job in jobs), "both repositories to run at once")
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=30) == 0
    finally:
        try:
            os.killpg(worker.pid, signal.SIGKILL)  # the sandboxes still spinning
        except ProcessLookupError:
            pass
        worker.wait()
    handed_back = [queue.get(job) for job in jobs]
    assert [(job.state, job.attempts, job.lease_until) for job in handed_back] == [("queued", 0, None)] * 2, \
        (tmp_path / "worker.log").read_text()
    queue.close()


def test_each_repository_reports_to_its_own_forge_with_its_own_token(tmp_path):
    from tests.forge_servers import GitHubServer
    from tests.test_fetch import Remote

    forges = {name: GitHubServer(token=f"forge-token-of-{name}").start() for name in NAMES}
    tables, commits = "", {}
    for name in NAMES:
        remote = Remote(tmp_path / name)
        commits[name] = remote.commit({f"{name}.example.lua": zone_text("192.0.2.1")}, "first")
        tables += f"""
[[repository]]
name = "{name}"
[repository.source]
url = "{remote.bare}"
[repository.webhook]
tokens = ["{hash_token(TOKENS[name])}"]
secret = "{SECRETS[name]}"
repository = "acme/{name}"
[repository.forge]
type = "github"
api_url = "{forges[name].api_url}"
token = "forge-token-of-{name}"
repository = "acme/{name}"
"""
    config = load_config_text(SHARED + tables, base=tmp_path)
    client = create_app(config, {"TESTING": True}).test_client()
    worker = Worker(config, notify_delays=(0.0, 0.0))
    try:
        for name in NAMES:
            body = json.dumps({"ref": "refs/heads/main", "after": commits[name],
                               "repository": {"full_name": f"acme/{name}"}}).encode()
            signature = "sha256=" + hmac.new(SECRETS[name].encode(), body, hashlib.sha256).hexdigest()
            answer = client.post(f"/notifications/{TOKENS[name]}/push", data=body, headers={
                "X-GitHub-Event": "push", "X-GitHub-Delivery": name, "Content-Type": "application/json",
                "X-Hub-Signature-256": signature})
            assert answer.status_code == 202
        while worker.run_once() is not None:
            pass
        assert worker.notifier.send_due() == 4 and worker.outbox.pending() == 0
        for name in NAMES:  # each forge refuses any other token: every status reached the right one
            assert [(s.commit, s.state) for s in forges[name].ok_statuses()] == [(commits[name], "pending"),
                                                                                (commits[name], "success")]
    finally:
        worker.close()
        for forge in forges.values():
            forge.stop()
