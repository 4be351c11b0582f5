"""One real ``zone-publisher serve`` (gunicorn + its worker) in a folder of its own, as on its own
machine, in its own process group so ``kill9`` takes every process of it at once (what losing the
machine does).  Used by the several-instances test and the failover benchmark, which passes the
interpreter and environment of the commit it times."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Mapping

import requests

from tests.mailserver import free_port

ROOT = Path(__file__).resolve().parent.parent


class ServeInstance:
    """``serve --config root/publisher.toml`` on a free loopback port; ``ZP_STATE_URL`` in its
    environment is ``state_url`` (a config may say ``[state] url = "env:ZP_STATE_URL"``)."""

    def __init__(self, root: Path, config_text: str, state_url: str, *, python: str = sys.executable,
                 env: Mapping[str, str] | None = None) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.root, self.state_url, self.python = root, state_url, python
        self.base_env = dict(env) if env is not None else {**os.environ, "PYTHONPATH": str(ROOT)}
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config = root / "publisher.toml"
        self.config.write_text(config_text)
        self.log = root / "serve.log"
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 60.0) -> None:
        """Start it and wait until ``/healthz`` answers 200; a ``serve`` that exits raises with its log."""
        env = {**self.base_env, "PUBLISHER_WEB_WORKERS": "2", "ZP_STATE_URL": self.state_url}
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [self.python, "-m", "publisher", "serve", "--config", str(self.config),
                 "--listen", f"127.0.0.1:{self.port}"], cwd=self.root, env=env, stdout=log, stderr=log,
                start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"serve exited:\n{self.log.read_text()[-3000:]}")
            try:
                if requests.get(self.url + "/healthz", timeout=5).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise AssertionError(f"serve did not answer /healthz within {timeout:g} s")

    def pids(self) -> set[int]:
        """Every live process of this instance (its process group)."""
        found = set()
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    if os.getpgid(int(entry.name)) == self.process.pid:
                        found.add(int(entry.name))
                except OSError:
                    continue
        return found

    def kill9(self, timeout: float = 30.0) -> None:
        """``kill -9`` every process of the instance and wait until all are gone."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        deadline = time.monotonic() + timeout
        while self.pids():
            if time.monotonic() > deadline:
                raise AssertionError("processes of the killed instance are still alive")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
