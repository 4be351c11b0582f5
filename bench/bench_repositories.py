"""Several repositories benchmark (issue 9): 100 repositories on one `publisher serve`, each with a
bare git repository of its own and a zone published to the shared zone-file provider.  While the
other 99 each receive a push a second (``--rate`` per repository), pushes to one of them are timed
push-to-served: from the webhook's 202 to the new address in the zone file the provider serves
(polled every 2 ms; ``--provider bind`` instead queries a real BIND the files are reloaded into).

A push is the branch moving to a new commit with a one-record edit, plus a signed GitHub-style
webhook with that repository's token.  The commits are made beforehand (``git fast-import``, one
chain per repository) and a push moves the bare repository's branch ref, as ``git push`` would once
its objects are there: so the load on the machine is the service's, not 99 git clients'.  The
service fetches, evaluates, plans and applies every one of those runs for real.

    python bench/bench_repositories.py [--repositories 100] [--rate 1.0] [--iterations 10] [--workers 2]
                                       [--settle 20] [--pause 20] [--provider zonefile|bind]

``--pause`` is how long the timed repository stays quiet between its pushes: under a load the pool
cannot keep up with, the queue serves the least recently served repository first, so a repository
quiet for longer than a round of the busy ones waits only for the runs in progress.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import secrets
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import harness
from harness import our_env, ours

BAR_P50_S = 0.5
COMMITS = 400  # pushes each repository can take (one commit each)
TIMED = 0  # the index of the repository whose pushes are timed


def address(repository: int, version: int) -> str:
    return f"10.{repository % 250}.{version // 250}.{version % 250 + 1}"


def zone_text(repository: int, version: int) -> str:
    return (f'-- version {version}\nns("", "ns1.bench.example.")\nns("", "ns2.bench.example.")\n'
            f'a("www", "{address(repository, version)}")\n')


class Repository:
    """One customer: a bare repository holding a chain of ``COMMITS`` commits, its branch at the first."""

    def __init__(self, root: Path, index: int) -> None:
        self.index = index
        self.name = f"customer-{index:03d}"
        self.origin = f"{self.name}.bench.example"
        self.bare = root / "git" / f"{self.name}.git"
        self.token = secrets.token_urlsafe(24)
        self.secret = secrets.token_urlsafe(16)
        self.commits: list[str] = []
        self.version = 0
        self.lock = threading.Lock()

    def create(self) -> None:
        """The whole chain in one ``git fast-import``; the branch then points at version 0."""
        self.bare.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["git", "init", "--quiet", "--bare", "--initial-branch=main", str(self.bare)], check=True)
        stream = []
        for version in range(COMMITS):
            data = zone_text(self.index, version).encode()
            message = f"version {version}".encode()
            stream.append(b"commit refs/heads/chain\nmark :%d\n" % (version + 1))
            stream.append(b"committer Bench <bench@example.org> %d +0000\n" % (1_700_000_000 + version))
            stream.append(b"data %d\n%s\n" % (len(message), message))
            if version:
                stream.append(b"from :%d\n" % version)
            stream.append(b"M 100644 inline %s.lua\ndata %d\n%s\n" % (self.origin.encode(), len(data), data))
        marks = self.bare / "marks"
        subprocess.run(["git", "-C", str(self.bare), "fast-import", "--quiet", f"--export-marks={marks}"],
                       input=b"".join(stream), check=True)
        by_mark = dict(line.split() for line in marks.read_text().splitlines())
        self.commits = [by_mark[f":{version + 1}"] for version in range(COMMITS)]
        self.move(0)

    def move(self, version: int) -> str:
        """The branch to ``version``'s commit, as a push leaves it (the ref written atomically)."""
        commit = self.commits[version]
        ref = self.bare / "refs" / "heads" / "main"
        ref.parent.mkdir(parents=True, exist_ok=True)
        temporary = ref.with_name(f".main.{os.getpid()}.{threading.get_ident()}")
        temporary.write_text(commit + "\n")
        os.replace(temporary, ref)
        return commit

    def push(self, url: str) -> tuple[int, float, str]:
        """Move to the next version and send the webhook: (HTTP status, time of the answer, new address)."""
        with self.lock:
            self.version = min(self.version + 1, COMMITS - 1)
            version = self.version
        commit = self.move(version)
        body = json.dumps({"ref": "refs/heads/main", "after": commit, "head_commit": {"id": commit},
                           "repository": {"full_name": f"bench/{self.name}"}}).encode()
        signature = "sha256=" + hmac.new(self.secret.encode(), body, hashlib.sha256).hexdigest()
        request = urllib.request.Request(f"{url}/notifications/{self.token}/push", data=body, method="POST", headers={
            "Content-Type": "application/json", "X-GitHub-Event": "push", "X-Hub-Signature-256": signature,
            "X-GitHub-Delivery": secrets.token_hex(8)})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                status = response.status
        except urllib.error.HTTPError as error:
            status = error.code
        except OSError:
            status = 0
        return status, time.perf_counter(), address(self.index, version)

    def table(self) -> str:
        return f"""
[[repository]]
name = "{self.name}"
owns = ["{self.origin}"]
[repository.source]
url = "{self.bare}"
branch = "main"
[repository.webhook]
tokens = ["sha256:{hashlib.sha256(self.token.encode()).hexdigest()}"]
secret = "{self.secret}"
"""


