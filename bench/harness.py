"""What the three benchmarks share: timing a command with its own peak RSS, medians and ratios,
a plain-text table, JSON results under bench/out/, cached generated zones, and a fresh BIND
``named`` on 127.0.0.1 with a TSIG key and a dynamically updatable zone.

Nothing here leaves loopback: servers listen on 127.0.0.1 only, and commands that would consult the
system resolver (named-checkzone looks up glue names) run in a network namespace of their own.
"""

from __future__ import annotations

import base64
import json
import os
import platform
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

import generate

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
OUT = BENCH / "out"
DATA = OUT / "data"
VENV = BENCH / ".venv"
ORIGIN = "example.com"
PYTHON = sys.executable


def our_source() -> Path:
    """Where ``python -m publisher`` is imported from: the work tree, or with BENCH_SOURCE=HEAD (or
    any commit) an exported snapshot of that commit, so edits in progress in a shared work tree
    cannot change or break a run half-way."""
    revision = os.environ.get("BENCH_SOURCE", "")
    if not revision:
        return ROOT
    sha = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", revision], check=True,
                         capture_output=True, text=True).stdout.strip()
    target = OUT / f"src-{sha}"
    if not (target / "publisher").is_dir():
        tmp = OUT / f"src-{sha}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", sha, "publisher"], check=True,
                                 capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(tmp)], input=archive, check=True)
        tmp.rename(target)
    return target


