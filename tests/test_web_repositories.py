"""Several repositories on one instance, read through the real Flask app: the operator sees every
repository; a repository's read token sees that one only, and anything of another answers 404 as a
missing id does.  Runs and jobs are written by the real RunStore and JobQueue into a state database."""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from publisher.config import HealthConfig, JobsConfig, StateConfig, load_config
from publisher.model import Change, Finding
from publisher.service.jobs import PUSH, POLL
from publisher.service.runs import FAILED, OK, PROBLEMS, RunRecord, ZoneOutcome
from publisher.service.web import create_app

CONFIG = Path(__file__).parent / "data" / "web" / "repositories.toml"
A, B, C = "customer-a", "customer-b", "customer_c"
REMOTE = {"REMOTE_ADDR": "198.51.100.20"}
OPERATOR_TOKEN = "operator-read-token"
SOURCE_SECRET = "c-source-secret"


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def reader(name: str) -> dict:
    return bearer(f"reader-of-{name.replace('_', '-')}")


OPERATOR_BASIC = {"Authorization": "Basic " + base64.b64encode(b"operator:operator password").decode()}


@dataclass(frozen=True)
class Scenario:
    """The ids of what ``record_scenario`` wrote."""

    a_runs: tuple[int, ...]  # oldest first; the last is the plan of a request
    b_runs: tuple[int, ...]
    a_job: int
    b_job: int  # running
    c_job: int  # queued


def _run(repository: str, status: str, finished: float, zones=(), **facts) -> RunRecord:
    return RunRecord(repository, facts.pop("trigger", PUSH), status, finished - 1.5, finished, zones=tuple(zones),
                     **facts)


def record_scenario(runs, queue, now: float | None = None) -> Scenario:
    """A's two deploy runs (the second with a zone kept at its last good version) and a request's
    plan; B's run, which also tried A's zone and was refused; C never ran and waits in the queue;
    B's job is running."""
    now = time.time() if now is None else now
    broken = Finding("error", "cname-and-other-data", "a.example.", "a.example.lua", 7, "www has CNAME and A")
    a_job = queue.enqueue(A, kind=PUSH, sender="github", commit="a" * 40, now=now - 600).job_id
    queue.claim("worker:a", now=now - 590)
    first = runs.record(_run(A, OK, now - 500, commit="a" * 40, sender="github", subject="First zones of A",
                             author_name="Ann", job_id=a_job,
                             zones=[ZoneOutcome("a.example.", "shared", "applied",
                                                (Change("create", "www.a.example.", "A", 300, (), ("192.0.2.1",)),)),
                                    ZoneOutcome("www.a.example.", "shared", "applied")]))
    queue.finish(a_job, run_id=first, published_commit="a" * 40, now=now - 500)
    second = runs.record(_run(A, PROBLEMS, now - 400, commit="a1" * 20, trigger=POLL, sender="poll",
                              subject="Break A",
                              zones=[ZoneOutcome("a.example.", "shared", "kept-last-good", (), (broken,)),
                                     ZoneOutcome("www.a.example.", "shared", "unchanged")]))
    plan = runs.record(_run(f"{A}#request/3", OK, now - 300, commit="a2" * 20, trigger="plan", sender="github",
                            subject="Proposal for A"))
    b_run = runs.record(_run(B, FAILED, now - 200, commit="b" * 40, sender="gitlab", subject="Take over A",
                             zones=[ZoneOutcome("b.example.", "shared", "applied"),
                                    ZoneOutcome("a.example.", "shared", "failed",
                                                error="a.example. belongs to another repository")]))
    b_job = queue.enqueue(B, kind=PUSH, sender="gitlab", commit="b1" * 20, now=now - 30).job_id
    assert queue.claim("worker:b", now=now - 20).id == b_job
    c_job = queue.enqueue(C, kind=PUSH, sender="gitea", commit="c" * 40, now=now - 10).job_id
    queue.enqueue(f"{A}#request/3", kind="plan", sender="github", commit="a3" * 20, now=now - 5)
    return Scenario((first, second, plan), (b_run,), a_job, b_job, c_job)


