"""Webhook benchmark (issues 4 and 8): `publisher serve` (gunicorn's stock gthread worker + the
background worker) behind the reference nginx (examples/nginx/zone-publisher.conf, TLS on
loopback), fetching from a bare git repository and publishing a 10,000-record Lua zone to a fresh
BIND over RFC 2136:

1. acknowledgement latency p50/p99 of signed GitHub-style pushes sent open-loop at 200/s for ~10 s
   over HTTPS through nginx, from the forge's address (127.0.0.3, exempted from limit_req in the
   example's ``geo`` block, as a forge's hook addresses can be);
2. the same while h2load sends 5,000 bad-token requests/s over kept-alive TLS connections
   (from 127.0.0.1) and 50 slowloris connections (127.0.0.4) each send one header byte a second,
   reopened whenever nginx closes them (client_header_timeout);
3. push-to-served latency p50/p99 of a one-record edit: commit, push to the bare repository, POST
   the webhook through nginx (t0), then query named every 2 ms until the new address is served.

Latency of open-loop requests counts from when each was due, so a client-side backlog is not hidden.
Everything is on loopback.

    python bench/bench_webhook.py [--seconds 10] [--rate 200] [--flood 5000] [--slowloris 50]
                                  [--iterations 20] [--records 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import http.client
import json
import threading
import os
import re
import secrets
import shutil
import ssl
import statistics
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import generate
import harness
from harness import ORIGIN, Named, our_env, ours

SECRET = "bench-webhook-secret"
BAR_FLOOD_P99_MS = 20.0
FORGE = "127.0.0.3"  # the valid pushes' source, exempted from limit_req like a forge's hook addresses
SLOWLORIS_SOURCE = "127.0.0.4"
FLOOD_REQUESTS_PER_CONNECTION = 100  # the example's keepalive_requests: nginx closes a connection after it
BAR_SERVED_P50_S = 1.0
BAR_SERVED_P99_S = 2.0


def percentile(values: list[float], fraction: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, int(round(fraction * len(ordered) + 0.5)) - 1))
    return ordered[index]


def summary_ms(values: list[float]) -> dict:
    return {"count": len(values),
            "p50_ms": round(statistics.median(values) * 1000, 2) if values else None,
            "p99_ms": round(percentile(values, 0.99) * 1000, 2) if values else None,
            "max_ms": round(max(values) * 1000, 2) if values else None}


# ---------------------------------------------------------------- a small open-loop HTTP/1.1 client

class _Pool:
    """Keep-alive connections to one server from one source address; a request takes an idle
    connection or opens a new one, so sending never waits for an earlier response."""

    def __init__(self, port: int, source: str, tls: ssl.SSLContext | None = None) -> None:
        self.port = port
        self.source = source
        self.tls = tls
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def request(self, raw: bytes) -> int:
        if self.idle:
            reader, writer = self.idle.pop()
            try:
                return await self._exchange(reader, writer, raw)
            except (OSError, ConnectionError, asyncio.IncompleteReadError):
                pass  # the server closed an idle keep-alive connection: retry once on a new one
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port, local_addr=(self.source, 0),
                                                       ssl=self.tls, server_hostname="localhost" if self.tls else None)
        return await self._exchange(reader, writer, raw)

    async def _exchange(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, raw: bytes) -> int:
        try:
            writer.write(raw)
            status_line = await reader.readline()
            if not status_line:
                raise ConnectionError("closed")
            status = int(status_line.split()[1])
            length, close = 0, False
            while True:
                line = await reader.readline()
                if line in (b"\r\n", b"\n", b""):
                    break
                key, _, value = line.decode("latin-1").partition(":")
                key = key.strip().lower()
                if key == "content-length":
                    length = int(value.strip())
                elif key == "connection" and value.strip().lower() == "close":
                    close = True
            if length:
                await reader.readexactly(length)
        except (OSError, ConnectionError, asyncio.IncompleteReadError, ValueError, IndexError):
            writer.close()
            raise
        if close:
            writer.close()
        else:
            self.idle.append((reader, writer))
        return status

    def close(self) -> None:
        for _, writer in self.idle:
            writer.close()
        self.idle.clear()


def _raw_request(path: str, body: bytes, headers: dict[str, str]) -> bytes:
    head = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", f"Content-Length: {len(body)}", "Connection: keep-alive"]
    head += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def signed_push(token: str, after: str, delivery: str) -> bytes:
    body = json.dumps({"ref": "refs/heads/main", "before": "0" * 40, "after": after,
                       "repository": {"full_name": "bench/zones"}}).encode()
    signature = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    return _raw_request(f"/notifications/{token}/push", body,
                        {"Content-Type": "application/json", "X-GitHub-Event": "push",
                         "X-GitHub-Delivery": delivery, "X-Hub-Signature-256": signature})


async def _open_loop(port: int, source: str, rate: float, seconds: float, make_request, max_in_flight: int = 512,
                     tls: ssl.SSLContext | None = None):
    """Send rate*seconds requests, request i due at start + i/rate; returns (latencies, codes, elapsed)."""
    pool = _Pool(port, source, tls)
    total = int(rate * seconds)
    latencies: list[float] = []
    codes: dict[str, int] = {}
    in_flight = asyncio.Semaphore(max_in_flight)
    loop = asyncio.get_running_loop()
    start = loop.time() + 0.05

    async def one(i: int, due: float) -> None:
        async with in_flight:
            try:
                status = await pool.request(make_request(i))
            except Exception as error:  # connection refused/reset: counted, not fatal
                status = type(error).__name__
            latencies.append(loop.time() - due)
            codes[str(status)] = codes.get(str(status), 0) + 1

    tasks = []
    for i in range(total):
        due = start + i / rate
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i, due)))
    await asyncio.gather(*tasks)
    elapsed = loop.time() - start
    pool.close()
    return latencies, codes, elapsed


def valid_load(port: int, token: str, rate: float, seconds: float, tls: ssl.SSLContext) -> dict:
    run_id = secrets.token_hex(4)

    def make(i: int) -> bytes:
        return signed_push(token, hashlib.sha1(f"{run_id}-{i}".encode()).hexdigest(), f"bench-{run_id}-{i}")

    latencies, codes, elapsed = asyncio.run(_open_loop(port, FORGE, rate, seconds, make, tls=tls))
    return {**summary_ms(latencies), "target_rate": rate, "achieved_rate": round(len(latencies) / elapsed, 1),
            "codes": codes}


def group_cpu_seconds(group: int) -> float:
    """CPU time (user + system) of the live processes of process group ``group``, from /proc."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == group:  # fields after the command: state, ppid, pgrp, ...
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------- the hostile load