class Served:
    """What the provider serves for a repository's zone: the zone file's text (or BIND's answer)."""

    def __init__(self, directory: Path, named_port: int | None) -> None:
        self.directory = directory
        self.named_port = named_port

    def has(self, repository: Repository, value: str) -> bool:
        if self.named_port is None:
            try:  # the zone's one A record, as a whole word of the file (10.0.0.2 is not 10.0.0.25)
                return value in (self.directory / f"{repository.origin}.zone").read_text().split()
            except OSError:
                return False
        import dns.message
        import dns.query
        import dns.rdatatype
        try:
            answer = dns.query.udp(dns.message.make_query(f"www.{repository.origin}.", dns.rdatatype.A),
                                   "127.0.0.1", port=self.named_port, timeout=0.5)
        except Exception:
            return False
        return any(rdata.address == value for rrset in answer.answer for rdata in rrset)


def start_named(root: Path, directory: Path) -> tuple[subprocess.Popen, int]:
    """A BIND that loads the zone files the provider writes (an include it rewrites, ``rndc`` reloads)."""
    port, control = harness.free_port(), harness.free_port()
    key = subprocess.run(["tsig-keygen", "-a", "hmac-sha256", "rndc-key"], capture_output=True, text=True,
                         check=True).stdout
    (root / "rndc.key").write_text(key)
    (root / "rndc.conf").write_text(key + f'options {{ default-key "rndc-key"; default-server 127.0.0.1; '
                                          f'default-port {control}; }};\n')
    (directory / "named.conf.zones").write_text("")
    (root / "named.conf").write_text(f"""include "{root}/rndc.key";
options {{ directory "{root}"; pid-file "{root}/named.pid"; listen-on port {port} {{ 127.0.0.1; }};
  listen-on-v6 {{ none; }}; recursion no; notify no; dnssec-validation no; }};
controls {{ inet 127.0.0.1 port {control} allow {{ 127.0.0.1; }} keys {{ "rndc-key"; }}; }};
include "{directory}/named.conf.zones";
""")
    process = subprocess.Popen(["named", "-g", "-c", str(root / "named.conf"), "-n", "1"],
                               stdout=(root / "named.log").open("wb"), stderr=subprocess.STDOUT,
                               start_new_session=True)
    deadline = time.monotonic() + 30
    while subprocess.run(["rndc", "-c", str(root / "rndc.conf"), "status"], capture_output=True).returncode:
        if time.monotonic() > deadline or process.poll() is not None:
            raise RuntimeError(f"named did not start: {(root / 'named.log').read_text()[-2000:]}")
        time.sleep(0.1)
    return process, port


def write_config(root: Path, repositories: list[Repository], workers: int, named: bool) -> Path:
    rndc = f"rndc -c {root}/rndc.conf"
    provider = """
[[provider]]
name = "files"
type = "zonefile"
directory = "served"
""" + (f'reload_command = "{rndc} reload {{zone}}"\nreconfig_command = "{rndc} reconfig"\n' if named else "")
    text = f"""
[state]
path = "state.db"
[jobs]
workers = {workers}
[defaults]
nameservers = ["ns1.bench.example.", "ns2.bench.example."]
{provider}
""" + "".join(r.table() for r in repositories)
    path = root / "publisher.toml"
    path.write_text(text)
    return path


def wait_for(condition, what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.05)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(round(fraction * len(ordered) + 0.5)) - 1))]


def background(url: str, repositories: list[Repository], rate: float, stop: threading.Event,
               counts: dict[str, int]) -> None:
    """Each repository pushed ``rate`` times a second, spread evenly (open loop: sends never wait
    for an answer; a few sender threads)."""
    interval = 1.0 / (rate * len(repositories))
    due = time.perf_counter()
    turn = 0
    lock = threading.Lock()

    def send(repository: Repository) -> None:
        status = repository.push(url)[0]
        with lock:
            counts[str(status)] = counts.get(str(status), 0) + 1

    while not stop.is_set():
        repository = repositories[turn % len(repositories)]
        turn += 1
        threading.Thread(target=send, args=(repository,), daemon=True).start()
        due += interval
        delay = due - time.perf_counter()
        if delay > 0:
            stop.wait(delay)


