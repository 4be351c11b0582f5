"""The forge clients against servers that answer as each vendor documents (tests/forge_servers.py):
statuses and comments through the persisted outbox, in order, retried across an outage, never
duplicated, and the [forge] configuration."""

from __future__ import annotations

import json

import pytest

from publisher.config import ConfigError, ForgeConfig, load_config_text
from publisher.service.forge import FAILURE, MAX_DESCRIPTION, PENDING, SUCCESS, ForgeDelivery, ForgeStore
from publisher.service.notify import FORGE, Notifier, Outbox
from publisher.config import NotifyConfig
from tests.forge_servers import SERVERS, STATE_WORDS, TOKEN, BitbucketCloudServer

SHA_A = "a" * 40
SHA_B = "b" * 40
REPOSITORY = {"github": "example/dns", "gitea": "example/dns", "forgejo": "example/dns", "gitlab": "example/sub/dns",
              "bitbucket-cloud": "example/dns", "bitbucket-datacenter": "NET/dns"}


class Forge:
    """One vendor's server, and the publisher's outbox and notifier pointed at it."""

    def __init__(self, kind: str, location, server=None, **config) -> None:
        self.kind = kind
        self.server = (server or SERVERS[kind]()).start()
        self.config = ForgeConfig(type=kind, api_url=self.server.api_url, repository=REPOSITORY[kind], token=TOKEN,
                                  status_url="https://dns.example.org/", **config)
        self.outbox = Outbox(location)
        self.store = ForgeStore(location)
        self.notifier = Notifier(self.outbox, NotifyConfig(), initial_delay=0.0, max_delay=0.0,
                                 deliveries={FORGE: ForgeDelivery(self.config, self.store)})

    def close(self) -> None:
        self.server.stop()
        self.outbox.close()
        self.store.close()


@pytest.fixture
def forge_for(new_state_location):
    made = []

    def make(kind: str, **kwargs) -> Forge:
        made.append(Forge(kind, new_state_location(kind), **kwargs))
        return made[-1]

    yield make
    for forge in made:
        forge.close()


@pytest.mark.parametrize("kind", sorted(SERVERS))
def test_pending_then_success_arrive_as_the_vendor_documents(forge_for, kind):
    forge = forge_for(kind)
    forge.store.queue_status(forge.outbox, SHA_A, PENDING, "queued as job 1", context="zone-publisher", job_id=1)
    forge.store.queue_status(forge.outbox, SHA_A, SUCCESS, "1 zone changed", context="zone-publisher", run_id=9)
    assert forge.notifier.send_due() == 2
    pending, success, _ = STATE_WORDS[kind]
    assert [(s.commit, s.state, s.description, s.url, s.context) for s in forge.server.ok_statuses()] == [
        (SHA_A, pending, "queued as job 1", "https://dns.example.org/", "zone-publisher"),
        (SHA_A, success, "1 zone changed", "https://dns.example.org/runs/9", "zone-publisher")]
    assert forge.outbox.pending() == 0
    # The token travels in the vendor's header only, never in a URL.
    assert all(TOKEN not in r.path for r in forge.server.received)


def test_each_vendor_gets_its_own_path_and_headers(forge_for):
    paths = {}
    for kind in ("github", "gitlab", "gitea", "bitbucket-cloud", "bitbucket-datacenter"):
        forge = forge_for(kind)
        forge.store.queue_status(forge.outbox, SHA_A, FAILURE, "x", context="zp")
        forge.notifier.send_due()
        (request,) = forge.server.received
        paths[kind] = (request.method, request.path.removeprefix(forge.server.api_prefix))
        if kind == "github":
            assert request.headers["authorization"] == f"Bearer {TOKEN}"
            assert request.headers["x-github-api-version"] == "2022-11-28"
            assert request.body == {"state": "failure", "target_url": "https://dns.example.org/", "description": "x",
                                    "context": "zp"}
        if kind == "gitlab":
            assert request.headers["private-token"] == TOKEN
            assert request.body == {"state": "failed", "name": "zp", "target_url": "https://dns.example.org/",
                                    "description": "x"}
        if kind == "gitea":
            assert request.headers["authorization"] == f"token {TOKEN}"
        if kind.startswith("bitbucket"):
            assert request.body == {"key": "zp", "state": "FAILED", "url": "https://dns.example.org/", "name": "zp",
                                    "description": "x"}
    assert paths == {
        "github": ("POST", f"/repos/example/dns/statuses/{SHA_A}"),
        "gitlab": ("POST", f"/projects/example%2Fsub%2Fdns/statuses/{SHA_A}"),
        "gitea": ("POST", f"/repos/example/dns/statuses/{SHA_A}"),
        "bitbucket-cloud": ("POST", f"/2.0/repositories/example/dns/commit/{SHA_A}/statuses/build"),
        "bitbucket-datacenter": ("POST", f"/rest/api/latest/projects/NET/repos/dns/commits/{SHA_A}/builds"),
    }