class Flood:
    """h2load (Debian nghttp2-client, compiled, HTTP/1.1 over TLS with keep-alive) sending bad-token
    POSTs at ``rate``/s: every connection sends ``FLOOD_REQUESTS_PER_CONNECTION`` requests at 100/s
    (nginx closes it after that many, and h2load does not reopen a closed connection), and
    ``rate``/100 new connections start every second, so about ``rate``/100 are open at a time."""

    def __init__(self, url: str, rate: float, seconds: float, workdir: Path) -> None:
        connections_per_second = max(1, round(rate / 100))
        connections = int(connections_per_second * seconds)
        body = workdir / "flood-body.json"
        body.write_bytes(b'{"ref":"refs/heads/main"}')
        self.command = ["h2load", "--h1", "-r", str(connections_per_second), "-c", str(connections),
                        "-n", str(connections * FLOOD_REQUESTS_PER_CONNECTION), "--rps", "100",
                        "-d", str(body), "-H", "Content-Type: application/json",
                        f"{url}/notifications/not-a-valid-token/push"]
        self.output = workdir / "h2load.txt"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        with self.output.open("wb") as out:
            self.process = subprocess.Popen(self.command, stdout=out, stderr=subprocess.STDOUT)

    def wait(self) -> dict:
        _, status, usage = os.wait4(self.process.pid, 0)
        text = self.output.read_text(errors="replace")
        finished = re.search(r"finished in ([\d.]+)s, ([\d.]+) req/s", text)
        codes = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", text)
        requests = re.search(r"requests: (\d+) total, \d+ started, (\d+) done, \d+ succeeded, \d+ failed, "
                             r"(\d+) errored, (\d+) timeout", text)
        if not (finished and codes and requests):
            return {"error": f"h2load exit {os.waitstatus_to_exitcode(status)}: " + text[-400:]}
        return {"seconds": float(finished.group(1)), "achieved_rate": float(finished.group(2)),
                "done": int(requests.group(2)), "errored": int(requests.group(3)), "timeout": int(requests.group(4)),
                "codes": dict(zip(("2xx", "3xx", "4xx", "5xx"), map(int, codes.groups()))),
                "client_cpu_s": round(usage.ru_utime + usage.ru_stime, 2)}