def our_env() -> dict[str, str]:
    """Environment for ``python -m publisher``: our source first on the path."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(our_source()) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def ours(*args: str) -> list[str]:
    return [PYTHON, "-m", "publisher", *args]


@dataclass
class Measurement:
    """One run of one command."""

    seconds: float
    max_rss_kib: int
    returncode: int
    output_tail: str = ""


def run_measured(cmd: Sequence[str], *, cwd: Path | None = None, env: dict[str, str] | None = None,
                 timeout: float = 1800, keep_output: bool = False) -> Measurement:
    """Run ``cmd`` once; wall time and the peak RSS of that child alone (wait4 gives per-child
    rusage, unlike RUSAGE_CHILDREN, which keeps the maximum over every child ever waited for)."""
    log = OUT / "last-command.log"
    OUT.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as sink:
        start = time.perf_counter()
        # Never the work tree as cwd: `python -m` puts the cwd first on sys.path, ahead of PYTHONPATH.
        process = subprocess.Popen(list(cmd), cwd=cwd or OUT, env=env, stdout=sink, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL)
        deadline = start + timeout
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                process.kill()
                pid, status, usage = os.wait4(process.pid, 0)
                break
            time.sleep(0.002)
        seconds = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    tail = ""
    if keep_output or process.returncode != 0:
        tail = log.read_text(errors="replace")[-2000:]
    return Measurement(seconds, int(usage.ru_maxrss), process.returncode, tail)


@dataclass
class Series:
    """N runs of one command, summarised by the median."""

    label: str
    runs: list[Measurement] = field(default_factory=list)
    available: bool = True
    note: str = ""

    @property
    def ok(self) -> bool:
        return self.available and bool(self.runs) and all(r.returncode == 0 for r in self.runs)

    @property
    def median(self) -> float | None:
        return statistics.median(r.seconds for r in self.runs) if self.runs else None

    @property
    def peak_rss_mib(self) -> float | None:
        return max(r.max_rss_kib for r in self.runs) / 1024 if self.runs else None

    def to_json(self) -> dict[str, Any]:
        return {"label": self.label, "available": self.available, "ok": self.ok, "note": self.note,
                "median_s": self.median, "peak_rss_mib": self.peak_rss_mib,
                "runs": [asdict(r) for r in self.runs]}


def measure(label: str, cmd: Sequence[str], repeat: int, **kwargs: Any) -> Series:
    series = Series(label)
    for _ in range(repeat):
        series.runs.append(run_measured(cmd, **kwargs))
    if not series.ok:
        bad = next(r for r in series.runs if r.returncode != 0)
        series.note = f"exit {bad.returncode}: " + " | ".join(bad.output_tail.strip().splitlines()[-3:])
    return series


def unavailable(label: str, why: str) -> Series:
    return Series(label, available=False, note=why)


def offline(cmd: Sequence[str]) -> list[str]:
    """Run ``cmd`` in a fresh network namespace (only a down loopback), when possible."""
    if shutil.which("unshare") and subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode == 0:
        return ["unshare", "-n", *cmd]
    return list(cmd)


def fmt_seconds(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"


def fmt_ratio(ours_s: float | None, anchor_s: float | None) -> str:
    if not ours_s or not anchor_s:
        return "n/a"
    return f"{ours_s / anchor_s:.2f}x"


def print_table(title: str, header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) if rows else len(str(h))
              for i, h in enumerate(header)]
    print(f"\n== {title}")
    print("  ".join(str(h).ljust(w) for h, w in zip(header, widths)))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths)))
    sys.stdout.flush()


def machine_info() -> dict[str, Any]:
    def version(cmd: list[str]) -> str:
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
            return (out.stdout or out.stderr).strip().splitlines()[0]
        except (OSError, IndexError, subprocess.TimeoutExpired):
            return "missing"

    return {"python": platform.python_version(), "cpus": os.cpu_count(), "kernel": platform.release(),
            "named": version(["named", "-v"]), "kzonecheck": version(["kzonecheck", "--version"]),
            "octodns": version([str(VENV / "bin" / "python"), "-c",
                                "import octodns, octodns_bind; print(octodns.__version__, 'octodns-bind', "
                                "getattr(octodns_bind, '__version__', '?'))"]),
            "git_head": version(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"]),
            "our_source": str(our_source().relative_to(ROOT)) or ".",
            # The machine is shared: a high load average explains noisy medians.
            "load_average_at_end": [round(x, 2) for x in os.getloadavg()]}


def write_results(section: str, results: dict[str, Any]) -> Path:
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"{section}.json"
    payload = {"section": section, "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
               "machine": machine_info(), **results}
    path.write_text(json.dumps(payload, indent=2, default=str))
    print(f"\nload average at the end: {payload['machine']['load_average_at_end']} on {os.cpu_count()} CPUs "
          "(the machine is shared; a high load makes every figure noisier)")
    print(f"results written to {path.relative_to(ROOT)}")
    return path


def zone_files(records: int, formats: tuple[str, ...] = ("bind", "lua")) -> dict[str, Path]:
    """Generated zones, cached under bench/out/data/<records>-v<generator version>/."""
    directory = DATA / f"{records}-v{generate.GENERATOR_VERSION}"
    paths = {"bind": directory / f"{ORIGIN}.bind", "lua": directory / f"{ORIGIN}.lua",
             "octodns": directory / f"{ORIGIN}.yaml"}
    missing = tuple(f for f in formats if not paths[f].exists())
    if missing:
        print(f"generating a {records:,}-record zone ({', '.join(missing)}) ...", flush=True)
        tmp = directory.with_name(directory.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        made = generate.generate(records, tmp, ORIGIN, missing)
        directory.mkdir(parents=True, exist_ok=True)
        for fmt, path in made.items():
            path.replace(paths[fmt])
        shutil.rmtree(tmp, ignore_errors=True)
    return {f: paths[f] for f in formats}


def free_port() -> int:
    """A port free on 127.0.0.1 for both TCP and UDP (DNS needs both)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind(("127.0.0.1", 0))
            port = tcp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind(("127.0.0.1", port))
                except OSError:
                    continue
            return port
    raise RuntimeError("no free port on 127.0.0.1")


def stop_process_group(process: subprocess.Popen | None, log: Any = None) -> None:
    """SIGTERM a started process group, SIGKILL it after 20 s, and close its log."""
    if process and process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    if log:
        log.close()


TSIG_NAME = "bench-key"
TSIG_ALGORITHM = "hmac-sha256"


