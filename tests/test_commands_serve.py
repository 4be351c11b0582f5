"""`serve` and `token` pieces that need no running server: listen addresses, the redacting access
log, the development token, the printed configuration line."""

import datetime
import os
import re
from types import SimpleNamespace

import pytest

from publisher.commands import token as token_command
from publisher.commands.serve import RedactingLogger, development_token, gunicorn_options, parse_listen
from publisher.config import Config, StateConfig
from publisher.service.tokens import TokenSet


@pytest.mark.parametrize("listen,expected", [("127.0.0.1:8053", ("127.0.0.1", 8053)), (":9000", ("0.0.0.0", 9000)),
                                             ("[::1]:8053", ("::1", 8053))])
def test_parse_listen(listen, expected):
    assert parse_listen(listen) == expected


@pytest.mark.parametrize("listen", ["8053", "host:", "host:99999", "host:http"])
def test_parse_listen_refuses_nonsense(listen):
    with pytest.raises(ValueError):
        parse_listen(listen)


def test_access_log_atoms_hide_the_token():
    from gunicorn.config import Config as GunicornConfig

    logger = RedactingLogger(GunicornConfig())
    environ = {"REQUEST_METHOD": "POST", "RAW_URI": "/notifications/s3cr3t-token/push", "SERVER_PROTOCOL": "HTTP/1.1",
               "PATH_INFO": "/notifications/s3cr3t-token/push", "QUERY_STRING": "", "REMOTE_ADDR": "127.0.0.1"}
    response = SimpleNamespace(status="202 ACCEPTED", sent=10, headers=[])
    request = SimpleNamespace(headers=[("Referer", "https://x/hooks/s3cr3t-token")])
    atoms = logger.atoms(response, request, environ, datetime.timedelta(seconds=0.01))
    assert "s3cr3t-token" not in repr(atoms)
    assert atoms["r"] == "POST /notifications/[redacted]/push HTTP/1.1"
    assert gunicorn_options("127.0.0.1", 8053)["logger_class"] is RedactingLogger


def test_development_token_is_kept_private_and_reused(tmp_path):
    config = Config(state=StateConfig(tmp_path / "var" / "state.db"))
    first = development_token(config)
    assert development_token(config) == first
    path = tmp_path / "var" / "webhook-token"
    assert path.stat().st_mode & 0o777 == 0o600


def test_token_command_prints_a_matching_config_line(capsys):
    assert token_command.run(SimpleNamespace(bytes=32)) == 0
    out = capsys.readouterr().out
    token = re.search(r"/notifications/([^/\s]+)/push", out).group(1)
    digest = re.search(r'tokens = \["(sha256:[0-9a-f]{64})"\]', out).group(1)
    assert TokenSet([digest]).matches(token)


def test_rate_limited_answers_are_not_access_logged(capsys):
    from gunicorn.config import Config as GunicornConfig

    config = GunicornConfig()
    config.set("accesslog", "-")
    logger = RedactingLogger(config)
    environ = {"REQUEST_METHOD": "POST", "RAW_URI": "/hooks/x", "SERVER_PROTOCOL": "HTTP/1.1", "PATH_INFO": "/hooks/x",
               "QUERY_STRING": "", "REMOTE_ADDR": "192.0.2.1"}
    for status in ("429 TOO MANY REQUESTS", "403 FORBIDDEN"):
        logger.access(SimpleNamespace(status=status, sent=1, headers=[]), SimpleNamespace(headers=[]), environ,
                      datetime.timedelta(seconds=0.001))
    out = capsys.readouterr().out
    assert " 403 " in out and " 429 " not in out