class Slowloris:
    """``count`` TLS connections each sending one byte of a request head a second, reopened when
    nginx closes them, so ``count`` are always pending."""

    HEAD = b"POST /hooks/slow HTTP/1.1\r\nHost: publisher.example.com\r\nX-Padding: " + b"a" * 4000

    def __init__(self, port: int, count: int, tls: ssl.SSLContext) -> None:
        self.port, self.count, self.tls = port, count, tls
        self.opened = self.closed_by_server = 0
        self.bytes_before_close: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _open(self):
        raw = socket.create_connection(("127.0.0.1", self.port), source_address=(SLOWLORIS_SOURCE, 0), timeout=10)
        sock = self.tls.wrap_socket(raw, server_hostname="localhost")
        sock.setblocking(False)
        self.opened += 1
        return [sock, 0]

    def _run(self) -> None:
        connections = [self._open() for _ in range(self.count)]
        while not self._stop.wait(1.0):
            for entry in connections:
                sock, sent = entry
                try:
                    try:
                        if not sock.recv(4096):
                            raise ConnectionError("closed")
                    except ssl.SSLWantReadError:
                        pass
                    sock.send(self.HEAD[sent:sent + 1])
                    entry[1] += 1
                except (OSError, ConnectionError):
                    sock.close()
                    self.closed_by_server += 1
                    self.bytes_before_close.append(sent)
                    entry[:] = self._open()
        for sock, _ in connections:
            sock.close()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> dict:
        self._stop.set()
        self._thread.join(timeout=30)
        closes = sorted(self.bytes_before_close)
        return {"connections": self.count, "opened": self.opened, "closed_by_nginx": self.closed_by_server,
                "bytes_sent_before_close": [closes[0], closes[-1]] if closes else None}


# ---------------------------------------------------------------- the service under test

