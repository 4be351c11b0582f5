"""``zone-publisher serve``: the Flask app under gunicorn's stock threaded worker (driven through its
public ``BaseApplication``), plus one background worker process.

Floods, slow clients and TLS for the internet belong to a reverse proxy in front (the reference
deployment is nginx, ``examples/nginx/``); ``--certificate``/``--key`` give direct HTTPS for small
setups, since a webhook URL carries a secret and must only travel over HTTPS.

The worker (jobs, poll, notifications) runs in a dedicated child process started here, once, not in
each gunicorn worker: runs never overlap, and web workers stay free to answer webhooks at once.
The child exits by itself when this process disappears (even after ``kill -9``); queued jobs and
unsent mail are in the state database and resume on the next start.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass, replace
from pathlib import Path

from gunicorn.app.base import BaseApplication
from gunicorn.glogging import Logger

from publisher.config import Config, ConfigError, load_config


def parse_listen(listen: str) -> tuple[str, int]:
    """``HOST:PORT``, ``[V6]:PORT`` or ``:PORT`` (all interfaces)."""
    host, colon, port = listen.rpartition(":")
    if not colon or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"--listen {listen!r}: expected HOST:PORT")
    host = host.strip("[]") or "0.0.0.0"
    return host, int(port)


@dataclass(frozen=True)
class Tls:
    """The certificate chain and private key ``serve`` hands to gunicorn for HTTPS."""

    certificate: Path
    key: Path


def load_tls(certificate: str | None, key: str | None) -> Tls | None:
    """``Tls`` from the two options (both or neither), checked now: gunicorn would only find a bad
    file once a worker boots, with a traceback."""
    if not certificate and not key:
        return None
    if not (certificate and key):
        raise ValueError("--certificate and --key go together")
    tls = Tls(Path(certificate).resolve(), Path(key).resolve())
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(tls.certificate, tls.key)
    except ssl.SSLError as error:  # before OSError, its base class
        raise ValueError(f"--certificate {certificate} / --key {key}: not a matching PEM certificate and key "
                         f"({error.reason or error})") from None
    except OSError as error:
        raise ValueError(f"cannot read the certificate or key: {error.strerror or error}") from None
    return tls


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: assume it can be reached from elsewhere


def clear_text_warning(host: str, port: int, tls: Tls | None) -> str | None:
    """Plain HTTP reachable from other hosts: the secret in every webhook URL would cross the
    network unencrypted."""
    if tls is not None or is_loopback(host):
        return None
    return (f"listening on {host}:{port} without --certificate/--key: webhook URLs carry a secret and must only "
            "travel over HTTPS; listen on 127.0.0.1 behind a TLS reverse proxy (examples/nginx/) or give a "
            "certificate and key")


class RedactingLogger(Logger):
    """Gunicorn's logger with the token of webhook URLs replaced by ``[redacted]`` in access logs.
    429 answers are not logged one by one: a flood would fill the disk, and the moment a client
    gets rate-limited is logged once by the web app."""

    def access(self, resp, req, environ, request_time):
        if str(getattr(resp, "status", "")).startswith("429"):
            return
        super().access(resp, req, environ, request_time)

    def atoms(self, resp, req, environ, request_time):
        from publisher.service.web import redact

        atoms = super().atoms(resp, req, environ, request_time)
        return {key: redact(value) if isinstance(value, str) else value for key, value in atoms.items()}


class ServiceApplication(BaseApplication):
    """Gunicorn driven from Python: no gunicorn.conf.py, settings from the arguments."""

    def __init__(self, config: Config, options: dict) -> None:
        self.publisher_config = config
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self):
        from publisher.service.web import create_app
        return create_app(self.publisher_config)


WORKER_NICENESS = 10


class WorkerSupervisor:
    """Keeps the one background worker process running: a worker that dies (OOM killer, a crash in
    native code) is started again, after a pause that grows while it keeps dying.

    The worker runs at a lower CPU priority (niceness +10, inherited by the git and zone checks it
    starts): a run is batch work that can wait some milliseconds, a forge waiting for its 202 cannot.
    """

    def __init__(self, argv: list[str]) -> None:
        self.argv = argv
        self.process: subprocess.Popen | None = None
        self.restarts = 0
        self._stop = threading.Event()

    def _spawn(self) -> subprocess.Popen:
        process = subprocess.Popen(self.argv)
        try:
            os.setpriority(os.PRIO_PROCESS, process.pid, os.getpriority(os.PRIO_PROCESS, 0) + WORKER_NICENESS)
        except OSError:
            pass  # already gone: the watcher restarts it
        return process

    def start(self) -> None:
        self.process = self._spawn()
        threading.Thread(target=self._watch, name="worker-supervisor", daemon=True).start()

    def _watch(self) -> None:
        pause = 1.0
        while not self._stop.wait(1.0):
            # poll() also sees a worker already reaped by gunicorn's SIGCHLD handler.
            if self.process.poll() is None:
                pause = 1.0
                continue
            print(f"zone-publisher: background worker exited ({self.process.returncode}); restarting in "
                  f"{pause:.0f} s", file=sys.stderr, flush=True)
            if self._stop.wait(pause):
                return
            pause = min(pause * 2, 60.0)
            self.process = self._spawn()
            self.restarts += 1

    def stop(self) -> None:
        self._stop.set()
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def upgrade_state(config: Config) -> str | None:
    """Create or migrate the state database's tables before anything uses them (several instances
    starting at once do it one after the other); why it failed, or None."""
    from publisher.database import DatabaseError, StateDatabaseError, open_database
    from publisher.service.schema import upgrade_all

    try:
        upgrade_all(config.state.location)
    except StateDatabaseError as error:
        return str(error)
    except DatabaseError as error:
        return (f"the state database {open_database(config.state.location).display} refused the schema upgrade: "
                f"{type(error).__name__}: {str(error).strip()}")
    return None


def development_token(config: Config) -> str | None:
    """With no ``[webhook] tokens`` configured (``make run``), a token kept beside the state
    database (mode 0600) so the printed URL stays valid across restarts."""
    from publisher.service.tokens import generate_token

    path = Path(config.state.path).parent / "webhook-token"
    try:
        token = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        token = ""
    if not token:
        path.parent.mkdir(parents=True, exist_ok=True)
        token = generate_token()
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as stream:
            stream.write(token + "\n")
    return token


def repository_lines(config: Config, base_url: str) -> list[str]:
    """One line per repository of a several-repositories instance: its name, source and webhook
    URL, never a token (only their hashes are configured)."""
    lines = []
    for view in config.repositories:
        source = view.source.display_url or view.source.path
        if view.webhook.tokens:
            hook = (f"webhook {base_url}/notifications/<token>/push (the token whose sha256 is in its "
                    "[repository.webhook] tokens)")
        else:
            hook = "no webhook token: published by polling only"
        lines.append(f"zone-publisher: repository {view.name} ({source}): {hook}")
    return lines


def _child_exit(server, worker) -> None:
    """Drop a dead web worker's live gauges from the shared Prometheus files."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess
        multiprocess.mark_process_dead(worker.pid)


