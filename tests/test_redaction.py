"""Nothing secret leaves the process: source URL credentials (publisher.redaction) in every place a
URL is shown, stored or mailed, and webhook tokens in log lines (publisher.service.web.redact)."""

import logging

import pytest

from publisher.config import SourceConfig, load_config_text
from publisher.redaction import redact
from publisher.service.notify import compose_mail, run_summary, run_text
from publisher.outcome import FAILED
from publisher.service.runs import RunRecord
from publisher.service.web import RedactingFilter, redact as redact_log_line

URL = "https://deploy:ghp_s3cr3t@git.example.org/example/dns.git"


@pytest.mark.parametrize("text,expected", [
    (URL, "https://[redacted]@git.example.org/example/dns.git"),
    ("https://ghp_token@github.com/a/b.git", "https://[redacted]@github.com/a/b.git"),
    ("fatal: unable to access 'http://u:p@127.0.0.1:9/x/': refused", "fatal: unable to access 'http://[redacted]@127.0.0.1:9/x/': refused"),
    ("ssh://git@host:7999/net/dns.git", "ssh://[redacted]@host:7999/net/dns.git"),
    ("git@gitlab.example.org:infra/dns.git", "git@gitlab.example.org:infra/dns.git"),  # no password possible
    ("https://git.example.org/example/dns.git", "https://git.example.org/example/dns.git"),
    ("/srv/git/zones.git and file:///srv/git/zones.git", "/srv/git/zones.git and file:///srv/git/zones.git"),
    ("two: https://a:b@x/ https://c:d@y/", "two: https://[redacted]@x/ https://[redacted]@y/"),
])
def test_redact_hides_the_credentials_of_every_url(text, expected):
    assert redact(text) == expected


def test_the_queue_key_and_display_url_carry_no_credentials():
    source = SourceConfig(url=URL, branch="main")
    assert source.key == "https://[redacted]@git.example.org/example/dns.git#main"
    assert source.display_url == "https://[redacted]@git.example.org/example/dns.git"
    assert "ghp_s3cr3t" not in repr(source)


def test_mail_subject_and_body_carry_no_credentials():
    from publisher.config import NotifyConfig

    run = RunRecord(URL + "#main", "push", FAILED, 1.0, 2.0, id=7,
                    error=f"cannot fetch {URL} branch main: fatal: Authentication failed for '{URL}'")
    message = compose_mail(run, NotifyConfig(to=("ops@example.org",)))
    assert "ghp_s3cr3t" not in run_summary(run) and "ghp_s3cr3t" not in run_text(run)
    assert "ghp_s3cr3t" not in message.as_string() and "[redacted]@git.example.org" in message["Subject"]


@pytest.mark.parametrize("reference", ["env:ZONE_SOURCE_URL", "file:source-url"])
def test_source_url_may_come_from_the_environment_or_a_file(tmp_path, monkeypatch, reference):
    monkeypatch.setenv("ZONE_SOURCE_URL", URL)
    (tmp_path / "source-url").write_text(URL + "\n")
    config = load_config_text(f'[source]\nurl = "{reference}"\n', base=tmp_path)
    assert config.source.url == URL and "ghp_s3cr3t" not in config.source.display_url


def test_a_missing_source_url_secret_is_named_without_a_value(tmp_path):
    from publisher.config import ConfigError

    with pytest.raises(ConfigError, match="url: environment variable NOT_SET_ANYWHERE is not set"):
        load_config_text('[source]\nurl = "env:NOT_SET_ANYWHERE"\n', base=tmp_path)


TOKEN = "tok3n-never-logged"


@pytest.mark.parametrize("line", [
    f"POST /notifications/{TOKEN}/push HTTP/1.1",
    f"GET /notifications/{TOKEN}/push",  # no HTTP version: gunicorn's error log quotes it
    f"Invalid HTTP request line: 'GET /hooks/{TOKEN}'",
    f"GET /notifications/../{TOKEN}/push HTTP/1.1",
    f"GET /notifications/%2e%2e/{TOKEN}/push HTTP/1.1",
    f"GET /notifications%2F{TOKEN}%2Fpush HTTP/1.1",
    f"GET /NOTIFICATIONS/{TOKEN}/push HTTP/1.1",
    f"GET /api/runs?token={TOKEN} HTTP/1.1",
    f"GET /?x=1&token={TOKEN} HTTP/1.1",
    f"GET /hooks/{TOKEN[:5]}%{TOKEN[5:7].encode().hex()}{TOKEN[7:]} HTTP/1.1",
])
def test_log_lines_never_show_the_token(line):
    assert TOKEN not in redact_log_line(line)
    assert "[redacted]" in redact_log_line(line)


def test_the_redacting_filter_applies_to_formatted_records():
    record = logging.LogRecord("gunicorn.error", logging.WARNING, __file__, 1,
                               "Invalid request from ip=%s: %s", ("127.0.0.1", f"'GET /hooks/{TOKEN}'"), None)
    assert RedactingFilter().filter(record)
    assert TOKEN not in record.getMessage() and "127.0.0.1" in record.getMessage()


def test_a_file_url_is_a_repository_not_a_secret_reference(tmp_path):
    config = load_config_text('[source]\nurl = "file:///srv/git/zones.git"\n', base=tmp_path)
    assert config.source.url == "file:///srv/git/zones.git"
