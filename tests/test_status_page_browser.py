"""The status page in headless Chromium, served by `zone-publisher serve` (gunicorn) after a real run."""

from __future__ import annotations

import shutil
import struct
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
import requests

from publisher.service.tokens import generate_token, hash_token
from tests.serve_instance import ServeInstance
from tests.test_service_e2e import wait_until

pytestmark = pytest.mark.slow

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
    instance = ServeInstance(tmp_path, config.read_text(), "")
    instance.start()
    yield instance.url, token, tmp_path
    instance.stop()


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


# -- several repositories -------------------------------------------------------------------------------

@pytest.fixture
def repositories_service(tmp_path):
    """``serve`` over the three repositories of tests/data/web/repositories.toml, with runs recorded
    in its state database by the real stores beforehand (the sources are never reachable, so no
    run of the worker changes what the page shows)."""
    from publisher.service.jobs import JobQueue
    from publisher.service.runs import RunStore
    from tests.test_web_repositories import CONFIG, record_scenario

    if not Path(CHROMIUM).exists():
        pytest.skip("chromium is not installed")
    shutil.copy(CONFIG, tmp_path / "publisher.toml")
    runs, queue = RunStore(tmp_path / "state.db"), JobQueue(tmp_path / "state.db")
    scenario = record_scenario(runs, queue)
    for job in queue.active():  # nothing left for the worker to pick up
        queue.finish(job.id)
    runs.close()
    queue.close()
    instance = ServeInstance(tmp_path, (tmp_path / "publisher.toml").read_text(), "")
    instance.start()
    yield instance.url, scenario, tmp_path
    instance.stop()


def test_the_operator_sees_the_list_of_repositories_and_each_ones_page(repositories_service):
    url, scenario, tmp_path = repositories_service
    profile = tmp_path / "chromium"
    page = browse(url + "/", profile)  # from loopback: the operator
    rows = {e[1]["data-repository"]: e[2] for e in page.find("tr") if "data-repository" in e[1]}
    assert list(rows) == ["customer-a", "customer-b", "customer_c"]
    assert "problems" in rows["customer-a"] and "1 of 2" in rows["customer-a"]
    assert "failed" in rows["customer-b"] and "no run yet" in rows["customer_c"]
    runs = {e[1]["data-run"]: e[2] for e in page.find("tr") if "data-run" in e[1]}
    assert "customer-b" in runs[str(scenario.b_runs[0])] and "customer-a" in runs[str(scenario.a_runs[0])]
    assert "c-source-secret" not in " ".join(e[2] for e in page.elements)
    link = next(a for a in page.find("a", href="/repositories/customer-b") if a[2] == "customer-b")

    detail = browse(url + link[1]["href"], profile)
    [heading] = detail.find("h1", id="repository")
    assert heading[2] == "customer-b"
    zones = {e[1]["data-zone"]: e[2] for e in detail.find("tr") if "data-zone" in e[1]}
    assert "applied" in zones["b.example."] and "failed" in zones["a.example."]  # its refused attempt at A's zone
    assert {e[1]["data-run"] for e in detail.find("tr") if "data-run" in e[1]} == {str(scenario.b_runs[0])}

    # A reader of customer-a, through a proxy (a forwarded request must log in): its own page only.
    forwarded = {"X-Forwarded-For": "198.51.100.7", "Authorization": "Bearer reader-of-customer-a"}
    landing = requests.get(url + "/", headers=forwarded, timeout=10, allow_redirects=False)
    assert landing.status_code == 302 and landing.headers["Location"].endswith("/repositories/customer-a")
    assert requests.get(url + "/repositories/customer-b", headers=forwarded, timeout=10).status_code == 404
    own = requests.get(url + "/repositories/customer-a", headers=forwarded, timeout=10)
    assert own.status_code == 200 and "customer-b" not in own.text

    width, height = screenshot(url + "/", profile, tmp_path / "repositories.png")
    assert (width, height) == (1024, 768)
