"""`serve` and `token` pieces that need no running server: listen addresses, TLS options, the
redacting access log, the development token, the printed configuration line, and the rule that
only gunicorn's public interfaces are used."""

import ast
import datetime
import os
import re
from pathlib import Path
from types import SimpleNamespace

import pytest

from publisher.commands import token as token_command
from publisher.cli import build_parser
from publisher.commands.serve import (RedactingLogger, Tls, clear_text_warning, development_token, gunicorn_options,
                                      load_tls, parse_listen)
from publisher.config import Config, StateConfig
from publisher.service.tokens import TokenSet
from tests.mailserver import self_signed_certificate

ROOT = Path(__file__).resolve().parent.parent


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


# -- only gunicorn's public interfaces ---------------------------------------------------------

PUBLIC_GUNICORN = {"gunicorn.app.base", "gunicorn.glogging", "gunicorn.config"}


def test_only_public_gunicorn_modules_are_imported_anywhere():
    """The stock worker through BaseApplication: no module imports gunicorn's workers, HTTP parser or
    util (which made every gunicorn release, security fixes included, a re-check of its internals)."""
    imported = {}
    for path in [*(ROOT / "publisher").rglob("*.py"), *(ROOT / "bench").glob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for name in names:
                if name.split(".")[0] == "gunicorn":
                    imported.setdefault(name, set()).add(str(path.relative_to(ROOT)))
    assert "gunicorn.app.base" in imported  # serve is built on it
    assert set(imported) <= PUBLIC_GUNICORN, {name: where for name, where in imported.items()
                                              if name not in PUBLIC_GUNICORN}
    assert not (ROOT / "publisher" / "service" / "web" / "server.py").exists()


def test_serve_runs_the_stock_threaded_worker():
    options = gunicorn_options("127.0.0.1", 8053)
    assert options["worker_class"] == "gthread"
    assert "certfile" not in options and "keyfile" not in options


# -- direct HTTPS ------------------------------------------------------------------------------

def test_certificate_and_key_go_to_gunicorn(tmp_path):
    certificate, key = self_signed_certificate(tmp_path)
    args = build_parser().parse_args(["serve", "--listen", "0.0.0.0:8443", "--certificate", str(certificate),
                                      "--key", str(key)])
    tls = load_tls(args.certificate, args.key)
    assert tls == Tls(certificate.resolve(), key.resolve())
    options = gunicorn_options("0.0.0.0", 8443, tls)
    assert (options["certfile"], options["keyfile"]) == (str(certificate.resolve()), str(key.resolve()))
    assert load_tls(None, None) is None


def test_bad_tls_options_are_clear_errors(tmp_path):
    certificate, key = self_signed_certificate(tmp_path)
    other = tmp_path / "other"
    other.mkdir()
    _, other_key = self_signed_certificate(other)
    with pytest.raises(ValueError, match="go together"):
        load_tls(str(certificate), None)
    with pytest.raises(ValueError, match="cannot read"):
        load_tls(str(tmp_path / "missing.pem"), str(key))
    with pytest.raises(ValueError, match="not a matching PEM certificate and key"):
        load_tls(str(certificate), str(other_key))
    with pytest.raises(ValueError, match="not a matching PEM"):
        load_tls(str(key), str(key))  # a key is not a certificate


def test_serve_with_a_bad_key_exits_2_with_the_reason(tmp_path, capsys):
    from publisher.commands import serve
    certificate, _ = self_signed_certificate(tmp_path)
    args = build_parser().parse_args(["serve", "--certificate", str(certificate), "--key", str(tmp_path / "nope.pem")])
    assert serve.run(args) == 2
    error = capsys.readouterr().err
    assert "cannot read the certificate or key" in error and "Traceback" not in error


@pytest.mark.parametrize("host,warns", [("127.0.0.1", False), ("::1", False), ("localhost", False),
                                        ("127.0.0.53", False), ("0.0.0.0", True), ("::", True),
                                        ("192.0.2.10", True), ("publisher.example", True)])
def test_plain_http_off_loopback_warns(tmp_path, host, warns):
    warning = clear_text_warning(host, 8053, None)
    assert bool(warning) == warns
    if warns:
        assert "HTTPS" in warning and "127.0.0.1" in warning
    certificate, key = self_signed_certificate(tmp_path)
    assert clear_text_warning(host, 8053, load_tls(str(certificate), str(key))) is None