@pytest.fixture
def app(tmp_path):
    config = load_config(CONFIG)
    config = replace(config, state=StateConfig(tmp_path / "state.db"))
    return create_app(config, {"TESTING": True, "AUTH_FAILURE_LIMIT": 1000})


@pytest.fixture
def scenario(app) -> Scenario:
    shared = app.extensions["publisher"]
    return record_scenario(shared.runs, shared.queue)


def get(app, path: str, headers: dict | None = None, remote: bool = True):
    return app.test_client().get(path, headers=headers or {}, environ_base=REMOTE if remote else {})


OPERATORS = {"loopback": (None, False), "basic": (OPERATOR_BASIC, True), "read-token": (bearer(OPERATOR_TOKEN), True)}


# -- the operator ----------------------------------------------------------------------------------

@pytest.mark.parametrize("login", OPERATORS)
def test_the_operator_sees_every_repository(app, scenario, login):
    headers, remote = OPERATORS[login]
    page = get(app, "/", headers, remote)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    for name in (A, B, C):
        assert f'<tr data-repository="{name}"' in html
    # Recent runs across all, with a repository column.
    for run_id in (*scenario.a_runs, *scenario.b_runs):
        assert f'data-run="{run_id}"' in html
    assert f'<td class="repository"><a href="/repositories/{B}">{B}</a></td>' in html
    listed = get(app, "/api/repositories", headers, remote).json["repositories"]
    assert [entry["name"] for entry in listed] == [A, B, C]
    runs = get(app, "/api/runs", headers, remote).json["runs"]
    assert sorted(run["id"] for run in runs) == sorted((*scenario.a_runs, *scenario.b_runs))
    metrics = get(app, "/metrics", headers, remote).get_data(as_text=True)
    for name in (A, B, C):
        assert f'publisher_jobs{{repository="{name}",' in metrics
    assert "publisher_outbox_pending" in metrics
    assert get(app, f"/api/jobs/{scenario.b_job}", headers, remote).json["repository"] == B


def test_the_repositories_list_says_how_each_one_stands(app, scenario):
    listed = {entry["name"]: entry for entry in get(app, "/api/repositories", remote=False).json["repositories"]}
    a, b, c = listed[A], listed[B], listed[C]
    # A's last deploy run is the poll that kept a zone at its last good version (the plan is no deploy run).
    assert a["last_run"]["id"] == scenario.a_runs[1] and a["last_run"]["status"] == PROBLEMS
    assert (a["zones"], a["zones_with_problems"]) == (2, 1)
    assert [job["kind"] for job in a["jobs"]] == ["plan"]
    assert b["last_run"]["status"] == FAILED and b["zones_with_problems"] == 1
    assert b["jobs"] == [{"id": scenario.b_job, "state": "running", "kind": "push"}]
    assert c["last_run"] is None and c["zones"] == 0
    assert c["jobs"] == [{"id": scenario.c_job, "state": "queued", "kind": "push"}]
    html = get(app, "/", remote=False).get_data(as_text=True)
    row = html[html.index(f'<tr data-repository="{A}"'):]
    row = row[:row.index("</tr>")]
    assert "problems" in row and ("a1" * 20)[:12] in row and ">1</span> of 2" in row


def test_the_operator_filters_runs_by_repository(app, scenario):
    runs = get(app, f"/api/runs?repository={B}", remote=False).json["runs"]
    assert [run["id"] for run in runs] == list(scenario.b_runs)
    a_runs = get(app, f"/api/runs?repository={A}&limit=2", remote=False).json["runs"]
    assert [run["id"] for run in a_runs] == [scenario.a_runs[2], scenario.a_runs[1]]
    assert a_runs[0]["repository"] == f"{A}#request/3"  # a request's plan is its repository's
    assert get(app, "/api/runs?repository=nobody", remote=False).status_code == 404
    assert get(app, "/repositories/nobody", remote=False).status_code == 404


# -- a repository's reader -------------------------------------------------------------------------

READS_OF_A = ["/repositories/customer-a", "/api/repositories", "/api/runs", "/api/runs?repository=customer-a",
              "/api/repositories/customer-a/zones", "/metrics"]