def gunicorn_options(host: str, port: int, tls: Tls | None = None) -> dict:
    """Gunicorn settings (all public, documented ones) for ``serve``."""
    options = {
        "bind": f"[{host}]:{port}" if ":" in host else f"{host}:{port}",
        "workers": int(os.environ.get("PUBLISHER_WEB_WORKERS", "2")),
        "worker_class": "gthread",
        "threads": int(os.environ.get("PUBLISHER_WEB_THREADS", "8")),
        "timeout": 30,
        "graceful_timeout": 5,
        "keepalive": 5,
        "accesslog": "-",
        "access_log_format": '%(h)s "%(r)s" %(s)s %(b)s %(L)ss',
        "logger_class": RedactingLogger,
        "limit_request_line": 4094,
        "proc_name": "zone-publisher",
        "child_exit": _child_exit,
        "control_socket_disable": True,  # several services (and tests) on one host must not share it
    }
    if tls is not None:
        options.update(certfile=str(tls.certificate), keyfile=str(tls.key))
    return options


def run(args) -> int:
    # Request counters are summed over gunicorn workers through files in this directory; it must be
    # set before prometheus_client is imported (by publisher.service.web).
    metrics_dir = None
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        metrics_dir = os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="zone-publisher-metrics-")
    try:
        config = load_config(args.config) if args.config else Config.default()
        host, port = parse_listen(args.listen)
        tls = load_tls(args.certificate, args.key)
    except (ConfigError, ValueError) as error:
        print(f"zone-publisher serve: {error}", file=sys.stderr)
        if metrics_dir:
            shutil.rmtree(metrics_dir, ignore_errors=True)
        return 2
    for warning in config.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    problem = upgrade_state(config)
    if problem:
        print(f"zone-publisher serve: {problem}", file=sys.stderr)
        if metrics_dir:
            shutil.rmtree(metrics_dir, ignore_errors=True)
        return 2
    warning = clear_text_warning(host, port, tls)
    if warning:
        print(f"warning: {warning}", file=sys.stderr)

    token = None
    if not config.repositories and not config.webhook.tokens:  # several repositories: no development token
        from publisher.service.tokens import hash_token
        token = development_token(config)
        config = replace(config, webhook=replace(config.webhook, tokens=(hash_token(token),)))

    shown_host = socket.gethostname() if host in ("0.0.0.0", "::") else host
    base_url = f"{'https' if tls else 'http'}://{'[' + shown_host + ']' if ':' in shown_host else shown_host}:{port}"
    worker_argv = [sys.executable, "-m", "publisher.service.worker", "--status-url", base_url + "/",
                   "--parent", str(os.getpid())]
    if args.config:
        worker_argv += ["--config", str(Path(args.config).resolve())]
    worker = WorkerSupervisor(worker_argv)
    worker.start()

    print(f"zone-publisher: status page {base_url}/", flush=True)
    if token is not None:
        # Shown on the terminal only for the development token (make run); never logged.
        print(f"zone-publisher: webhook token kept in {Path(config.state.path).parent / 'webhook-token'}; try:\n"
              f"  curl -i -X POST {base_url}/notifications/{token}/push", flush=True)
    elif config.repositories:
        for line in repository_lines(config, base_url):
            print(line, flush=True)
    else:
        print(f"zone-publisher: webhook URL {base_url}/notifications/<token>/push "
              "(the token whose sha256 is in [webhook] tokens)", flush=True)
    try:
        ServiceApplication(config, gunicorn_options(host, port, tls)).run()
    finally:
        worker.stop()
        if metrics_dir:
            shutil.rmtree(metrics_dir, ignore_errors=True)
    return 0