def runs_finished(state: Path, since: float) -> int:
    with sqlite3.connect(state) as db:
        return db.execute("SELECT COUNT(*) FROM runs WHERE finished >= ?", (since,)).fetchone()[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="100 repositories on one instance: push-to-served under load")
    parser.add_argument("--repositories", type=int, default=100)
    parser.add_argument("--rate", type=float, default=1.0, help="pushes a second to each of the other repositories")
    parser.add_argument("--iterations", type=int, default=10, help="timed pushes")
    parser.add_argument("--workers", type=int, default=2, help="[jobs] workers")
    parser.add_argument("--settle", type=float, default=20.0, help="seconds of background load before timing")
    parser.add_argument("--pause", type=float, default=20.0, help="seconds between a timed push served and the next")
    parser.add_argument("--provider", choices=("zonefile", "bind"), default="zonefile")
    args = parser.parse_args(argv)

    root = Path(tempfile.mkdtemp(prefix="bench-repositories-"))
    repositories = [Repository(root, index) for index in range(args.repositories)]
    print(f"creating {args.repositories} repositories of {COMMITS} commits each in {root} ...", flush=True)
    for repository in repositories:
        repository.create()
    served_dir = root / "served"
    served_dir.mkdir()
    named = None
    named_port = None
    if args.provider == "bind":
        named, named_port = start_named(root, served_dir)
    config = write_config(root, repositories, args.workers, named is not None)
    port = harness.free_port()
    url = f"http://127.0.0.1:{port}"
    log = (root / "serve.log").open("wb")
    env = our_env()
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    process = subprocess.Popen(ours("serve", "--config", str(config), "--listen", f"127.0.0.1:{port}"), cwd=root,
                               env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    served = Served(served_dir, named_port)
    stop = threading.Event()
    counts: dict[str, int] = {}
    results: dict = {}
    try:
        def healthy() -> bool:
            if process.poll() is not None:
                raise RuntimeError(f"serve exited: {(root / 'serve.log').read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(url + "/healthz", timeout=5) as response:
                    return response.status == 200
            except OSError:
                return False

        wait_for(healthy, "serve to answer /healthz", 120)
        started = time.perf_counter()
        wait_for(lambda: all(served.has(r, address(r.index, 0)) for r in repositories),
                 "every repository's first publish (the start-up poll)", 1800)
        print(f"all {args.repositories} repositories published by the start-up poll in "
              f"{time.perf_counter() - started:.1f} s", flush=True)

        timed, others = repositories[TIMED], [r for r in repositories if r.index != TIMED]
        load_started = time.time()
        sender = threading.Thread(target=background, args=(url, others, args.rate, stop, counts), daemon=True)
        sender.start()
        time.sleep(args.settle)
        load_before = os.getloadavg()
        latencies, acks = [], []
        for iteration in range(args.iterations):
            sent = time.perf_counter()
            status, answered, value = timed.push(url)
            if status != 202:
                raise RuntimeError(f"timed push {iteration}: HTTP {status}")
            deadline = answered + 120
            while not served.has(timed, value):
                if time.perf_counter() > deadline:
                    raise RuntimeError(f"timed push {iteration}: {value} not served after 120 s")
                time.sleep(0.002)
            latencies.append(time.perf_counter() - answered)
            acks.append(answered - sent)
            print(f"  push {iteration + 1:2d}: served {latencies[-1] * 1000:7.1f} ms after its 202", flush=True)
            time.sleep(args.pause)
        load_after = os.getloadavg()
        stop.set()
        window = time.time() - load_started
        background_runs = runs_finished(root / "state.db", load_started)
        p50, p90 = statistics.median(latencies), percentile(latencies, 0.90)
        results = {
            "repositories": args.repositories, "rate_per_repository": args.rate, "workers": args.workers,
            "provider": args.provider, "iterations": args.iterations, "pause_s": args.pause,
            "push_to_served": {"p50_s": round(p50, 4), "p90_s": round(p90, 4), "max_s": round(max(latencies), 4),
                               "all_s": [round(x, 4) for x in latencies]},
            "webhook_ack_p50_ms": round(statistics.median(acks) * 1000, 2),
            "background": {"pushes_answered": counts, "seconds": round(window, 1),
                           "runs_finished": background_runs},
            "load_average_before": [round(x, 2) for x in load_before],
            "load_average_after": [round(x, 2) for x in load_after],
            "bar_p50_s": BAR_P50_S, "bar_met": p50 < BAR_P50_S,
        }
        print(f"\n{args.repositories} repositories, the other {len(others)} pushed {args.rate:g}/s each, "
              f"[jobs] workers = {args.workers}, provider {args.provider}")
        print(f"push-to-served (202 -> served) over {args.iterations} pushes: p50 {p50 * 1000:.0f} ms, "
              f"p90 {p90 * 1000:.0f} ms, max {max(latencies) * 1000:.0f} ms "
              f"(bar p50 < {BAR_P50_S * 1000:.0f} ms: {'met' if p50 < BAR_P50_S else 'NOT met'})")
        print(f"background: {sum(counts.values())} pushes answered {counts}, {background_runs} runs finished "
              f"in {window:.0f} s; load average {load_before[0]:.2f} before, {load_after[0]:.2f} after timing "
              f"on {os.cpu_count()} CPUs")
    finally:
        stop.set()
        harness.stop_process_group(process, log)
        if named is not None:
            harness.stop_process_group(named)
    harness.write_results("repositories", results)
    return 0 if results.get("bar_met") else 1


if __name__ == "__main__":
    sys.exit(main())