def test_a_reader_lands_on_its_repository_page(app, scenario):
    landing = get(app, "/", reader(A))
    assert landing.status_code == 302 and landing.headers["Location"].endswith(f"/repositories/{A}")
    html = get(app, f"/repositories/{A}", reader(A)).get_data(as_text=True)
    assert f'data-repository="{A}"' in html
    assert all(f'data-run="{run_id}"' in html for run_id in scenario.a_runs)
    assert f'data-run="{scenario.b_runs[0]}"' not in html
    # A's zone is in A's state: B's refused attempt at it is B's run, not A's zone.
    zone = html[html.index('data-zone="a.example."'):]
    assert "kept-last-good" in zone[:zone.index("</tr>")]
    assert "mail waiting" not in html  # the instance's outbox is the operator's


@pytest.mark.parametrize("path", READS_OF_A)
def test_a_reader_of_a_reads_a_and_nothing_of_the_others(app, scenario, path):
    response = get(app, path, reader(A))
    assert response.status_code == 200
    text = response.get_data(as_text=True)
    assert B not in text and C not in text and SOURCE_SECRET not in text


def test_a_readers_api_and_metrics_hold_its_repository_only(app, scenario):
    runs = get(app, "/api/runs", reader(A)).json["runs"]
    assert sorted(run["id"] for run in runs) == sorted(scenario.a_runs)
    assert [entry["name"] for entry in get(app, "/api/repositories", reader(A)).json["repositories"]] == [A]
    zones = get(app, f"/api/repositories/{A}/zones", reader(A)).json["zones"]
    assert [(z["zone"], z["status"], z["has_problems"]) for z in zones] == [
        ("a.example.", "kept-last-good", True), ("www.a.example.", "unchanged", False)]
    assert zones[0]["run_id"] == scenario.a_runs[1] and zones[0]["findings"][0]["line"] == 7
    assert get(app, f"/api/jobs/{scenario.a_job}", reader(A)).json["run_id"] == scenario.a_runs[0]
    metrics = get(app, "/metrics", reader(A)).get_data(as_text=True)
    series = [line for line in metrics.splitlines() if line and not line.startswith("#")]
    assert series and all(f'repository="{A}"' in line for line in series), series
    assert f'publisher_zone_ok{{provider="shared",repository="{A}",status="kept-last-good",zone="a.example."}} 0.0' \
        in series
    assert f'publisher_runs{{repository="{A}",status="ok"}} 2.0' in series  # a deploy run and the request's plan


def others_paths(scenario: Scenario) -> list[tuple[str, str]]:
    """(path of something of B or C, path of something that does not exist) pairs."""
    return [(f"/runs/{scenario.b_runs[0]}", "/runs/999999"),
            (f"/api/runs/{scenario.b_runs[0]}", "/api/runs/999999"),
            (f"/api/jobs/{scenario.b_job}", "/api/jobs/999999"),
            (f"/api/jobs/{scenario.c_job}", "/api/jobs/999999"),
            (f"/repositories/{B}", "/repositories/nobody"),
            (f"/api/repositories/{C}/zones", "/api/repositories/nobody/zones"),
            (f"/api/runs?repository={B}", "/api/runs?repository=nobody")]


def test_a_reader_gets_404_for_the_others_exactly_as_for_what_does_not_exist(app, scenario):
    for others, missing in others_paths(scenario):
        theirs, nothing = get(app, others, reader(A)), get(app, missing, reader(A))
        assert theirs.status_code == nothing.status_code == 404, others
        assert theirs.get_data() == nothing.get_data() and theirs.headers == nothing.headers, others
        assert get(app, others, bearer(OPERATOR_TOKEN)).status_code == 200, others  # it exists


def test_a_wrong_token_is_no_reader(app, scenario):
    for token in ("reader-of-customer-d", "READER-OF-CUSTOMER-A", "reader-of-customer-"):
        assert get(app, f"/repositories/{A}", bearer(token)).status_code == 401
    assert get(app, f"/repositories/{A}", reader(B)).status_code == 404  # B's reader, A's page


