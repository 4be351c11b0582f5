"""`zone-publisher passwd USER` and `zone-publisher token --read`: the real CLI, its output pasted into
a configuration, and the login it makes."""

import base64
import os
import re
import subprocess
import sys
from pathlib import Path

from publisher.config import load_config_text
from publisher.service.web import create_app

ROOT = Path(__file__).resolve().parent.parent
REMOTE = {"REMOTE_ADDR": "198.51.100.30"}


def cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "publisher", *args], input=stdin, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=60)


def test_passwd_prints_a_users_line_that_logs_in(tmp_path):
    done = cli("passwd", "alice", "--stdin", stdin="correct horse battery\n")
    assert done.returncode == 0 and "correct horse battery" not in done.stdout
    [line] = [line.strip() for line in done.stdout.splitlines() if line.strip().startswith("alice = ")]
    config = load_config_text(f'[state]\npath = "state.db"\n[web.users]\n{line}\n', base=tmp_path)
    client = create_app(config, {"TESTING": True}).test_client()

    def get(password):
        credentials = base64.b64encode(f"alice:{password}".encode()).decode()
        return client.get("/api/runs", environ_base=REMOTE, headers={"Authorization": f"Basic {credentials}"})

    assert get("correct horse battery").status_code == 200
    assert get("correct horse battery!").status_code == 401


def test_passwd_refuses_short_passwords_and_odd_user_names():
    short = cli("passwd", "alice", "--stdin", stdin="short\n")
    assert short.returncode == 1 and "at least 12 characters" in short.stderr and "short" not in short.stdout
    odd = cli("passwd", "al ice", "--stdin", stdin="correct horse battery\n")
    assert odd.returncode == 2 and "user name" in odd.stderr


def test_token_read_prints_a_bearer_token_and_its_hash(tmp_path):
    done = cli("token", "--read")
    assert done.returncode == 0
    token = re.search(r"Authorization: Bearer (\S+)", done.stdout).group(1)
    [line] = [line.strip() for line in done.stdout.splitlines() if line.strip().startswith("read_tokens = ")]
    config = load_config_text(f'[state]\npath = "state.db"\n[web]\n{line}\n', base=tmp_path)
    client = create_app(config, {"TESTING": True}).test_client()
    assert client.get("/metrics", environ_base=REMOTE, headers={"Authorization": f"Bearer {token}"}).status_code == 200
    assert client.get("/metrics", environ_base=REMOTE).status_code == 401