def test_bitbucket_cloud_app_password_is_http_basic_with_the_user_name(forge_for):
    forge = forge_for("bitbucket-cloud", server=BitbucketCloudServer(username="deploy-bot"), username="deploy-bot")
    forge.store.queue_status(forge.outbox, SHA_A, SUCCESS, "ok", context="zp")
    assert forge.notifier.send_due() == 1
    assert forge.server.received[0].headers["authorization"].startswith("Basic ")


@pytest.mark.parametrize("kind", sorted(SERVERS))
def test_one_comment_created_then_edited_in_place(forge_for, kind):
    forge = forge_for(kind)
    key = f"{kind}:{REPOSITORY[kind]}#5"
    forge.store.queue_comment(forge.outbox, key, 5, "first plan")
    assert forge.notifier.send_due() == 1
    forge.store.queue_comment(forge.outbox, key, 5, "second plan")
    forge.store.queue_comment(forge.outbox, key, 5, "third plan")
    assert forge.notifier.send_due() == 2
    (comment,) = forge.server.comments.values()
    assert comment == {"number": 5, "body": "third plan", "version": 2, "edits": 2}
    methods = [r.method for r in forge.server.received]
    assert methods == ["POST", {"github": "PATCH", "gitea": "PATCH", "forgejo": "PATCH"}.get(kind, "PUT"),
                       {"github": "PATCH", "gitea": "PATCH", "forgejo": "PATCH"}.get(kind, "PUT")]


def test_a_comment_deleted_on_the_forge_is_posted_again(forge_for):
    forge = forge_for("github")
    forge.store.queue_comment(forge.outbox, "k", 5, "first")
    forge.notifier.send_due()
    forge.server.comments.clear()  # someone deleted it
    forge.store.queue_comment(forge.outbox, "k", 5, "second")
    assert forge.notifier.send_due() == 1
    assert [c["body"] for c in forge.server.comments.values()] == ["second"]
    assert forge.store.comment("k")[0] == next(iter(forge.server.comments))


@pytest.mark.parametrize("outage", ["503", "reset"])
def test_forge_down_then_back_statuses_arrive_in_order(forge_for, outage):
    forge = forge_for("github")
    forge.server.down = outage
    forge.store.queue_status(forge.outbox, SHA_A, PENDING, "queued", context="zp", job_id=1)
    forge.store.queue_status(forge.outbox, SHA_A, SUCCESS, "done", context="zp", run_id=1)
    forge.store.queue_status(forge.outbox, SHA_B, PENDING, "queued", context="zp", job_id=2)
    for _ in range(3):
        assert forge.notifier.send_due() == 0
    # Only the oldest was tried: the later ones waited behind it instead of overtaking it.
    assert {r.path for r in forge.server.received} == {f"/api/v3/repos/example/dns/statuses/{SHA_A}"}
    assert all(json.loads(json.dumps(r.body))["state"] == "pending" for r in forge.server.received)
    assert forge.outbox.pending() == 3
    forge.server.down = None
    assert forge.notifier.send_due() == 3
    assert [(s.commit, s.state) for s in forge.server.ok_statuses()] == [
        (SHA_A, "pending"), (SHA_A, "success"), (SHA_B, "pending")]


def test_a_status_waiting_for_its_retry_holds_back_the_later_ones(forge_for, tmp_path):
    forge = forge_for("github")
    forge.notifier.initial_delay = forge.notifier.max_delay = 3600.0  # the retry is an hour away
    forge.server.down = "503"
    forge.store.queue_status(forge.outbox, SHA_A, PENDING, "queued", context="zp")
    forge.notifier.send_due()
    forge.server.down = None
    forge.store.queue_status(forge.outbox, SHA_A, SUCCESS, "done", context="zp")
    assert forge.notifier.send_due() == 0  # "success" is due, but "pending" is not yet: wait
    assert forge.server.ok_statuses() == []


def test_mail_is_not_held_back_by_a_forge_outage(forge_for, tmp_path):
    forge = forge_for("github")
    forge.notifier.deliveries["mail"] = lambda item: (tmp_path / "mail-sent").write_bytes(item.payload)
    forge.server.down = "503"
    forge.store.queue_status(forge.outbox, SHA_A, PENDING, "queued", context="zp")
    forge.outbox.add("mail", ("ops@example.org",), b"Subject: x\n\nbody")
    assert forge.notifier.send_due() == 1
    assert (tmp_path / "mail-sent").read_bytes() == b"Subject: x\n\nbody"