def test_repository_read_tokens_alone_are_logins_and_the_rest_is_refused(tmp_path):
    from publisher.config import WebConfig

    config = replace(load_config(CONFIG), state=StateConfig(tmp_path / "state.db"), web=WebConfig())
    app = create_app(config, {"TESTING": True})
    refused = get(app, "/api/runs")
    assert refused.status_code == 401 and refused.headers["WWW-Authenticate"].startswith("Bearer")
    assert get(app, "/api/runs", reader(A)).status_code == 200
    assert get(app, "/api/runs", OPERATOR_BASIC).status_code == 401  # no [web] users: no operator from afar
    assert get(app, "/api/repositories", remote=False).status_code == 200  # loopback is the operator


# -- bounded answers and bad parameters -----------------------------------------------------------

def test_zones_come_in_pages_and_bad_parameters_are_400(app, scenario):
    first = get(app, f"/api/repositories/{A}/zones?limit=1", reader(A)).json
    assert [z["zone"] for z in first["zones"]] == ["a.example."] and first["next_offset"] == 1
    second = get(app, f"/api/repositories/{A}/zones?limit=1&offset=1", reader(A)).json
    assert [z["zone"] for z in second["zones"]] == ["www.a.example."] and second["next_offset"] is None
    for offset in ("-1", "x", "1e3", "9" * 40, "١"):
        refused = get(app, f"/api/repositories/{A}/zones?offset={offset}", reader(A))
        assert refused.status_code == 400 and refused.json["reason"] == "offset must be a whole number", offset
    assert len(get(app, f"/api/repositories/{A}/zones?limit=999999999", reader(A)).json["zones"]) == 2
    assert len(get(app, "/api/runs?limit=-5", reader(A)).json["runs"]) == 1


# -- /healthz: open and instance-wide --------------------------------------------------------------

def test_healthz_reports_a_stuck_queue_of_any_repository_without_naming_it(app, scenario):
    shared = app.extensions["publisher"]
    assert get(app, "/healthz").status_code == 200  # C's job is young
    stale = create_app(replace(shared.config, health=HealthConfig(queue_wait=5)), {"TESTING": True})
    response = get(stale, "/healthz")
    # B runs under a live lease; C has waited 10 s with one of the two workers free.
    assert response.status_code == 503 and "only 1 of [jobs] workers 2 hold a live lease" in response.json["reasons"][0]
    text = response.get_data(as_text=True)
    assert all(name not in text for name in (A, B, C, "customer"))
    one_worker = create_app(replace(shared.config, health=HealthConfig(queue_wait=5), jobs=JobsConfig(workers=1)),
                            {"TESTING": True})
    assert get(one_worker, "/healthz").status_code == 200  # the only worker is busy with B: not stuck


# -- the one-repository form ---------------------------------------------------------------------------

def test_a_one_repository_config_lists_itself_under_its_source_key(tmp_path):
    from tests.test_web import make_config

    app = create_app(make_config(tmp_path), {"TESTING": True})
    key = "https://git.example.org/example/dns.git#main"
    assert app.extensions["publisher"].config.key == key
    run_id = app.extensions["publisher"].runs.record(_run(key, PROBLEMS, time.time(), commit="d" * 40, zones=[
        ZoneOutcome("example.com.", "primary", "failed", error="refused"), ZoneOutcome("example.net.", "primary", "applied")]))
    [entry] = get(app, "/api/repositories", remote=False).json["repositories"]
    assert entry["name"] == key and entry["last_run"]["id"] == run_id
    assert (entry["zones"], entry["zones_with_problems"]) == (2, 1)
    html = get(app, "/", remote=False).get_data(as_text=True)
    assert "<h1>Status</h1>" in html and 'id="repositories"' not in html and f'data-run="{run_id}"' in html
    assert get(app, "/api/runs?repository=" + key.replace("#", "%23"), remote=False).json["runs"][0]["id"] == run_id
    assert f'data-run="{run_id}"' in get(app, "/repositories/" + key.replace("#", "%23"), remote=False).get_data(
        as_text=True)
