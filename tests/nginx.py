"""Real nginx in front of ``zone-publisher serve``, configured with ``examples/nginx/zone-publisher.conf``
(the reference deployment) as shipped, only its addresses and paths changed: loopback ports, a
temporary prefix holding logs, temp files and a self-signed certificate made with ``openssl``.

The master runs as an ordinary user (``nobody`` when the tests run as root), as any user can run
it: no ``user`` directive, no privileged port, nothing outside the prefix.  Used by
``tests/test_deploy.py`` and ``bench/bench_webhook.py``.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "nginx" / "zone-publisher.conf"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1/localhost (EC P-256: quick to make and to handshake)."""
    certificate, key = directory / "fullchain.pem", directory / "privkey.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-days", "2", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(certificate)], check=True, capture_output=True)
    return certificate, key


def _replace(text: str, old: str, new: str, count: int | None = None) -> str:
    found = text.count(old)
    if not found or (count is not None and found != count):
        raise AssertionError(f"examples/nginx/zone-publisher.conf no longer holds {old!r} "
                             f"({found} times): update tests/nginx.py with it")
    return text.replace(old, new)


def render_example(prefix: Path, *, http_port: int, https_port: int, upstream_port: int,
                   exempt: tuple[str, ...] = ()) -> str:
    """The example with loopback addresses and ``prefix`` paths; ``exempt`` addresses are not limited
    (the example's ``geo`` entry for a forge's hook addresses)."""
    text = EXAMPLE.read_text()
    text = _replace(text, "listen 80;", f"listen 127.0.0.1:{http_port};", 1)
    text = _replace(text, "listen 443 ssl;", f"listen 127.0.0.1:{https_port} ssl;", 1)
    text = _replace(text, "server 127.0.0.1:8053;", f"server 127.0.0.1:{upstream_port};", 1)
    text = _replace(text, "/etc/nginx/tls/", f"{prefix}/tls/", 2)
    text = _replace(text, "/var/log/nginx/", f"{prefix}/logs/")
    entries = "".join(f"    {address} 0;\n" for address in exempt)
    return _replace(text, "    default 1;\n", "    default 1;\n" + entries, 1)


class Nginx:
    """``start()``/``stop()`` nginx on two free loopback ports proxying to ``upstream_port``."""

    def __init__(self, upstream_port: int, *, exempt: tuple[str, ...] = (), worker_processes: int = 1) -> None:
        self.upstream_port = upstream_port
        self.exempt = exempt
        self.worker_processes = worker_processes
        self.http_port, self.https_port = free_port(), free_port()
        self.prefix = Path(tempfile.mkdtemp(prefix="zone-publisher-nginx-"))
        self.certificate, self.key = self_signed_certificate(self._mkdir("tls"))
        self.process: subprocess.Popen | None = None

    def _mkdir(self, name: str) -> Path:
        path = self.prefix / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def https_url(self) -> str:
        return f"https://127.0.0.1:{self.https_port}"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def config_text(self) -> str:
        temp = self._mkdir("temp")
        temp_paths = "".join(f"    {kind}_temp_path {temp / kind};\n"
                             for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        (self.prefix / "zone-publisher.conf").write_text(render_example(
            self.prefix, http_port=self.http_port, https_port=self.https_port, upstream_port=self.upstream_port,
            exempt=self.exempt))
        return (f"worker_processes {self.worker_processes};\n"
                f"pid {self.prefix}/nginx.pid;\n"
                f"error_log {self.prefix}/logs/main.error.log warn;\n"
                "events { worker_connections 4096; }\n"
                "http {\n"
                f"{temp_paths}"
                "    access_log off;\n"
                f"    include {self.prefix}/zone-publisher.conf;\n"
                "}\n")

    def _prepare(self) -> tuple[list[str], dict]:
        """Write the configuration; the command line and the user to run it as."""
        self._mkdir("logs")
        config = self.prefix / "nginx.conf"
        config.write_text(self.config_text())
        as_user = {}
        if os.geteuid() == 0:  # an ordinary user's master: chown the prefix to nobody and run as it
            nobody = pwd.getpwnam("nobody")
            for path in [self.prefix, *self.prefix.rglob("*")]:
                os.chown(path, nobody.pw_uid, nobody.pw_gid)
            as_user = {"user": nobody.pw_uid, "group": nobody.pw_gid, "extra_groups": []}
        return ["nginx", "-p", str(self.prefix), "-c", str(config)], as_user

    def check(self) -> subprocess.CompletedProcess:
        """``nginx -t`` on the configuration, as the user that would run it."""
        command, as_user = self._prepare()
        return subprocess.run([*command, "-t"], capture_output=True, text=True, **as_user)

    def start(self) -> "Nginx":
        check = self.check()
        if check.returncode != 0:
            raise RuntimeError(f"nginx -t refused the configuration:\n{check.stderr}")
        command, as_user = self._prepare()
        command += ["-g", "daemon off;"]
        self.stderr = (self.prefix / "logs" / "stderr.log").open("wb")
        self.process = subprocess.Popen(command, stdout=self.stderr, stderr=self.stderr, start_new_session=True,
                                        **as_user)
        deadline = time.monotonic() + 30
        while not self._listening():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("nginx did not start: " + self.log_text())
            time.sleep(0.05)
        return self

    def _listening(self) -> bool:
        for port in (self.http_port, self.https_port):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            except OSError:
                return False
        return True

    def log_text(self) -> str:
        """Everything nginx wrote: access log, error logs, its stderr."""
        return "".join(f"==> {path.name}\n{path.read_text(errors='replace')}"
                       for path in sorted((self.prefix / "logs").glob("*")) if path.is_file())

    def access_log(self) -> str:
        path = self.prefix / "logs" / "zone-publisher.access.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()  # SIGTERM: fast shutdown
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, 9)
                self.process.wait()
        if getattr(self, "stderr", None):
            self.stderr.close()

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.prefix, ignore_errors=True)

    def __enter__(self) -> "Nginx":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.remove()
