"""Two real ``zone-publisher serve`` instances on one real PostgreSQL (issue 12): ten repositories
(``[[repository]]`` tables, each with a bare git remote, its own webhook token and secret, its own
zone and mail recipient), 100 pushes spread over them and over both instances through the real
webhook, one instance killed with ``kill -9`` while it is applying a zone and started again.  In
the end every repository's newest commit is served by BIND, no zone was ever applied by two
instances at once (a counting proxy in front of BIND sees every DNS UPDATE on the wire), two
repositories pushing a zone both may own, each to another instance, leave it one owner, and every
recorded run was mailed exactly once, to its own repository's recipient (a real SMTP server counts
them, by run id and Message-ID).
"""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from pathlib import Path

import dns.message
import dns.query
import dns.rdatatype
import pytest
import requests

from publisher.publish.orchestrator import APPLIED, BLOCKED
from publisher.publish.ownership import OwnershipStore
from publisher.service.jobs import DONE, SUPERSEDED, JobQueue
from publisher.service.notify import Outbox
from publisher.service.runs import RunStore
from publisher.service.tokens import generate_token, hash_token
from tests.dns_proxy import CountingProxy
from tests.mailserver import MailServer
from tests.serve_instance import ServeInstance
from tests.servers import _start_named
from tests.test_fetch import Remote
from tests.test_repositories import lua_zone, signed_push
from tests.test_service_e2e import wait_until

pytestmark = pytest.mark.slow

LEASE = 5  # seconds: the failover waits this long for the dead instance's lease
HOLD = 0.4  # seconds each DNS UPDATE is held by the proxy: a run can be caught mid-apply
REPOSITORIES = 10
PUSHES = 100
KILL_AT, RESTART_AT = 35, 65  # push numbers: the kill, then the restart of the killed instance


class Tenant:
    """One repository: a bare git remote with one zone in BIND, its own token, secret and recipient."""

    def __init__(self, root: Path, named, index: int) -> None:
        self.name = f"customer-{index}"
        self.named = named
        self.origin = named.new_zone()
        self.remote = Remote(root / self.name)
        self.token = generate_token()
        self.secret = generate_token(16)
        self.recipient = f"dns@{self.name}.example"
        self.newest = self.head = ""  # the address and id of the newest commit pushed
        self.owns = [self.origin]

    def commit(self, address: str, message: str, origin: str | None = None) -> str:
        """Commit and push the zone (``origin``, by default its own) with www at ``address``."""
        if origin is None:
            self.newest = address
        self.head = self.remote.commit({f"{(origin or self.origin).rstrip('.')}.lua": lua_zone(address)}, message)
        return self.head

    def table(self) -> str:
        return f"""
[[repository]]
name = "{self.name}"
owns = [{", ".join(f'"{zone.rstrip(".")}"' for zone in self.owns)}]
[repository.source]
url = "{self.remote.bare}"
branch = "main"
[repository.webhook]
tokens = ["{hash_token(self.token)}"]
secret = "{self.secret}"
repository = "acme/{self.name}"
[repository.notify]
to = ["{self.recipient}"]
"""

    def served(self, origin: str | None = None) -> set[str]:
        query = dns.message.make_query(f"www.{origin or self.origin}", dns.rdatatype.A)
        try:
            response = dns.query.udp(query, self.named.address, port=self.named.port, timeout=1)
        except (dns.exception.Timeout, OSError):
            return set()
        return {rdata.address for rrset in response.answer for rdata in rrset}


class Instance(ServeInstance):
    """One ``serve`` with a folder of its own (git caches, logs), as on its own machine; the state
    is the shared PostgreSQL database, its URL from the environment."""

    def hook(self, tenant: Tenant, commit: str) -> requests.Response:
        body, headers = signed_push(tenant, commit)
        return requests.post(f"{self.url}/notifications/{tenant.token}/push", data=body, headers=headers, timeout=10)


def instance_config(tenants: list[Tenant], *, dns_port: int, keyfile: Path, smtp_port: int) -> str:
    return f"""
[[provider]]
name = "bind"
type = "rfc2136"
server = "127.0.0.1"
port = {dns_port}
tsig_keyfile = "{keyfile}"
timeout = 10
[state]
url = "env:ZP_STATE_URL"
[notify]
smtp_host = "127.0.0.1"
smtp_port = {smtp_port}
from = "publisher@example.org"
every_run = true
timeout = 5
[poll]
interval = 0
[jobs]
workers = 2
lease = {LEASE}
retry_delay = 1
""" + "".join(tenant.table() for tenant in tenants)


