"""Several instances on one PostgreSQL: how long a job waits after its instance is killed, and how
many pushes two instances accept per second against one.

* failover: two real ``zone-publisher serve`` instances on one PostgreSQL (Debian's binaries,
  ``initdb`` in a temporary folder, as in tests/postgres.py); a push; once the run is applying the
  zone (a DNS UPDATE held on the wire by the counting proxy of tests/dns_proxy.py in front of a real
  ``named``), the instance running it is killed with ``kill -9`` (its whole process group); the
  figure is the time from the kill to the job finishing on the other instance (mostly ``[jobs]
  lease``).  The killed instance is started again between rounds.
* throughput: signed pushes (each a new commit id and delivery id, so none is a replay) from
  ``--clients`` client processes for ``--seconds`` seconds, spread over one instance, then over
  two; the figure is pushes answered 202 per second.  For reference, one instance on an SQLite
  state file (the embedded default) under the same load.  Both instances share the machine's cores
  with PostgreSQL, named and the clients: the ratio says what a second instance adds here, not on
  a second machine.

``--repositories N`` (N > 1): the instances publish N repositories (``[[repository]]`` tables, each
with its own bare remote, zone, token and secret); the failover rounds push to the first, the
clients spread their pushes over all N (each repository has its own lock on the queue).

``python3 bench/bench_failover.py [--lease S] [--failovers N] [--seconds S] [--clients N]
[--repositories N]``; results in bench/out/failover.json (``failover-N.json`` with N > 1).  Only
loopback.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import multiprocessing
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from harness import OUT, PYTHON, ROOT, our_env, our_source, print_table, write_results

sys.path.insert(0, str(our_source()))
sys.path.insert(1, str(ROOT))  # tests/: the PostgreSQL starter, the counting DNS proxy, named

from publisher.service.jobs import DONE, JobQueue  # noqa: E402
from publisher.service.tokens import generate_token, hash_token  # noqa: E402
from tests.dns_proxy import CountingProxy  # noqa: E402
from tests.postgres import start_postgres  # noqa: E402
from tests.serve_instance import ServeInstance  # noqa: E402
from tests.servers import _start_named  # noqa: E402

SECRET = "bench-webhook-secret"


def _git(cwd: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "Bench", "GIT_AUTHOR_EMAIL": "bench@example.org",
           "GIT_COMMITTER_NAME": "Bench", "GIT_COMMITTER_EMAIL": "bench@example.org"}
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout.strip()


class Remote:
    def __init__(self, root: Path, zone: str) -> None:
        self.bare, self.work, self.zone = root / "remote.git", root / "work", zone
        root.mkdir(parents=True)
        _git(root, "init", "--quiet", "--bare", "--initial-branch=main", str(self.bare))
        _git(root, "clone", "--quiet", str(self.bare), str(self.work))
        _git(self.work, "checkout", "--quiet", "-B", "main")

    def commit(self, address: str) -> str:
        (self.work / f"{self.zone.rstrip('.')}.lua").write_text(
            f'ns("", concat("ns1", _a))\na("ns1", "127.0.0.1")\na("www", "{address}")\n')
        _git(self.work, "add", "-A")
        _git(self.work, "commit", "--quiet", "-m", address)
        _git(self.work, "push", "--quiet", "origin", "HEAD:refs/heads/main")
        return _git(self.work, "rev-parse", "HEAD")


def signed_push(commit: str, secret: str = SECRET) -> tuple[bytes, dict[str, str]]:
    body = json.dumps({"ref": "refs/heads/main", "after": commit, "repository": {"full_name": "acme/remote"},
                       "head_commit": {"id": commit}}).encode()
    signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return body, {"X-GitHub-Event": "push", "X-GitHub-Delivery": secrets.token_hex(8),
                  "Content-Type": "application/json", "X-Hub-Signature-256": signature}


def our_instance(root: Path, config: str, state_url: str) -> ServeInstance:
    """One ``serve`` of the commit being timed (harness's interpreter and environment)."""
    return ServeInstance(root, config, state_url, python=PYTHON, env=our_env())


@dataclass(frozen=True)
class Target:
    """What a client needs to push to one repository: its webhook token and secret."""
    token: str
    secret: str


def repository_tables(remotes: list[Remote], targets: list[Target]) -> str:
    """``[[repository]]`` tables: each repository its own source, zone, token and secret."""
    return "".join(f"""
[[repository]]
name = "repo-{index}"
owns = ["{remote.zone.rstrip('.')}"]
[repository.source]
url = "{remote.bare}"
cache = "cache/repo-{index}"
[repository.webhook]
tokens = ["{hash_token(target.token)}"]
secret = "{target.secret}"
""" for index, (remote, target) in enumerate(zip(remotes, targets)))


def config_text(remotes: list[Remote], targets: list[Target], dns_port: int, keyfile: Path, lease: float) -> str:
    if len(remotes) == 1:
        repositories = f"""
[source]
url = "{remotes[0].bare}"
cache = "cache"
[webhook]
tokens = ["{hash_token(targets[0].token)}"]
secret = "{targets[0].secret}"
"""
    else:
        repositories = repository_tables(remotes, targets)
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
[poll]
interval = 0
[jobs]
lease = {lease}
""" + repositories


def wait(condition, timeout: float = 120.0, interval: float = 0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise RuntimeError("timed out")


def failover_round(instances: list[ServeInstance], remote: Remote, proxy: CountingProxy, url: str, target: Target,
                   number: int, repository: str | None = None) -> float:
    import requests
    queue = JobQueue(url)
    commit = remote.commit(f"192.0.2.{number + 1}")
    body, headers = signed_push(commit, target.secret)
    assert requests.post(f"{instances[0].url}/notifications/{target.token}/push", data=body, headers=headers,
                         timeout=10).status_code == 202
    wait(lambda: proxy.in_flight(remote.zone))
    [job] = wait(lambda: queue.jobs(state="running", repository=repository))
    pid = int(job.claimed_by.split(":")[1])
    victim = next(instance for instance in instances if pid in instance.pids())
    killed = time.monotonic()
    victim.kill9()
    wait(lambda: queue.get(job.id).state == DONE)
    took = time.monotonic() - killed
    victim.start()
    return took


def _client(args: tuple[list[str], list[Target], float, int]) -> int:
    """One client process: signed pushes, round robin over ``urls`` and over the repositories'
    ``targets``, for ``seconds``; 202s counted."""
    import requests
    urls, targets, seconds, seed = args
    session = requests.Session()
    accepted, index = 0, seed
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        target = targets[(index // len(urls)) % len(targets)]
        body, headers = signed_push(secrets.token_hex(20), target.secret)
        try:
            response = session.post(f"{urls[index % len(urls)]}/notifications/{target.token}/push", data=body,
                                    headers=headers, timeout=10)
            accepted += response.status_code == 202
        except requests.RequestException:
            pass
        index += 1
    return accepted


def throughput(urls: list[str], targets: list[Target], seconds: float, clients: int) -> float:
    with multiprocessing.get_context("spawn").Pool(clients) as pool:
        counts = pool.map(_client, [(urls, targets, seconds, n) for n in range(clients)])
    return sum(counts) / seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lease", type=float, default=10.0, help="[jobs] lease of the instances (s)")
    parser.add_argument("--failovers", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each throughput run")
    parser.add_argument("--clients", type=int, default=8, help="client processes sending pushes")
    parser.add_argument("--repositories", type=int, default=1, help="repositories on the instances")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="bench-failover-"))
    database_folder = Path(tempfile.mkdtemp(prefix="bench-postgres-"))  # readable by the postgres user
    postgres = start_postgres(database_folder)
    named = _start_named(root / "named")
    proxy = CountingProxy((named.address, named.port), hold=0.5).start()
    instances: list[ServeInstance] = []
    try:
        url = postgres.new_database("bench")
        remotes = [Remote(root / f"repo{n}", named.new_zone()) for n in range(args.repositories)]
        targets = [Target(generate_token(), SECRET if n == 0 else generate_token(16))
                   for n in range(args.repositories)]
        text = config_text(remotes, targets, proxy.port, named.keyfile, args.lease)
        for remote in remotes:  # a first version each: the start-up polls publish it, none fails
            remote.commit("192.0.2.200")
        first = "repo-0" if args.repositories > 1 else None
        instances = [our_instance(root / f"instance{n}", text, url) for n in range(2)]
        for instance in instances:
            instance.start()
        wait(lambda: JobQueue(url).jobs(limit=1) and not JobQueue(url).active())  # the start-up polls done
        takeovers = [failover_round(instances, remotes[0], proxy, url, targets[0], n, first)
                     for n in range(args.failovers)]
        load_before = open("/proc/loadavg").read().split()[0]
        queue = JobQueue(url)
        ran = [sum(queue.counts().values())]
        one = throughput([instances[0].url], targets, args.seconds, args.clients)
        ran.append(sum(queue.counts().values()))
        two = throughput([instance.url for instance in instances], targets, args.seconds, args.clients)
        ran.append(sum(queue.counts().values()))
        jobs_one, jobs_two = ran[1] - ran[0], ran[2] - ran[1]  # jobs the pushes made (each one run)
        overlaps = len(proxy.overlaps())
        for instance in instances:
            instance.stop()
        embedded = our_instance(root / "sqlite", text.replace('url = "env:ZP_STATE_URL"', 'path = "state.db"'), "")
        instances.append(embedded)
        embedded.start()
        sqlite = throughput([embedded.url], targets, args.seconds, args.clients)
        load_after = open("/proc/loadavg").read().split()[0]
    finally:
        for instance in instances:
            instance.stop()
        proxy.stop()
        named.stop()
        postgres.stop()
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(database_folder, ignore_errors=True)
    section = "failover" if args.repositories == 1 else f"failover-{args.repositories}"
    print_table(f"{section} ({args.repositories} repositor{'y' if args.repositories == 1 else 'ies'})",
                ["measure", "result"], [
        [f"kill -9 of the instance applying a zone to the job done by the other, lease {args.lease:g} s",
         ", ".join(f"{t:.2f} s" for t in takeovers)],
        [f"pushes accepted (202) per second, one instance ({args.clients} clients)", f"{one:.0f}/s"],
        [f"pushes accepted (202) per second, two instances ({args.clients} clients)",
         f"{two:.0f}/s ({two / one:.2f}x)"],
        [f"for reference: one instance on SQLite ({args.clients} clients)", f"{sqlite:.0f}/s"],
        ["jobs queued (each one run) while the pushes arrived, one / two instances",
         f"{jobs_one} / {jobs_two}"],
        ["updates of one zone in flight at once (provider side)", str(overlaps)],
        ["load average before / after the throughput runs", f"{load_before} / {load_after}"],
    ])
    write_results(section, {"repositories": args.repositories, "lease": args.lease, "failover_seconds": takeovers,
                            "pushes_per_second_one": one, "pushes_per_second_two": two,
                            "pushes_per_second_sqlite": sqlite, "clients": args.clients, "seconds": args.seconds,
                            "jobs_during_one": jobs_one, "jobs_during_two": jobs_two,
                            "overlapping_updates": overlaps, "load": [load_before, load_after]})
    return 0


if __name__ == "__main__":
    sys.exit(main())
