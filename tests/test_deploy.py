"""The Dockerfile and compose example stay in step with the code (images cannot be pulled here, so
the container's start command and configuration are checked without Docker)."""

import json
import re
from pathlib import Path

import yaml

from publisher.cli import build_parser
from publisher.config import load_config_text

ROOT = Path(__file__).resolve().parent.parent


def test_container_start_command_parses_and_runs_as_non_root():
    dockerfile = (ROOT / "Dockerfile").read_text()
    entrypoint = json.loads(re.search(r"^ENTRYPOINT (.+)$", dockerfile, re.M).group(1))
    command = json.loads(re.search(r"^CMD (.+)$", dockerfile, re.M).group(1))
    assert entrypoint[0] == "zone-publisher"
    args = build_parser().parse_args(entrypoint[1:] + command)
    assert (args.command, args.listen) == ("serve", "0.0.0.0:8053")
    assert re.search(r"^USER publisher$", dockerfile, re.M)
    assert "git" in dockerfile and "pip install" in dockerfile


def test_compose_example_config_loads(tmp_path, monkeypatch):
    monkeypatch.setenv("SMTP_PASSWORD", "pw")
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert set(compose["services"]) == {"bind", "publisher"}
    secret = tmp_path / "webhook-secret"
    secret.write_text("s3cret")
    text = (ROOT / "examples" / "compose" / "config.toml").read_text().replace(
        "/etc/zone-publisher/webhook-secret", str(secret))
    config = load_config_text(text, base=tmp_path)
    assert config.providers[0].type == "rfc2136" and config.webhook.secret == "s3cret"
    assert config.poll.interval == 300