@pytest.fixture
def cluster(tmp_path, postgres_server):
    """Ten repositories, BIND behind the counting proxy, an SMTP server, and two instances on one
    fresh PostgreSQL database (not started)."""
    named = _start_named(tmp_path / "named")
    proxy = CountingProxy((named.address, named.port), hold=HOLD).start()
    mail = MailServer().start()
    url = postgres_server.new_database()
    tenants = [Tenant(tmp_path / "repositories", named, index) for index in range(REPOSITORIES)]
    contested = named.new_zone()  # a zone two repositories may both own: the first to claim it does
    for tenant in tenants[:2]:
        tenant.owns.append(contested)
    text = instance_config(tenants, dns_port=proxy.port, keyfile=named.keyfile, smtp_port=mail.port)
    instances = [Instance(tmp_path / f"instance{n}", text, url) for n in range(2)]
    yield named, proxy, mail, url, tenants, contested, instances
    for instance in instances:
        instance.stop()
    mail.stop()
    proxy.stop()
    named.stop()


def running_jobs(url: str) -> dict[str, tuple[int, int]]:
    """repository -> (job id, worker pid) of each running job: the pid is in the lease owner's name."""
    return {job.repository: (job.id, int(job.claimed_by.split(":")[1]))
            for job in JobQueue(url).jobs(state="running")}


def mail_being_sent(url: str) -> bool:
    """True while some instance holds a live claim on an unsent message (it is delivering it)."""
    outbox = Outbox(url)
    try:
        return outbox._connection.execute("SELECT 1 FROM outbox WHERE sent IS NULL AND lease_until > ?",
                                          (time.time(),)).fetchone() is not None
    finally:
        outbox.close()