class Named:
    """A fresh BIND on 127.0.0.1:<free port> serving ``example.com`` with only its SOA, apex NS and
    their addresses, updatable and transferable with one TSIG key."""

    def __init__(self, workdir: Path, *, check_integrity: bool = True) -> None:
        self.dir = workdir
        # BIND's default for a primary zone checks, after every UPDATE message, that in-zone MX,
        # SRV and NS targets have addresses: a client that sends the MX in one message and its
        # target's A record in a later one is REFUSED.
        self.check_integrity = check_integrity
        self.port = 0
        self.secret = base64.b64encode(secrets.token_bytes(32)).decode()
        self.process: subprocess.Popen | None = None

    @property
    def keyfile(self) -> Path:
        return self.dir / "tsig.key"

    def start(self) -> "Named":
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        key = f'key "{TSIG_NAME}" {{\n\talgorithm {TSIG_ALGORITHM};\n\tsecret "{self.secret}";\n}};\n'
        self.keyfile.write_text(key)
        (self.dir / f"{ORIGIN}.zone").write_text(
            f"$ORIGIN {ORIGIN}.\n$TTL {generate.DEFAULT_TTL}\n"
            f"@ SOA {generate.soa_rdata(ORIGIN, 1)}\n"
            f"@ NS ns1.{ORIGIN}.\n@ NS ns2.{ORIGIN}.\n"
            "ns1 A 192.0.2.53\nns2 A 198.51.100.53\n")
        d = self.dir
        (d / "named.conf").write_text(f"""include "{self.keyfile}";
options {{
	directory "{d}";
	pid-file "{d}/named.pid";
	session-keyfile "{d}/session.key";
	managed-keys-directory "{d}";
	listen-on port {self.port} {{ 127.0.0.1; }};
	listen-on-v6 {{ none; }};
	recursion no;
	dnssec-validation no;
	notify no;
	max-journal-size unlimited;
	transfers-out 10;
}};
controls {{ }};
zone "{ORIGIN}" {{
	type primary;
	file "{d}/{ORIGIN}.zone";
	allow-update {{ key {TSIG_NAME}; }};
	allow-transfer {{ key {TSIG_NAME}; }};
	check-names ignore;
	check-integrity {"yes" if self.check_integrity else "no"};
}};
""")
        self.log = (d / "named.log").open("wb")
        self.process = subprocess.Popen(["named", "-g", "-c", str(d / "named.conf")],
                                        stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        import dns.message
        import dns.query

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"named exited: {(self.dir / 'named.log').read_text()[-1500:]}")
            try:
                query = dns.message.make_query(ORIGIN, "SOA")
                answer = dns.query.udp(query, "127.0.0.1", port=self.port, timeout=0.5)
                if answer.answer:
                    return
            except Exception:  # not listening yet
                pass
            time.sleep(0.1)
        raise RuntimeError("named did not answer within 30 s")

    def served_records(self) -> int:
        """Records served (AXFR with TSIG via dig, SOA counted once)."""
        out = subprocess.run(["dig", "+noall", "+answer", "+onesoa", "-p", str(self.port),
                              "-y", f"{TSIG_ALGORITHM}:{TSIG_NAME}:{self.secret}", "@127.0.0.1", ORIGIN, "AXFR"],
                             capture_output=True, text=True, timeout=120)
        return sum(1 for line in out.stdout.splitlines() if line and not line.startswith(";"))

    def query(self, name: str, rtype: str = "A") -> list[str]:
        import dns.message
        import dns.query

        answer = dns.query.udp(dns.message.make_query(name, rtype), "127.0.0.1", port=self.port, timeout=1)
        return [rdata.to_text() for rrset in answer.answer for rdata in rrset]

    def stop(self) -> None:
        stop_process_group(self.process, getattr(self, "log", None))

    def publisher_toml(self, source: str, state: Path) -> str:
        """Our configuration publishing to this server: ``source`` is the body of ``[source]``."""
        return f"""[source]
{source}

[defaults]
ttl = {generate.DEFAULT_TTL}
nameservers = ["ns1.{ORIGIN}.", "ns2.{ORIGIN}."]
hostmaster = "hostmaster.{ORIGIN}."

[[provider]]
name = "bind"
type = "rfc2136"
server = "127.0.0.1"
port = {self.port}
tsig_keyfile = "{self.keyfile}"
zones = ["*"]

[state]
path = "{state}"
"""

    def __enter__(self) -> "Named":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
