"""Faults: how long a job waits after its worker is killed, what retention gives back, what /healthz costs.

* failover: a real worker process (pid 1 of its own PID namespace when run as root, as in a
  container) is killed with ``kill -9`` in the middle of a run; a new one is started at once; the
  figure is the time from the kill to the job finishing (mostly ``[jobs] lease``).
* retention: N replayed deliveries (a delivery id, a job, a run with a 200-change zone and a plan, a
  sent mail each), then one prune: the state file before and after, and the prune's time.
* health: ``GET /healthz`` through the Flask app (one real write to the state database each).

``python3 bench/bench_faults.py [--lease S] [--failovers N] [--deliveries N]``; results in
bench/out/faults.json.  Only files and processes on this machine; no network.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness import OUT, PYTHON, our_env, our_source, print_table, write_results

sys.path.insert(0, str(our_source()))

from publisher.config import load_config_text  # noqa: E402
from publisher.service.jobs import DONE, JobQueue  # noqa: E402

ZONE = 'a("www", "192.0.2.1")\n'


def _git(cwd: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "Bench", "GIT_AUTHOR_EMAIL": "bench@example.org",
           "GIT_COMMITTER_NAME": "Bench", "GIT_COMMITTER_EMAIL": "bench@example.org"}
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout.strip()


def _remote(root: Path) -> Path:
    bare, work = root / "remote.git", root / "work"
    _git(root, "init", "--quiet", "--bare", "--initial-branch=main", str(bare))
    _git(root, "clone", "--quiet", str(bare), str(work))
    _git(work, "checkout", "--quiet", "-B", "main")
    (work / "example.test.lua").write_text(ZONE)
    _git(work, "add", "-A")
    _git(work, "commit", "--quiet", "-m", "zone")
    _git(work, "push", "--quiet", "origin", "HEAD:refs/heads/main")
    return bare


def _worker(config: Path, log: Path) -> tuple[subprocess.Popen, int]:
    """A worker process; returns it and the pid to kill (the namespace's init when in one)."""
    argv = [PYTHON, "-m", "publisher.service.worker", "--config", str(config)]
    in_namespace = os.geteuid() == 0
    if in_namespace:
        argv = ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child", *argv]
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=log.open("ab"), env=our_env(), cwd=OUT,
                               start_new_session=True)
    if not in_namespace:
        return process, process.pid
    children = Path(f"/proc/{process.pid}/task/{process.pid}/children")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = children.read_text().split() if children.exists() else []
        if found:
            return process, int(found[0])
        time.sleep(0.01)
    raise RuntimeError("unshare did not start the worker")


