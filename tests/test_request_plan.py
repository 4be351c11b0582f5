"""The plan of a pull request: publish() without applying, its one-line summary, its comment."""

from pathlib import Path

from publisher.config import load_config_text
from publisher.publish.request_plan import plan_request, request_comment, request_outcomes
from tests.mailserver import free_port

DATA = Path(__file__).parent / "data" / "service"
ZONE = (DATA / "repo" / "example.test.lua").read_text()
API_KEY = "pdns-api-key-that-must-not-leak"


def config(tmp_path: Path, extra: str = ""):
    return load_config_text(f"""
[defaults]
nameservers = ["ns1.example.net.", "ns2.example.net."]
[[provider]]
name = "files"
type = "zonefile"
directory = "served"
[state]
path = "state.db"
{extra}
""", base=tmp_path)


def repository(tmp_path: Path, text: str) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    (root / "example.test.lua").write_text(text)
    return root


def test_a_plan_applies_nothing_and_says_what_would_change(tmp_path):
    report = plan_request(config(tmp_path), repository(tmp_path, ZONE))
    assert not report.applied and not (tmp_path / "served" / "example.test.zone").exists()
    outcomes = request_outcomes(report)
    assert outcomes.changed == ("example.test.",) and not outcomes.broken
    assert outcomes.summary(planned=True) == "1 zone would change"
    comment = request_comment(report, "c" * 40, run_url="https://dns.example.org/runs/3")
    assert comment.startswith("<!-- zone-publisher plan -->\n## DNS plan for `cccccccccccc`: ✅")
    assert "`www.example.test.`" in comment and "192.0.2.1" in comment and "/runs/3" in comment
    assert "Nothing was applied" in comment


def test_a_broken_zone_is_named_at_file_and_line(tmp_path):
    report = plan_request(config(tmp_path), repository(tmp_path, ZONE + 'cname("www", "x.example.net.")\n'))
    outcomes = request_outcomes(report)
    assert outcomes.broken and outcomes.kept == ("example.test.",)
    assert outcomes.first_error.startswith("example.test.lua:5: ")
    comment = request_comment(report, "d" * 40)
    assert "would not publish cleanly" in comment and "`example.test.lua:5`" in comment


def test_a_provider_failure_is_reported_without_its_secrets(tmp_path):
    extra = f"""
[[provider]]
name = "pdns"
type = "powerdns"
api_url = "http://127.0.0.1:{free_port()}"
api_key = "{API_KEY}"
timeout = 2
"""
    report = plan_request(config(tmp_path, extra), repository(tmp_path, ZONE))
    outcomes = request_outcomes(report)
    assert outcomes.broken and "pdns" in outcomes.first_error
    comment = request_comment(report, "e" * 40)
    assert "pdns" in comment and API_KEY not in comment and API_KEY not in outcomes.summary(planned=True)


def test_a_zone_changed_outside_is_listed_as_a_problem_but_does_not_block_the_request(tmp_path):
    import re

    from publisher.outcome import PROBLEMS
    from publisher.publish.orchestrator import publish

    settings, repo = config(tmp_path), repository(tmp_path, ZONE)
    assert publish(settings, repo, apply=True).exit_code == 0
    served = tmp_path / "served" / "example.test.zone"
    text = served.read_text()
    serial = int(re.search(r"SOA \S+ \S+ (\d+)", text).group(1))
    served.write_text(text.replace("192.0.2.1", "192.0.2.66").replace(f" {serial} ", f" {serial + 1} ", 1))
    report = plan_request(settings, repo)
    assert report.status == PROBLEMS and not request_outcomes(report).broken
    comment = request_comment(report, "f" * 40)
    problems = comment.split("### Problems", 1)[1].split("###", 1)[0]
    assert "`zone-changed-outside`" in problems and "ready to publish" in comment
