"""Push-to-served latency of the service: a one-record edit in a 10,000-record zone, from the webhook
POST until BIND (`named`, RFC 2136) answers the new address.  p50/p99 over ``--edits`` pushes.

    python bench/push_to_served.py [--records 10000] [--edits 30]

Starts a real named (the test suite's fixture code), a bare git remote and `zone-publisher serve`.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import dns.message  # noqa: E402
import dns.query  # noqa: E402

from publisher.tokens import generate_token, hash_token  # noqa: E402
from tests.mailserver import free_port  # noqa: E402
from tests.servers import _start_named  # noqa: E402

SECRET = "bench-secret"
ENV = {**os.environ, "GIT_AUTHOR_NAME": "Bench", "GIT_AUTHOR_EMAIL": "bench@example.org",
       "GIT_COMMITTER_NAME": "Bench", "GIT_COMMITTER_EMAIL": "bench@example.org"}


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, env=ENV, check=True, capture_output=True, text=True).stdout.strip()


def zone_text(origin: str, records: int, address: str) -> str:
    lines = ["$TTL 300", f"@ IN SOA ns1.{origin} hostmaster.{origin} 1 3600 600 604800 300",
             f"@ IN NS ns1.{origin}", "ns1 IN A 127.0.0.1", f"www IN A {address}"]
    lines += [f"h{n} IN A 10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}" for n in range(records - 3)]
    return "\n".join(lines) + "\n"


def served(named, origin: str) -> set[str]:
    query = dns.message.make_query(f"www.{origin}", "A")
    try:
        response = dns.query.udp(query, named.address, port=named.port, timeout=1)
    except Exception:
        return set()
    return {rdata.address for rrset in response.answer for rdata in rrset}


def hook(url: str, token: str, commit: str) -> None:
    body = json.dumps({"ref": "refs/heads/main", "after": commit, "repository": {"full_name": "bench/remote"}}).encode()
    request = urllib.request.Request(f"{url}/notifications/{token}/push", data=body, method="POST", headers={
        "Content-Type": "application/json", "X-GitHub-Event": "push", "X-GitHub-Delivery": generate_token(8),
        "X-Hub-Signature-256": "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 202, response.status


def wait_served(named, origin: str, address: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while served(named, origin) != {address}:
        if time.monotonic() > deadline:
            raise SystemExit(f"{address} not served after {timeout} s")
        time.sleep(0.005)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=10000)
    parser.add_argument("--edits", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        named = _start_named(root / "named")
        process = None
        try:
            origin = named.new_zone()
            name = origin.rstrip(".")
            bare, work = root / "bench" / "remote.git", root / "work"
            bare.parent.mkdir()
            git(root, "init", "--quiet", "--bare", "--initial-branch=main", str(bare))
            git(root, "clone", "--quiet", str(bare), str(work))
            git(work, "checkout", "--quiet", "-B", "main")

            def commit(address: str) -> str:
                (work / f"{name}.bind").write_text(zone_text(origin, args.records, address))
                git(work, "add", "-A")
                git(work, "commit", "--quiet", "-m", f"www {address}")
                git(work, "push", "--quiet", "origin", "HEAD:refs/heads/main")
                return git(work, "rev-parse", "HEAD")

            token = generate_token()
            port = free_port()
            (root / "config.toml").write_text(f"""
[source]
url = "{bare}"
branch = "main"
cache = "cache"
[defaults]
nameservers = ["ns1.{origin}"]
[[provider]]
name = "bind"
type = "rfc2136"
server = "{named.address}"
port = {named.port}
tsig_keyfile = "{named.keyfile}"
[state]
path = "state.db"
[webhook]
tokens = ["{hash_token(token)}"]
secret = "{SECRET}"
""")
            process = subprocess.Popen([sys.executable, "-m", "publisher", "serve", "--config", "config.toml",
                                        "--listen", f"127.0.0.1:{port}"], cwd=root,
                                       env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.DEVNULL,
                                       stderr=subprocess.DEVNULL, start_new_session=True)
            url = f"http://127.0.0.1:{port}"
            for _ in range(600):
                try:
                    urllib.request.urlopen(url + "/healthz", timeout=2)
                    break
                except OSError:
                    time.sleep(0.1)
            first_commit = commit("192.0.2.1")
            started = time.perf_counter()
            hook(url, token, first_commit)
            wait_served(named, origin, "192.0.2.1")
            first = time.perf_counter() - started

            latencies = []
            for number in range(args.edits):
                address = f"198.51.100.{number + 1}"
                sha = commit(address)
                started = time.perf_counter()
                hook(url, token, sha)
                wait_served(named, origin, address)
                latencies.append(time.perf_counter() - started)
            ordered = sorted(latencies)
            print(json.dumps({"records": args.records, "first_publish_s": round(first, 3), "edits": len(ordered),
                              "p50_s": round(statistics.median(ordered), 3),
                              "p99_s": round(ordered[max(0, int(len(ordered) * 0.99) - 1)], 3),
                              "max_s": round(ordered[-1], 3)}, indent=2))
        finally:
            if process is not None:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(timeout=30)
            named.stop()


if __name__ == "__main__":
    main()
