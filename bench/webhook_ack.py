"""Webhook acknowledgement latency of `zone-publisher serve` (gunicorn), p50/p99:
200 valid signed pushes per second, then the same while a flood of bad-token requests runs from
another loopback address (127.0.0.2, so the rate limiter sees another client).

    python bench/webhook_ack.py [--seconds 10] [--rate 200] [--flood 2000]

Prints one JSON object.  The load generator shares the machine with the server, so on a small
machine the achieved flood rate is reported next to the target.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from publisher.tokens import generate_token, hash_token  # noqa: E402

SECRET = "bench-secret"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_service(directory: Path) -> tuple[subprocess.Popen, int, str]:
    zones = directory / "zones"
    zones.mkdir()
    (zones / "bench.test.lua").write_text('ns("", "ns1.example.net.")\nns("", "ns2.example.net.")\na("www", "192.0.2.1")\n')
    token = generate_token()
    (directory / "config.toml").write_text(f"""
[source]
path = "zones"
[[provider]]
name = "files"
type = "zonefile"
directory = "served"
[defaults]
nameservers = ["ns1.example.net.", "ns2.example.net."]
[state]
path = "state.db"
[webhook]
tokens = ["{hash_token(token)}"]
secret = "{SECRET}"
""")
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen([sys.executable, "-m", "publisher", "serve", "--config", "config.toml",
                                "--listen", f"127.0.0.1:{port}"], cwd=directory, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/healthz")
            if connection.getresponse().status == 200:
                return process, port, token
        except OSError:
            time.sleep(0.2)
    raise SystemExit("service did not start")


def valid_pushes(port: int, token: str, rate: float, seconds: float, latencies: list, codes: dict, threads: int = 8):
    """Open-loop: request i is due at start + i/rate, whichever thread is free sends it."""
    total = int(rate * seconds)
    counter = iter(range(total))
    lock = threading.Lock()
    start = time.perf_counter() + 0.2

    def run():
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        while True:
            with lock:
                number = next(counter, None)
            if number is None:
                return
            due = start + number / rate
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            body = json.dumps({"ref": "refs/heads/main", "after": f"{number + 1:040x}",
                               "repository": {"full_name": "bench/zones"}}).encode()
            headers = {"Content-Type": "application/json", "X-GitHub-Event": "push",
                       "X-GitHub-Delivery": f"bench-{number}-{time.time_ns()}",
                       "X-Hub-Signature-256": "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()}
            sent = time.perf_counter()
            try:
                connection.request("POST", f"/notifications/{token}/push", body, headers)
                response = connection.getresponse()
                response.read()
                status = response.status
            except OSError:
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                status = 0
            # Latency from when the request was due, so a backlog in the client counts too.
            latencies.append(time.perf_counter() - min(sent, max(due, 0)))
            with lock:
                codes[status] = codes.get(status, 0) + 1

    workers = [threading.Thread(target=run) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()


def flood(port: int, stop, sent, threads: int = 3):
    """Bad-token requests from separate processes (so the measuring process keeps its GIL)."""
    import multiprocessing
    return [multiprocessing.Process(target=_flood_process, args=(port, stop, sent, threads), daemon=True)
            for _ in range(2)]


def _flood_process(port: int, stop, sent, threads: int) -> None:
    def run():
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10, source_address=("127.0.0.2", 0))
        count = 0
        while not stop.is_set():
            try:
                connection.request("POST", "/notifications/not-a-token/push", b"{}",
                                   {"Content-Type": "application/json"})
                connection.getresponse().read()
                count += 1
            except OSError:
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10, source_address=("127.0.0.2", 0))
        with sent.get_lock():
            sent.value += count

    workers = [threading.Thread(target=run) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()


def summary(latencies: list[float]) -> dict:
    ordered = sorted(latencies)
    return {"requests": len(ordered), "p50_ms": round(statistics.median(ordered) * 1000, 2),
            "p99_ms": round(ordered[int(len(ordered) * 0.99) - 1] * 1000, 2)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--flood", type=float, default=2000, help="target bad requests per second (reported)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        process, port, token = start_service(Path(directory))
        try:
            result = {}
            latencies, codes = [], {}
            valid_pushes(port, token, args.rate, args.seconds, latencies, codes)
            result["valid"] = {**summary(latencies), "rate": args.rate, "codes": codes}

            import multiprocessing
            latencies, codes = [], {}
            sent = multiprocessing.Value("q", 0)
            stop = multiprocessing.Event()
            started = time.perf_counter()
            workers = flood(port, stop, sent)
            for worker in workers:
                worker.start()
            valid_pushes(port, token, args.rate, args.seconds, latencies, codes)
            stop.set()
            for worker in workers:
                worker.join(timeout=10)
            elapsed = time.perf_counter() - started
            result["valid_during_flood"] = {**summary(latencies), "rate": args.rate, "codes": codes,
                                            "flood_target_rps": args.flood,
                                            "flood_achieved_rps": round(sent.value / elapsed)}
            print(json.dumps(result, indent=2))
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=30)


if __name__ == "__main__":
    main()