def _stop(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()


def failover(lease: float) -> float:
    """Seconds from ``kill -9`` of the worker in the middle of a run to the job done by the next one."""
    root = Path(tempfile.mkdtemp(prefix="faults-", dir=OUT))
    bare = _remote(root)
    marker = root / "first-check-started"
    check = root / "check.sh"
    check.write_text(f"if [ ! -e {marker} ]; then touch {marker}; sleep 300; fi\n")
    text = f"""
[source]
url = "{bare}"
cache = "cache"
[defaults]
nameservers = ["ns1.example.net."]
[[provider]]
name = "files"
type = "zonefile"
directory = "served"
check_command = "sh {check}"
[state]
path = "state.db"
[jobs]
lease = {lease}
"""
    config_path = root / "config.toml"
    config_path.write_text(text)
    config = load_config_text(text, base=root)
    queue = JobQueue(config.state.path)
    job_id = queue.enqueue(config.key, sender="bench", delivery_id="1").job_id
    first, victim = _worker(config_path, root / "worker.log")
    second = None
    try:
        deadline = time.monotonic() + 120
        while not marker.exists():
            if time.monotonic() > deadline:
                raise RuntimeError("the first worker never reached the zone check")
            time.sleep(0.01)
        killed = time.monotonic()
        os.kill(victim, signal.SIGKILL)
        first.wait()
        second, _ = _worker(config_path, root / "worker.log")
        while queue.get(job_id).state != DONE:
            if time.monotonic() > killed + lease * 3 + 120:
                raise RuntimeError("the job never finished; see " + str(root / "worker.log"))
            time.sleep(0.01)
        return time.monotonic() - killed
    finally:
        _stop(first)
        if second is not None:
            _stop(second)
        queue.close()


def retention(deliveries: int) -> dict:
    from publisher.model import Change
    from publisher.service.notify import MAIL
    from publisher.service.runs import OK, RunRecord, ZoneOutcome
    from publisher.service.worker import Worker

    root = Path(tempfile.mkdtemp(prefix="retention-", dir=OUT))
    config = load_config_text('[source]\npath = "zones"\n[state]\npath = "state.db"\n'
                              '[retention]\nkeep_days = 1\nkeep_newest = 100\n', base=root)
    worker = Worker(config)
    changes = tuple(Change("create", f"h{i}.example.test.", "A", 300, (), (f"192.0.2.{i % 250}",))
                    for i in range(200))

    def size() -> int:
        return sum(path.stat().st_size for path in root.glob("state.db*"))

    for n in range(deliveries):
        job_id = worker.queue.enqueue(worker.repository, sender="github", delivery_id=f"replay-{n}").job_id
        worker.queue.claim(worker.identity)
        now = time.time()
        run_id = worker.runs.record(RunRecord(worker.repository, "push", OK, now, now, job_id=job_id,
                                              plan_markdown="x" * 8000,
                                              zones=(ZoneOutcome("example.test.", "files", "applied", changes),)))
        worker.queue.finish(job_id, run_id=run_id)
        worker.outbox.mark_sent(worker.outbox.add(MAIL, ["ops@example.org"], b"m" * 4000, run_id=run_id))
    before = size()
    start = time.perf_counter()
    deleted = worker.prune_once(now=time.time() + 2 * 86400)
    seconds = time.perf_counter() - start
    worker.close()
    return {"deliveries": deliveries, "bytes_before": before, "bytes_after": size(), "rows_deleted": deleted,
            "prune_seconds": seconds}


def health(requests: int = 500) -> list[float]:
    from dataclasses import replace

    from publisher.config import Config, StateConfig
    from publisher.service.web import create_app

    root = Path(tempfile.mkdtemp(prefix="health-", dir=OUT))
    client = create_app(replace(Config(), state=StateConfig(root / "state.db")), {"TESTING": True}).test_client()
    times = []
    for _ in range(requests):
        start = time.perf_counter()
        assert client.get("/healthz").status_code == 200
        times.append(time.perf_counter() - start)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lease", type=float, default=10.0, help="[jobs] lease of the failover runs (s)")
    parser.add_argument("--failovers", type=int, default=3)
    parser.add_argument("--deliveries", type=int, default=1000)
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)

    takeovers = [failover(args.lease) for _ in range(args.failovers)]
    kept = retention(args.deliveries)
    probes = sorted(health())
    where = "pid 1 of a PID namespace" if os.geteuid() == 0 else "a plain process"
    print_table("faults", ["measure", "result"], [
        [f"kill -9 of the worker ({where}) to the job done by the next, lease {args.lease:g} s",
         ", ".join(f"{t:.2f} s" for t in takeovers)],
        [f"state file after {kept['deliveries']:,} replayed deliveries", f"{kept['bytes_before'] / 1e6:.1f} MB"],
        ["after one prune (keep_newest 100)", f"{kept['bytes_after'] / 1e6:.1f} MB in {kept['prune_seconds']:.2f} s "
                                              f"({kept['rows_deleted']:,} rows)"],
        ["GET /healthz (Flask app, one real write)", f"p50 {statistics.median(probes) * 1e3:.2f} ms, "
                                                     f"p99 {probes[int(len(probes) * 0.99)] * 1e3:.2f} ms"],
    ])
    write_results("faults", {"lease": args.lease, "failover_seconds": takeovers, "retention": kept,
                             "healthz_seconds": {"p50": statistics.median(probes),
                                                 "p99": probes[int(len(probes) * 0.99)]}})
    return 0


if __name__ == "__main__":
    sys.exit(main())