def test_ten_repositories_on_two_instances_one_killed_mid_apply_lose_nothing_and_never_apply_twice(
        cluster, postgres_server):
    named, proxy, mail, url, tenants, contested, instances = cluster
    for index, tenant in enumerate(tenants):
        tenant.commit(f"192.0.2.{index + 1}", "first version")
    started = time.monotonic()
    for instance in instances:
        instance.start()
    # The start-up polls of both instances publish every first version (one run each, not two).
    for tenant in tenants:
        wait_until(lambda: tenant.served() == {tenant.newest}, f"{tenant.name}'s first version", timeout=60)

    queue = JobQueue(url)
    alive = list(instances)
    victim = killed_job = killed_pid = None
    for number in range(PUSHES):
        if number == KILL_AT:
            # Catch a run in the middle of its apply (an UPDATE on the wire) and kill its instance;
            # not while a message is being handed to the SMTP server, the one window notify.py
            # documents (accepted, "sent" not yet committed: it would be sent again).
            def applying():
                running = running_jobs(url)
                tenant = next((t for t in tenants if t.name in running and proxy.in_flight(t.origin)), None)
                if tenant is None:
                    return None
                job_id, pid = running[tenant.name]
                victim = next(instance for instance in instances if pid in instance.pids())
                if mail_being_sent(url) or not proxy.in_flight(tenant.origin):
                    return None
                os.killpg(victim.process.pid, signal.SIGKILL)  # at once: what was checked just now holds
                return job_id, pid, victim
            killed_job, killed_pid, victim = wait_until(applying, "an instance to be applying a zone", timeout=60)
            killed_at = time.time()
            victim.kill9()
            killed_repository = queue.get(killed_job).repository
            alive = [instance for instance in instances if instance is not victim]
        if number == RESTART_AT:
            victim.start()
            alive = list(instances)
        # Pushes in pairs, each pair one repository's (to both instances: the second arrives while
        # the first is queued or running); every repository gets five pairs, not in turn.
        tenant = tenants[(number // 2 * 3) % REPOSITORIES]
        commit = tenant.commit(f"198.51.{100 + number // 100}.{number % 100 + 1}", f"push {number}")
        answer = alive[number % len(alive)].hook(tenant, commit)
        assert answer.status_code == 202, (number, answer.status_code, answer.text)

    # Every repository ends with its newest commit served, and nothing is left to do.
    for tenant in tenants:
        wait_until(lambda: tenant.served() == {tenant.newest}, f"{tenant.name}'s newest commit", timeout=90)
    wait_until(lambda: not queue.active(), "the queue to drain", timeout=60)
    for tenant in tenants:
        assert tenant.served() == {tenant.newest}
    # The dead instance's job: merged into a newer push's job, or finished by an instance alive.
    dead_job = queue.get(killed_job)
    assert dead_job.state == SUPERSEDED or (dead_job.state == DONE and f":{killed_pid}:" not in dead_job.claimed_by)

    # One repository's runs never overlapped, whichever instance ran them.
    for tenant in tenants:
        runs = RunStore(url).recent(1000, with_zones=False, repository=tenant.name)
        spans = sorted((run.started, run.finished, run.id) for run in runs)
        for (_, first_end, first), (second_start, _, second) in zip(spans, spans[1:]):
            assert first_end <= second_start, f"{tenant.name}: runs {first} and {second} overlapped"

    # The provider's side: never two updates of one zone in flight at once.
    assert proxy.overlaps() == []
    assert {update.zone for update in proxy.updates} == {tenant.origin for tenant in tenants}

    # The update the dead instance had on the wire reached BIND, but it never recorded it: the next
    # run of that repository found the zone's serial not the one stored, read the zone back and
    # planned against it (repaired, not applied twice on top of a stale state).
    after_kill = [run for run in RunStore(url).recent(1000, repository=killed_repository)
                  if run.started > killed_at]
    taken_over = min(after_kill, key=lambda run: run.id)
    assert "zone-changed-outside" in {finding.code for finding in taken_over.all_findings}

    # Two repositories that may both own a new zone push it at once, each to another instance: one
    # claims it and publishes it, the other's run is refused it (and publishes the rest).
    runs_before = RunStore(url).last_runs([t.name for t in tenants[:2]])
    contenders = {tenant.name: (tenant.commit(f"203.0.113.{index + 1}", "contest", origin=contested),
                                f"203.0.113.{index + 1}") for index, tenant in enumerate(tenants[:2])}
    for instance, tenant in zip(instances, tenants[:2]):
        assert instance.hook(tenant, contenders[tenant.name][0]).status_code == 202

    def contest_runs():
        last = RunStore(url).last_runs(list(contenders))
        done = all(last[name].id != runs_before[name].id and last[name].commit == contenders[name][0]
                   for name in contenders)
        return done and not queue.active() and {name: RunStore(url).get(last[name].id) for name in contenders}
    contest = wait_until(contest_runs, "both contenders' runs", timeout=60)
    with OwnershipStore(url) as ownership:
        winner = ownership.owner(contested)
    [loser] = [name for name in contenders if name != winner]
    assert winner in contenders
    assert tenants[0].served(contested) == {contenders[winner][1]}
    [refused] = [zone for zone in contest[loser].zones if zone.zone == contested]
    assert refused.status == BLOCKED
    assert "zone-owned-elsewhere" in {finding.code for finding in refused.findings}
    assert [zone.status for zone in contest[winner].zones if zone.zone == contested] == [APPLIED]
    assert proxy.overlaps() == []

    # Mail: every recorded run mailed exactly once (every_run), to its own repository's recipient.
    outbox = Outbox(url)
    wait_until(lambda: outbox.pending() == 0, "the outbox to empty", timeout=90)
    runs = RunStore(url).recent(1000, with_zones=False)
    time.sleep(1.0)  # a duplicate would arrive now
    messages = mail.messages
    mailed = Counter(int(message["X-Zone-Publisher-Run"]) for message in messages)
    assert [run_id for run_id, count in mailed.items() if count > 1] == []
    assert sorted(mailed) == sorted(run.id for run in runs)
    assert len({message["Message-ID"] for message in messages}) == len(messages)
    recipient_of = {tenant.name: tenant.recipient for tenant in tenants}
    for message in messages:
        run = next(run for run in runs if run.id == int(message["X-Zone-Publisher-Run"]))
        assert message["To"] == recipient_of[run.repository]
    assert {run.repository for run in runs} == set(recipient_of)
    # Each repository's newest run recorded its newest commit.
    newest = RunStore(url).last_runs(list(recipient_of))
    for tenant in tenants:
        assert newest[tenant.name].commit == tenant.head
    # The database password appears in no log.
    for instance in instances:
        assert postgres_server.password not in instance.log.read_text()
    print(f"\n{len(runs)} runs, {len(proxy.updates)} updates, {len(messages)} mails, "
          f"{time.monotonic() - started:.1f} s from the first start")
