"""The login and client address of ``publisher.service.web.access`` under arbitrary headers
(hypothesis): never a 5xx, never served to a remote client without valid credentials."""

from __future__ import annotations

import base64
import tempfile
from dataclasses import replace
from pathlib import Path

from hypothesis import HealthCheck, given, settings, strategies as st

from publisher.commands.passwd import password_hash
from publisher.config import Config, StateConfig, WebConfig
from publisher.service.tokens import hash_token
from publisher.service.web import create_app
from publisher.service.web.access import ClientAddresses, parse_address

PASSWORD = "correct horse battery"
READ_TOKEN = "read-token-for-property-tests"
STATE = Path(tempfile.mkdtemp(prefix="access-properties-")) / "state.db"
APP = create_app(replace(Config(), state=StateConfig(STATE),
                         web=WebConfig(trusted_proxies=("127.0.0.1/32", "10.0.0.0/8"),
                                       users={"alice": password_hash(PASSWORD)},
                                       read_tokens=(hash_token(READ_TOKEN),))),
                 {"TESTING": True, "AUTH_FAILURE_LIMIT": 1000})
SETTINGS = settings(max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])

latin1 = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF, blacklist_characters="\x7f"), max_size=60)
authorizations = st.one_of(
    latin1,
    st.builds(lambda user, password: "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode(),
              st.sampled_from(["alice", "bob", "", "alice:"]), st.text(max_size=30)),
    st.builds(lambda token: "Bearer " + token, latin1),
    st.builds(lambda raw: "Basic " + base64.b64encode(raw).decode(), st.binary(max_size=40)))
addresses = st.one_of(st.ip_addresses().map(str), latin1)
forwarded = st.lists(addresses, max_size=4).map(", ".join)


@SETTINGS
@given(path=st.sampled_from(["/", "/api/runs", "/metrics", "/runs/1", "/api/jobs/1"]), authorization=authorizations,
       peer=st.sampled_from(["127.0.0.1", "10.1.2.3", "198.51.100.9", "::1"]), forwarded_for=forwarded)
def test_random_credentials_and_forwarded_headers_never_5xx_and_never_let_a_stranger_in(
        path, authorization, peer, forwarded_for):
    headers = {"Authorization": authorization}
    if forwarded_for:
        headers["X-Forwarded-For"] = forwarded_for
    response = APP.test_client().get(path, headers=headers, environ_base={"REMOTE_ADDR": peer})
    assert response.status_code < 500, response.get_data(as_text=True)
    local = peer in ("127.0.0.1", "::1") and not forwarded_for
    if not local:  # random credentials are never the right ones
        assert response.status_code in (401, 429)


@given(peer=addresses, forwarded_for=forwarded)
@settings(max_examples=300, deadline=None, database=None)
def test_the_client_address_is_the_peer_or_a_forwarded_hop(peer, forwarded_for):
    clients = ClientAddresses(["127.0.0.1/32", "10.0.0.0/8"])
    client = clients.client({"REMOTE_ADDR": peer, "HTTP_X_FORWARDED_FOR": forwarded_for})
    hops = {str(parse_address(hop)) for hop in forwarded_for.split(",") if parse_address(hop) is not None}
    if not clients.trusted(peer):
        assert client == (peer or "unknown")  # an untrusted peer never chooses its address
    else:
        assert client == peer or client in hops


# -- several repositories: a reader of one never learns anything of another ------------------------

REPOSITORIES_STATE = Path(tempfile.mkdtemp(prefix="access-repositories-")) / "state.db"


def _repositories_app():
    from publisher.config import load_config
    from tests.test_web_repositories import CONFIG, record_scenario

    app = create_app(replace(load_config(CONFIG), state=StateConfig(REPOSITORIES_STATE)),
                     {"TESTING": True, "AUTH_FAILURE_LIMIT": 100000})
    shared = app.extensions["publisher"]
    return app, record_scenario(shared.runs, shared.queue)


REPOSITORIES_APP, SCENARIO = _repositories_app()
THEIRS = ("customer-b", "customer_c")
ids = st.integers(min_value=0, max_value=12)
names = st.one_of(st.sampled_from(["customer-a", "customer-b", "customer_c", "customer-%", "customer_a", "CUSTOMER-A",
                                   "customer-a#request/3", "customer-b/zones", ""]), latin1)
reader_paths = st.one_of(
    st.builds("/runs/{}".format, ids), st.builds("/api/runs/{}".format, ids), st.builds("/api/jobs/{}".format, ids),
    st.builds("/repositories/{}".format, names), st.builds("/api/repositories/{}/zones".format, names),
    st.builds("/api/runs?repository={}".format, names), st.just("/"), st.just("/metrics"), st.just("/api/runs"),
    st.just("/api/repositories"))


@SETTINGS
@given(path=reader_paths)
def test_a_reader_of_one_repository_never_sees_anything_of_another(path):
    response = REPOSITORIES_APP.test_client().get(path, headers={"Authorization": "Bearer reader-of-customer-a"},
                                                  environ_base={"REMOTE_ADDR": "198.51.100.9"})
    assert response.status_code in (200, 302, 308, 400, 404), (path, response.status_code)
    text = response.get_data(as_text=True)
    assert not any(name in text for name in THEIRS), (path, text[:500])
    if response.status_code == 200 and path.startswith(("/runs/", "/api/runs/")):
        run_id = int(path.rsplit("/", 1)[1])
        assert run_id in SCENARIO.a_runs
    if response.status_code == 200 and path.startswith("/api/jobs/"):
        assert int(path.rsplit("/", 1)[1]) not in (SCENARIO.b_job, SCENARIO.c_job)


@SETTINGS
@given(path=reader_paths, offset=st.one_of(st.none(), latin1), limit=st.one_of(st.none(), latin1))
def test_the_operator_reading_any_repository_path_never_gets_a_5xx(path, offset, limit):
    extra = "&".join(f"{key}={value}" for key, value in (("offset", offset), ("limit", limit)) if value is not None)
    if extra:
        path += ("&" if "?" in path else "?") + extra
    response = REPOSITORIES_APP.test_client().get(path)  # loopback: the operator
    assert response.status_code in (200, 302, 308, 400, 404), (path, response.status_code)
    if response.status_code == 400:
        assert response.json["status"] == "bad request"