def test_a_refusal_no_retry_can_fix_is_dropped_and_does_not_block_the_rest(forge_for):
    forge = forge_for("github")
    forge.server.down = "422"
    forge.store.queue_status(forge.outbox, SHA_A, PENDING, "queued", context="zp")
    assert forge.notifier.send_due() == 0
    forge.server.down = None
    forge.store.queue_status(forge.outbox, SHA_B, SUCCESS, "done", context="zp")
    assert forge.notifier.send_due() == 1
    assert [(s.commit, s.state) for s in forge.server.ok_statuses()] == [(SHA_B, "success")]
    dropped = [item for item in forge.outbox.items() if item["last_error"].startswith("dropped:")]
    assert len(dropped) == 1 and "HTTP 422" in dropped[0]["last_error"] and TOKEN not in dropped[0]["last_error"]


def test_a_wrong_token_is_retried_not_dropped(forge_for):
    forge = forge_for("gitlab")
    forge.server.token = "another"
    forge.store.queue_status(forge.outbox, SHA_A, PENDING, "queued", context="zp")
    assert forge.notifier.send_due() == 0
    assert forge.outbox.pending() == 1
    assert "HTTP 401" in forge.outbox.items()[0]["last_error"]
    assert TOKEN not in forge.outbox.items()[0]["last_error"]
    forge.server.token = TOKEN
    assert forge.notifier.send_due() == 1


def test_descriptions_are_one_short_line_without_credentials(forge_for):
    forge = forge_for("github")
    forge.store.queue_status(forge.outbox, SHA_A, FAILURE,
                             "first error cannot fetch https://deploy:hunter2@git.example/dns.git\n" + "x" * 300,
                             context="zp")
    assert forge.notifier.send_due() == 1  # GitHub refuses descriptions over 140 characters
    (status,) = forge.server.ok_statuses()
    assert len(status.description) <= MAX_DESCRIPTION and "\n" not in status.description
    assert "hunter2" not in status.description and "[redacted]" in status.description


# --- configuration ------------------------------------------------------------------------------

def test_forge_table_with_env_token_and_defaults(tmp_path, monkeypatch):
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_secret")
    config = load_config_text('[forge]\ntype = "github"\ntoken = "env:GITHUB_TOKEN"\nrepository = "example/dns"\n',
                              base=tmp_path)
    assert config.forge.api_url == "https://api.github.com" and config.forge.token == "ghp_secret"
    assert config.forge.plan_forks is False and config.forge.context == "zone-publisher"
    assert "ghp_secret" not in repr(config.forge)


def test_forge_token_from_a_file(tmp_path):
    (tmp_path / "token").write_text("glpat-secret\n")
    config = load_config_text('[forge]\ntype = "gitlab"\ntoken = "file:token"\nrepository = "grp/sub/dns"\n'
                              'api_url = "https://gitlab.example/api/v4/"\nplan_forks = true\n', base=tmp_path)
    assert config.forge.token == "glpat-secret" and config.forge.api_url == "https://gitlab.example/api/v4"
    assert config.forge.plan_forks is True


@pytest.mark.parametrize("table, message", [
    ('type = "gitea"\ntoken = "t"\nrepository = "a/b"', "api_url is required for type gitea"),
    ('type = "sourcehut"\ntoken = "t"\nrepository = "a/b"', "type must be one of"),
    ('type = "github"\nrepository = "a/b"', "token is required"),
    ('type = "github"\ntoken = "t"\nrepository = "dns"', 'repository must be "owner/name"'),
    ('type = "github"\ntoken = "env:NOT_SET_ANYWHERE"\nrepository = "a/b"', "NOT_SET_ANYWHERE is not set"),
    ('type = "github"\ntoken = "t"\nrepository = "a/b"\nplan_fork = true', "unknown key 'plan_fork'"),
])
def test_forge_table_errors_name_the_key_never_the_token(tmp_path, table, message):
    with pytest.raises(ConfigError) as error:
        load_config_text("[forge]\n" + table + "\n", base=tmp_path)
    assert message in str(error.value)


def test_the_example_configuration_documents_the_forge_table(monkeypatch):
    from pathlib import Path
    example = Path(__file__).parent.parent / "examples" / "config.toml"
    for name in ("PDNS_API_KEY", "SMTP_PASSWORD", "WEBHOOK_SECRET", "NOTIFY_WEBHOOK_URL"):
        monkeypatch.setenv(name, "x")
    text = example.read_text().replace('"file:/etc/zone-publisher/', '"env:WEBHOOK_SECRET" #')
    forge = load_config_text(text, base=example.parent).forge
    assert (forge.type, forge.repository, forge.plan_forks, forge.token) == ("github", "dns/zones", False, "x")
