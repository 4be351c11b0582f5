"""The status page in headless Chromium, served by `zone-publisher serve` (gunicorn) after a real run."""

from __future__ import annotations

import os
import shutil
import signal
import struct
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
import requests

from publisher.service.tokens import generate_token, hash_token
from tests.mailserver import free_port
from tests.test_service_e2e import wait_until

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).parent / "data" / "service"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


class Elements(HTMLParser):
    """Collects (tag, attributes, text) of every element of a DOM dump."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[list] = []
        self.elements: list[list] = []

    def handle_starttag(self, tag, attrs):
        element = [tag, dict(attrs), ""]
        self.elements.append(element)
        if tag not in ("meta", "link", "br", "img", "input"):
            self.stack.append(element)

    def handle_endtag(self, tag):
        while self.stack:
            if self.stack.pop()[0] == tag:
                break

    def handle_data(self, data):
        for element in self.stack:
            element[2] += data

    def find(self, tag: str, **attrs) -> list[list]:
        return [e for e in self.elements if e[0] == tag and all(e[1].get(k.replace("_", "-")) == v
                                                                   for k, v in attrs.items())]


def browse(url: str, profile: Path) -> Elements:
    """The DOM Chromium builds for ``url``."""
    result = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
         "--dump-dom", url], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    parser = Elements()
    parser.feed(result.stdout)
    return parser


def screenshot(url: str, profile: Path, out: Path) -> tuple[int, int]:
    subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
                    "--window-size=1024,768", f"--screenshot={out}", url], capture_output=True, timeout=120, check=True)
    header = out.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", header[16:24])


@pytest.fixture
def service(tmp_path):
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium is not installed")
    zones = tmp_path / "zones"
    zones.mkdir()
    shutil.copy(DATA / "repo" / "example.test.lua", zones)
    (zones / "broken.test.lua").write_text('ns("", "ns1.example.net.")\nns("", "ns2.example.net.")\n'
                                           'a("www", "192.0.2.300")\n')
    token = generate_token()
    config = tmp_path / "publisher.toml"
    config.write_text(f"""
[source]
path = "zones"
[defaults]
nameservers = ["ns1.example.net.", "ns2.example.net."]
[[provider]]
name = "files"
type = "zonefile"
directory = "served"
[state]
path = "state.db"
[webhook]
tokens = ["{hash_token(token)}"]
[notify]
to = ["ops@example.org"]
outbox = "outbox"
""")
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    log = (tmp_path / "serve.log").open("wb")
    process = subprocess.Popen([sys.executable, "-m", "publisher", "serve", "--config", str(config), "--listen",
                                f"127.0.0.1:{port}"], cwd=tmp_path, env=env, stdout=log, stderr=log,
                               start_new_session=True)
    url = f"http://127.0.0.1:{port}"

    def healthy():
        try:
            return requests.get(url + "/healthz", timeout=5).status_code == 200
        except (requests.ConnectionError, requests.Timeout):
            assert process.poll() is None, (tmp_path / "serve.log").read_text()
            return False

    wait_until(healthy, "the service")
    yield url, token, tmp_path
    os.killpg(process.pid, signal.SIGTERM)
    process.wait(timeout=30)
    log.close()


def test_status_page_shows_runs_zone_states_and_a_runs_findings(service):
    url, token, tmp_path = service
    profile = tmp_path / "chromium"
    # The service polls once at start-up: the zones are published without a push.
    startup = wait_until(lambda: (runs := requests.get(url + "/api/runs", timeout=5).json()["runs"])
                         and runs[0]["status"] != "running" and runs[0], "the start-up run")

    response = requests.post(f"{url}/notifications/{token}/push", timeout=10)
    assert response.status_code == 202
    wait_until(lambda: any(r["sender"] == "curl" and r["status"] != "running"
                           for r in requests.get(url + "/api/runs", timeout=5).json()["runs"]), "the curl run")
    page = browse(url + "/", profile)
    assert any("curl" in row[2] for row in page.find("tr") if "data-run" in row[1])
    run = startup

    page = browse(url + "/", profile)
    [row] = page.find("tr", data_run=str(run["id"]))
    assert "problems" in row[2] and "poll" in row[2]
    zones = {e[1]["data-zone"]: e[2] for e in page.find("tr") if "data-zone" in e[1]}
    assert "unchanged" in zones["example.test."]  # each zone's latest state: the curl run found nothing new
    assert "kept-last-good" in zones["broken.test."] or "failed" in zones["broken.test."] or \
        "blocked" in zones["broken.test."], zones
    links = [a for a in page.find("a") if a[1].get("href") == f"/runs/{run['id']}"]
    assert links and all(a[2] == f"#{run['id']}" for a in links)
    link = links[0]

    detail = browse(url + link[1]["href"], profile)
    [status] = detail.find("span", id="run-status")
    assert status[2] == "problems"
    findings = " ".join(row[2] for row in detail.find("tr", **{"class": "error"}))
    assert "broken.test.lua:3" in findings and "broken.test." in findings
    sections = {e[1]["data-zone"]: e[2] for e in detail.find("section")}
    assert "www.example.test." in sections["example.test."] and "192.0.2.1" in sections["example.test."]

    width, height = screenshot(url + "/", profile, tmp_path / "status.png")
    assert (width, height) == (1024, 768)