class Service:
    def __init__(self, workdir: Path, records: int) -> None:
        self.dir = workdir
        self.records = records
        self.token = secrets.token_urlsafe(32)
        self.process: subprocess.Popen | None = None
        self.port = 0
        self.edits = 0

    def git(self, *args: str, cwd: Path | None = None) -> str:
        return subprocess.run(["git", *args], cwd=cwd or self.work, check=True, capture_output=True,
                              text=True, env={**os.environ, "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "b@example.com",
                                              "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "b@example.com"}
                              ).stdout.strip()

    def prepare(self, named: Named) -> None:
        self.remote = self.dir / "bench" / "zones.git"  # ends in the payload's repository name
        self.work = self.dir / "work"
        self.remote.parent.mkdir(parents=True)
        subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(self.remote)], check=True)
        subprocess.run(["git", "init", "-q", "-b", "main", str(self.work)], check=True)
        self.zone_file = self.work / f"{ORIGIN}.lua"
        shutil.copy(harness.zone_files(self.records, ("lua",))["lua"], self.zone_file)
        self.git("add", ".")
        self.git("commit", "-q", "-m", "zone")
        self.git("remote", "add", "origin", str(self.remote))
        self.git("push", "-q", "origin", "main")
        sys.path.insert(0, str(harness.ROOT))
        from publisher.service.tokens import hash_token

        self.config = self.dir / "publisher.toml"
        cache = self.dir / "cache"
        source = f'url = "{self.remote}"\nbranch = "main"\ncache = "{cache}"'
        self.config.write_text(named.publisher_toml(source, self.dir / "state.db") + f"""
[webhook]
tokens = ["{hash_token(self.token)}"]
secret = "{SECRET}"

[notify]
outbox = "{self.dir / 'outbox'}"
to = ["dns-admins@localhost"]

[poll]
interval = 0
""")

    def start(self) -> None:
        self.port = harness.free_port()
        self.log = (self.dir / "serve.log").open("wb")
        self.process = subprocess.Popen(ours("serve", "--config", str(self.config), "--listen", f"127.0.0.1:{self.port}"),
                                        cwd=self.dir, env=our_env(), stdout=self.log, stderr=subprocess.STDOUT,
                                        start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("serve exited: " + (self.dir / "serve.log").read_text()[-800:])
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("serve did not answer /healthz within 60 s")

    def log_offset(self) -> int:
        self.log.flush()
        return (self.dir / "serve.log").stat().st_size

    def server_times(self, start: int, end: int) -> dict | None:
        """Times gunicorn logged for the 202 answers (inside the web worker, not the wait to be
        accepted) between two log offsets."""
        with (self.dir / "serve.log").open("rb") as log:
            log.seek(start)
            text = log.read(max(0, end - start)).decode(errors="replace")
        times = [float(match.group(1)) for match in re.finditer(r'" 202 \S+ ([\d.]+)s$', text, re.M)]
        return summary_ms(times) if times else None

    def stop(self) -> None:
        harness.stop_process_group(self.process, getattr(self, "log", None))

    def edit_and_push(self) -> tuple[str, str]:
        """Change the edited record to a new address, commit and push; returns (address, commit)."""
        self.edits += 1
        value = f"10.253.{self.edits // 250}.{self.edits % 250 + 1}"
        text = self.zone_file.read_text()
        start = text.index(f'a("{generate.EDIT_NAME}", "') + len(f'a("{generate.EDIT_NAME}", "')
        end = text.index('"', start)
        self.zone_file.write_text(text[:start] + value + text[end:])
        self.git("commit", "-q", "-am", f"edit {self.edits}")
        self.git("push", "-q", "origin", "main")
        return value, self.git("rev-parse", "HEAD")

    def post_push(self, commit: str, proxy: "Proxy") -> int:
        """POST the push for ``commit`` through nginx from the forge's address."""
        raw = signed_push(self.token, commit, f"served-{commit}")
        head, _, body = raw.partition(b"\r\n\r\n")
        headers = dict(line.split(": ", 1) for line in head.decode().split("\r\n")[1:])
        connection = http.client.HTTPSConnection("127.0.0.1", proxy.nginx.https_port, context=proxy.tls,
                                                 source_address=(FORGE, 0), timeout=10)
        try:
            connection.request("POST", f"/notifications/{self.token}/push", body=body, headers=headers)
            response = connection.getresponse()
            response.read()
            return response.status
        finally:
            connection.close()


class Proxy:
    """The reference nginx (tests/nginx.py renders examples/nginx/zone-publisher.conf) in front of
    the service, with the forge's address exempted from limit_req."""

    def __init__(self, upstream_port: int) -> None:
        sys.path.insert(0, str(harness.ROOT))
        from tests.nginx import Nginx

        self.nginx = Nginx(upstream_port, exempt=(FORGE,)).start()
        self.tls = ssl.create_default_context(cafile=str(self.nginx.certificate))

    def request_times(self, start: int) -> dict | None:
        """nginx's $request_time and $upstream_response_time (ms resolution) of the 202 answers logged
        after offset ``start``."""
        text = self.nginx.access_log()[start:]
        pairs = [(float(match.group(1)), float(match.group(2)))
                 for match in re.finditer(r'" 202 \d+ ([\d.]+) upstream=202/([\d.]+) ', text)]
        if not pairs:
            return None
        return {**summary_ms([total for total, _ in pairs]),
                "upstream": summary_ms([upstream for _, upstream in pairs])}

    def log_offset(self) -> int:
        return len(self.nginx.access_log())

    def stop(self) -> None:
        self.nginx.remove()


def wait_served(named: Named, value: str, timeout: float) -> bool:
    import dns.message
    import dns.query

    query = dns.message.make_query(f"{generate.EDIT_NAME}.{ORIGIN}.", "A")
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        try:
            answer = dns.query.udp(query, "127.0.0.1", port=named.port, timeout=0.5)
            if any(rdata.to_text() == value for rrset in answer.answer for rdata in rrset):
                return True
        except Exception:
            pass
        time.sleep(0.002)
    return False


def push_to_served(service: Service, proxy: Proxy, named: Named, iterations: int) -> dict:
    latencies, acks, failures = [], {}, 0
    for _ in range(iterations):
        value, commit = service.edit_and_push()
        t0 = time.perf_counter()
        status = service.post_push(commit, proxy)
        acks[str(status)] = acks.get(str(status), 0) + 1
        if wait_served(named, value, 30):
            latencies.append(time.perf_counter() - t0)
        else:
            failures += 1
        time.sleep(0.2)
    result = {"iterations": iterations, "served": len(latencies), "not_served_within_30s": failures, "acks": acks}
    if latencies:
        result.update({"p50_s": round(statistics.median(latencies), 3),
                       "p99_s": round(percentile(latencies, 0.99), 3),
                       "max_s": round(max(latencies), 3), "all_s": [round(x, 3) for x in latencies]})
    return result


def initial_publish(service: Service) -> None:
    """Publish the zone once before measuring (a 10,000-record first publish is not what a push
    changes), through the same state database the service uses."""
    cache = service.dir / "initial"
    subprocess.run(["git", "clone", "-q", str(service.remote), str(cache)], check=True)
    config = service.dir / "initial.toml"
    text = service.config.read_text().replace(
        f'url = "{service.remote}"\nbranch = "main"\ncache = "{service.dir / "cache"}"', f'path = "{cache}"')
    config.write_text(text)
    result = harness.run_measured(ours("apply", "--config", str(config)), env=our_env(), timeout=600)
    if result.returncode != 0:
        raise RuntimeError("initial publish failed: " + result.output_tail[-500:])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="webhook benchmark (through nginx with TLS)")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--flood", type=float, default=5000, help="bad-token requests/s (h2load)")
    parser.add_argument("--slowloris", type=int, default=50, help="slow connections, one header byte a second")
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--records", type=int, default=10_000)
    args = parser.parse_args(argv)

    results: dict = {"config": vars(args)}
    rows, verdicts = [], []
    probe = harness.run_measured(ours("serve", "--help"), env=our_env(), timeout=60)
    missing = [tool for tool in ("nginx", "h2load", "openssl") if not shutil.which(tool)]
    if probe.returncode != 0 or missing:
        why = (f"missing {', '.join(missing)} (Debian nginx, nghttp2-client, openssl)" if missing else
               "`publisher serve` not usable: " + (probe.output_tail.strip().splitlines() or ["?"])[-1][:200])
        results["not_available"] = why
        print(why)
        for label in ("ack p50/p99, 200 pushes/s", "ack p50/p99 under flood and slowloris", "push-to-served p50/p99"):
            rows.append([label, "not available", ""])
    else:
        with tempfile.TemporaryDirectory(prefix="bench-webhook-") as tmp:
            workdir = Path(tmp)
            with Named(workdir / "named", check_integrity=False) as named:
                service = Service(workdir, args.records)
                service.prepare(named)
                print(f"  publishing the {args.records:,}-record zone once ...", flush=True)
                initial_publish(service)
                service.start()
                proxy = Proxy(service.port)
                port = proxy.nginx.https_port
                try:
                    print(f"  {args.rate:.0f} valid pushes/s for {args.seconds:.0f} s through nginx (TLS) ...", flush=True)
                    mark, nginx_mark = service.log_offset(), proxy.log_offset()
                    results["valid"] = valid_load(port, service.token, args.rate, args.seconds, proxy.tls)
                    time.sleep(0.5)
                    results["valid"]["in_gunicorn"] = service.server_times(mark, service.log_offset())
                    results["valid"]["in_nginx"] = proxy.request_times(nginx_mark)

                    print(f"  again with {args.flood:.0f} bad-token requests/s (h2load) and {args.slowloris} "
                          "slowloris connections ...", flush=True)
                    slowloris = Slowloris(port, args.slowloris, proxy.tls)
                    slowloris.start()
                    flood = Flood(proxy.nginx.https_url, args.flood, args.seconds + 2, workdir)
                    flood.start()
                    time.sleep(1.0)  # the flood is at full rate before measuring
                    mark, nginx_mark = service.log_offset(), proxy.log_offset()
                    cpu = {"nginx": group_cpu_seconds(proxy.nginx.process.pid),
                           "service": group_cpu_seconds(service.process.pid), "wall": time.monotonic()}
                    results["valid_under_flood"] = valid_load(port, service.token, args.rate, args.seconds, proxy.tls)
                    wall = time.monotonic() - cpu.pop("wall")
                    results["cpu_during_flood"] = {
                        "seconds": round(wall, 2),
                        "nginx_s": round(group_cpu_seconds(proxy.nginx.process.pid) - cpu["nginx"], 2),
                        "service_s": round(group_cpu_seconds(service.process.pid) - cpu["service"], 2),
                        "load_average": [round(x, 2) for x in os.getloadavg()]}
                    results["flood"] = flood.wait()
                    results["slowloris"] = slowloris.stop()
                    time.sleep(0.5)
                    results["valid_under_flood"]["in_gunicorn"] = service.server_times(mark, service.log_offset())
                    results["valid_under_flood"]["in_nginx"] = proxy.request_times(nginx_mark)

                    time.sleep(3)  # let the queued runs from the load finish
                    print(f"  push-to-served, {args.iterations} one-record edits ...", flush=True)
                    results["push_to_served"] = push_to_served(service, proxy, named, args.iterations)
                finally:
                    proxy.stop()
                    service.stop()

        valid, flooded, served = results["valid"], results["valid_under_flood"], results["push_to_served"]
        flood, slow = results["flood"], results["slowloris"]

        def inside(phase: dict) -> str:
            nginx, gunicorn = phase.get("in_nginx"), phase.get("in_gunicorn")
            parts = []
            if nginx:
                parts.append(f"nginx request {nginx['p50_ms']} / {nginx['p99_ms']} ms, upstream "
                             f"{nginx['upstream']['p50_ms']} / {nginx['upstream']['p99_ms']} ms")
            if gunicorn:
                parts.append(f"in gunicorn {gunicorn['p50_ms']} / {gunicorn['p99_ms']} ms")
            return "; " + "; ".join(parts) if parts else ""

        rows.append([f"ack, {args.rate:.0f} valid pushes/s over TLS via nginx (achieved {valid['achieved_rate']}/s)",
                     f"{valid['p50_ms']} / {valid['p99_ms']} ms", f"codes {valid['codes']}{inside(valid)}"])
        flood_text = (f"flood {flood.get('achieved_rate')}/s achieved of {args.flood:.0f}/s, codes {flood.get('codes')}, "
                      f"h2load CPU {flood.get('client_cpu_s')} s in {flood.get('seconds')} s" if "error" not in flood
                      else f"flood failed: {flood['error']}")
        rows.append([f"ack under bad-token flood + {args.slowloris} slowloris (valid achieved "
                     f"{flooded['achieved_rate']}/s)", f"{flooded['p50_ms']} / {flooded['p99_ms']} ms",
                     f"codes {flooded['codes']}{inside(flooded)}; {flood_text}; slowloris {slow}; "
                     f"CPU during it {results['cpu_during_flood']}"])
        rows.append([f"push-to-served via nginx, one-record edit in {args.records:,} records ({served['served']}/"
                     f"{served['iterations']} served)",
                     f"{served.get('p50_s', 'n/a')} / {served.get('p99_s', 'n/a')} s", f"acks {served['acks']}"])
        all_accepted = flooded["codes"] == {"202": int(args.rate * args.seconds)}
        ok_flood = flooded["p99_ms"] is not None and flooded["p99_ms"] < BAR_FLOOD_P99_MS and all_accepted
        reached = "error" not in flood and flood["achieved_rate"] >= 0.9 * args.flood
        verdicts.append(f"valid pushes under flood + slowloris: p99 {flooded['p99_ms']} ms (bar < "
                        f"{BAR_FLOOD_P99_MS:.0f} ms, every push 202) {'PASS' if ok_flood else 'FAIL'}"
                        + ("" if reached else f" [flood reached only {flood.get('achieved_rate')}/s of "
                                              f"{args.flood:.0f}/s]"))
        if "p50_s" in served:
            ok = served["p50_s"] < BAR_SERVED_P50_S and served["p99_s"] < BAR_SERVED_P99_S \
                and served["served"] == served["iterations"]
            verdicts.append(f"push-to-served p50 {served['p50_s']} s / p99 {served['p99_s']} s "
                            f"(bar < 1 s / < 2 s, all served) {'PASS' if ok else 'FAIL'}")
        else:
            verdicts.append("push-to-served: nothing was served: FAIL")
    harness.print_table("webhook service through nginx + TLS (p50 / p99)", ["measurement", "p50 / p99", "details"],
                        rows)
    print("\n" + "\n".join(verdicts))
    harness.write_results("webhook", {**results, "verdicts": verdicts})
    return 0


if __name__ == "__main__":
    sys.exit(main())
