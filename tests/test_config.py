"""Configuration loading: the issue's TOML shape, secrets by reference, paths, unknown keys."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from publisher.config import Config, ConfigError, load_config, load_config_text

DATA = Path(__file__).parent / "data" / "config"


@pytest.fixture
def env(monkeypatch):
    monkeypatch.setenv("TEST_PDNS_KEY", "pdns-api-key-value")
    monkeypatch.setenv("TEST_SMTP_PASSWORD", "smtp-password-value")


def load(text: str, tmp_path: Path) -> Config:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return load_config(path)


def test_full_example_loads_every_section(env):
    config = load_config(DATA / "full.toml")
    assert config.source.url == "https://git.example.org/dns/zones.git"
    assert config.source.branch == "production" and config.source.path is None
    assert config.source.ssh_key == DATA / "keys" / "deploy"
    assert config.defaults.ttl == 1800
    assert config.defaults.nameservers == ("ns1.example.net.", "ns2.example.net.")
    assert config.defaults.hostmaster == "dns-admin.example.net."
    assert (config.defaults.refresh, config.defaults.retry, config.defaults.expire, config.defaults.minimum) == (
        7200, 900, 604800, 60)
    assert config.defaults.resolver == "127.0.0.1:5353"
    assert config.defaults.thresholds.update == 0.5 and config.defaults.thresholds.min_records == 20
    primary, pdns = config.providers
    assert (primary.name, primary.type, primary.zones) == ("primary", "rfc2136", ("*",))
    assert primary.options["port"] == 5300
    assert primary.options["tsig_keyfile"] == str(DATA / "keys" / "publisher.key")
    assert pdns.options["api_key"] == "pdns-api-key-value"
    assert config.state.path == DATA / "state" / "publisher.db"
    assert config.webhook.secret == "hmac-secret-value"
    assert config.webhook.tokens[0].startswith("sha256:")
    assert config.notify.smtp_password == "smtp-password-value"
    assert config.notify.from_ == "dns@example.net" and config.notify.to == ("ops@example.net",)
    assert config.notify.smtp_security == "starttls" and config.notify.notify_author
    assert config.poll.interval == 300
    assert config.warnings == ()


def test_per_zone_overrides(env):
    config = load_config(DATA / "full.toml")
    assert config.ttl_for("example.com.") == 600
    assert config.ttl_for("other.net.") == 1800
    assert [p.name for p in config.providers_for("example.com.")] == ["primary"]
    assert [p.name for p in config.providers_for("www.example.org.")] == ["primary", "pdns"]
    assert [p.name for p in config.providers_for("example.net.")] == ["primary"]
    # A partial threshold override keeps the other global limits.
    assert config.thresholds_for("example.com.").update == 0.9
    assert config.thresholds_for("example.com.").delete == 0.25
    assert config.thresholds_for("example.com.").min_records == 20
    assert config.allows_deletion("lab.test.") and not config.allows_deletion("example.com.")


def test_secrets_never_in_repr(env):
    text = repr(load_config(DATA / "full.toml"))
    for secret in ("pdns-api-key-value", "smtp-password-value", "hmac-secret-value"):
        assert secret not in text


def test_missing_environment_variable_names_the_key_not_a_value(tmp_path, monkeypatch):
    monkeypatch.delenv("NOT_SET_ANYWHERE", raising=False)
    with pytest.raises(ConfigError) as error:
        load('[[provider]]\nname = "p"\ntype = "powerdns"\napi_url = "http://x"\napi_key = "env:NOT_SET_ANYWHERE"\n',
             tmp_path)
    message = str(error.value)
    assert "api_key" in message and "NOT_SET_ANYWHERE" in message and "'p'" in message


def test_missing_secret_file(tmp_path):
    with pytest.raises(ConfigError, match=r"secret.*cannot read secret file"):
        load('[webhook]\nsecret = "file:nope/secret"\n', tmp_path)


def test_unknown_keys_are_reported(tmp_path):
    with pytest.raises(ConfigError, match=r"\[defaults\].*'tll'"):
        load("[defaults]\ntll = 300\n", tmp_path)
    with pytest.raises(ConfigError, match=r"unknown key 'sauce'"):
        load("[sauce]\npath = 'x'\n", tmp_path)
    with pytest.raises(ConfigError, match=r"zone 'example.com'.*'alow_deletion'"):
        load('[zones."example.com"]\nalow_deletion = true\n', tmp_path)
    config = load('[[provider]]\nname = "z"\ntype = "zonefile"\ndirectory = "out"\nreload_comand = "x"\n', tmp_path)
    assert len(config.warnings) == 1 and "reload_comand" in config.warnings[0]


def test_type_errors_and_invalid_values(tmp_path):
    with pytest.raises(ConfigError, match="ttl must be int"):
        load('[defaults]\nttl = "1h"\n', tmp_path)
    with pytest.raises(ConfigError, match="type must be one of"):
        load('[[provider]]\nname = "p"\ntype = "route53"\n', tmp_path)
    with pytest.raises(ConfigError, match="missing server"):
        load('[[provider]]\nname = "p"\ntype = "rfc2136"\n', tmp_path)
    with pytest.raises(ConfigError, match="duplicate provider"):
        load('[[provider]]\nname = "p"\ntype = "zonefile"\ndirectory = "a"\n'
             '[[provider]]\nname = "p"\ntype = "zonefile"\ndirectory = "b"\n', tmp_path)
    with pytest.raises(ConfigError, match="no provider named 'ghost'"):
        load('[zones."example.com"]\nproviders = ["ghost"]\n', tmp_path)
    with pytest.raises(ConfigError, match="sha256"):
        load('[webhook]\ntokens = ["plaintext-token"]\n', tmp_path)
    with pytest.raises(ConfigError, match="invalid TOML"):
        load("[defaults\n", tmp_path)
    with pytest.raises(ConfigError, match="between 0 and 1"):
        load("[defaults]\nupdate_threshold = 30\n", tmp_path)


def test_relative_paths_resolve_against_the_config_directory(tmp_path):
    config = load('[source]\npath = "repo"\n[state]\npath = "db/state.db"\n'
                  '[[provider]]\nname = "z"\ntype = "zonefile"\ndirectory = "/abs/zones"\n', tmp_path)
    assert config.source.path == tmp_path / "repo"
    assert config.state.path == tmp_path / "db" / "state.db"
    assert config.providers[0].options["directory"] == "/abs/zones"


def test_embedded_default(tmp_path):
    config = Config.default(tmp_path)
    assert config.source.path == tmp_path / "zones"
    assert config.state.path == tmp_path / "var" / "state.db"
    assert config.notify.outbox == tmp_path / "var" / "outbox"
    (provider,) = config.providers
    assert provider.type == "zonefile" and provider.options["directory"] == str(tmp_path / "var" / "zones")
    assert config.defaults.nameservers


def test_example_config_documents_a_loadable_shape(monkeypatch):
    example = Path(__file__).parent.parent / "examples" / "config.toml"
    for name in ("PDNS_API_KEY", "SMTP_PASSWORD", "WEBHOOK_SECRET", "NOTIFY_WEBHOOK_URL"):
        monkeypatch.setenv(name, "x")
    text = example.read_text()
    assert "env:" in text
    config = load_config_text(text.replace('"file:/etc/zone-publisher/', '"env:WEBHOOK_SECRET" #'),
                              base=example.parent)
    assert {p.type for p in config.providers} == {"rfc2136", "powerdns", "zonefile"}
    assert config.warnings == ()


def test_jobs_fetch_retention_and_health_sections(tmp_path):
    import re

    from publisher.config import FetchConfig, HealthConfig, JobsConfig, RetentionConfig

    config = load_config_text("[jobs]\nlease = 5\nmax_attempts = 3\n[fetch]\nmax_files = 10\n"
                              "[retention]\nkeep_days = 0.5\n[health]\nqueue_wait = 30\n", base=tmp_path)
    assert config.jobs == JobsConfig(lease=5.0, max_attempts=3)
    assert config.fetch == FetchConfig(max_files=10)
    assert config.retention == RetentionConfig(keep_days=0.5)
    assert config.health == HealthConfig(queue_wait=30.0)
    assert JobsConfig(retry_delay=30, retry_max_delay=100).retry_after(1) == 30
    assert [JobsConfig(retry_delay=30, retry_max_delay=100).retry_after(n) for n in (2, 3, 4)] == [60, 100, 100]
    for text, message in (("[jobs]\nlease = 0", "lease must be a positive number"),
                          ("[retention]\nkeep_newest = 1.5", "keep_newest must be int, not float"),
                          ("[fetch]\nmax_size = true", "max_size must be int, not bool"),
                          ("[health]\nmail = 1", "unknown key 'mail'")):
        with pytest.raises(ConfigError, match=re.escape(message)):
            load_config_text(text, base=tmp_path)


def test_sandbox_limits_section(tmp_path):
    config = load_config_text("[sandbox]\ncpu_seconds = 2.5\nmemory_mb = 256\nmax_records = 5000\nwall_seconds = 20\n",
                              base=tmp_path)
    assert (config.sandbox.cpu_seconds, config.sandbox.memory_mb, config.sandbox.max_records,
            config.sandbox.wall_seconds) == (2.5, 256, 5000, 20)
    assert load_config_text("", base=tmp_path).sandbox.cpu_seconds == 10.0
    for bad in ("cpu_seconds = 0", "memory_mb = -1", "max_records = true", "cpu_seconds = 30\nwall_seconds = 5",
                "cpu = 3"):
        with pytest.raises(ConfigError, match=r"\[sandbox\]"):
            load_config_text(f"[sandbox]\n{bad}\n", base=tmp_path)


# -- [web] and [webhook] repository ---------------------------------------------------------------

def test_web_table_trusted_proxies_users_and_read_tokens(tmp_path, monkeypatch):
    from publisher.commands.passwd import password_hash

    monkeypatch.setenv("ALICE_HASH", password_hash("correct horse battery"))
    config = load_config_text(f"""
[webhook]
repository = "example/dns"
[web]
trusted_proxies = ["127.0.0.1", "10.0.0.0/8", "::1/128"]
read_tokens = ["sha256:{'a' * 64}"]
[web.users]
alice = "env:ALICE_HASH"
""", base=tmp_path)
    assert config.webhook.repository == "example/dns"
    assert config.web.trusted_proxies == ("127.0.0.1", "10.0.0.0/8", "::1/128")
    assert config.web.read_tokens == ("sha256:" + "a" * 64,)
    assert config.web.users["alice"].startswith("scrypt:")
    assert "scrypt" not in repr(config.web)  # hashes stay out of reprs and tracebacks


@pytest.mark.parametrize("text,message", [
    ('[web]\ntrusted_proxies = ["10.0.0.0/33"]', "is not an address or CIDR network"),
    ('[web]\nread_tokens = ["a-plain-token"]', "zone-publisher token --read"),
    ('[web.users]\nalice = "a plain password"', "alice: not a password hash (run `zone-publisher passwd alice`)"),
    ('[web]\nusers = "alice"', "must be a table"),
    ('[web]\nlogin = true', "unknown key 'login'"),
    ('[webhook]\nrepository = "dns"', 'repository must be "owner/name"'),
])
def test_web_table_mistakes_are_named(tmp_path, text, message):
    with pytest.raises(ConfigError, match=re.escape(message)) as error:
        load_config_text(text, base=tmp_path)
    assert "a plain password" not in str(error.value)


# -- provider options: one schema per provider type (OPTIONS in its module) ------------------------


def test_provider_options_are_checked_against_the_types_schema(tmp_path):
    with pytest.raises(ConfigError, match=r"'b'.*port must be int, not str"):
        load('[[provider]]\nname = "b"\ntype = "rfc2136"\nserver = "127.0.0.1"\nport = "53"\n', tmp_path)
    with pytest.raises(ConfigError, match="set either tsig_keyfile or tsig_secret, not both"):
        load('[[provider]]\nname = "b"\ntype = "rfc2136"\nserver = "127.0.0.1"\ntsig_keyfile = "k"\n'
             'tsig_secret = "c2VjcmV0"\n', tmp_path)
    with pytest.raises(ConfigError) as raised:  # a wrongly typed secret is named, its value is not shown
        load('[[provider]]\nname = "p"\ntype = "powerdns"\napi_url = "http://x"\napi_key = ["secret-in-list"]\n',
             tmp_path)
    assert "api_key must be str" in str(raised.value) and "secret-in-list" not in str(raised.value)
    config = load('[[provider]]\nname = "p"\ntype = "powerdns"\napi_url = "http://x"\napi_key = "k"\ntimeout = 5\n',
                  tmp_path)
    assert config.providers[0].options["timeout"] == 5.0  # an int is a float


def test_every_octodns_parameter_is_a_secret_resolved_and_masked(tmp_path, monkeypatch):
    pytest.importorskip("octodns_route53")
    monkeypatch.setenv("TEST_R53_KEY", "AKIA-secret-key-id")
    (tmp_path / "r53-secret").write_text("very-secret-access-key\n")
    config = load('[[provider]]\nname = "r53"\ntype = "octodns"\nclass = "octodns_route53.Route53Provider"\n'
                  'access_key_id = "env:TEST_R53_KEY"\nsecret_access_key = "file:r53-secret"\n'
                  'delegation_set_id = "plain-value"\n', tmp_path)
    (provider,) = config.providers
    assert provider.options["access_key_id"] == "AKIA-secret-key-id"
    assert provider.options["secret_access_key"] == "very-secret-access-key"
    assert config.warnings == ()  # keys of the class are not "unknown"
    shown = repr(config)
    for value in ("AKIA-secret-key-id", "very-secret-access-key", "plain-value"):
        assert value not in shown
    assert "octodns_route53.Route53Provider" in shown  # the class is not a secret


def test_native_provider_secrets_still_resolve_only_where_declared(tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_DIRECTORY_NAME", "never-used")
    config = load('[[provider]]\nname = "z"\ntype = "zonefile"\ndirectory = "env:TEST_DIRECTORY_NAME"\n', tmp_path)
    assert config.providers[0].options["directory"] == str(tmp_path / "env:TEST_DIRECTORY_NAME")  # not a secret key


# -- several repositories ([[repository]]) --------------------------------------------------------


def test_repositories_each_get_a_view_over_the_shared_sections():
    config = load_config(DATA / "repositories.toml")
    a, b = config.views()
    assert (a.name, a.key, b.name, b.key) == ("customer-a", "customer-a", "customer-b", "customer-b")
    assert config.jobs.workers == 3
    # Own source, token, secret and recipients; SMTP and sender inherited from the instance.
    assert a.source.url == "https://git.host.example/customer-a/dns.git" and a.source.branch == "live"
    assert a.source.cache == DATA / "var/cache/repositories/customer-a"
    assert b.source.path == DATA / "customer-b"
    assert a.webhook.tokens == ("sha256:" + "a" * 64,) and a.webhook.secret == "secret-of-a"
    assert b.webhook.tokens == ("sha256:" + "b" * 64,) and b.webhook.secret is None
    assert a.notify.to == ("dns@a.example",) and a.notify.smtp_host == "127.0.0.1"
    assert b.notify.to == ("operator@host.example",) and b.notify.from_ == "dns@host.example"
    # Defaults key by key: a's own delete threshold, the shared name servers.
    assert a.defaults.thresholds.delete == 0.9 and b.defaults.thresholds.delete == 0.3
    assert a.defaults.nameservers == b.defaults.nameservers == ("ns1.host.example.", "ns2.host.example.")
    # Shared providers narrowed by `providers`, plus a repository's own.
    assert [p.name for p in a.providers] == ["bind"]
    assert [p.name for p in b.providers] == ["bind", "spare", "b-only"]
    # Zone settings: the shared pattern, and b's own exact name winning over it.
    assert a.ttl_for("x.example.") == 600 and b.ttl_for("b.example.") == 60 and b.ttl_for("c.example.") == 600
    # Ownership patterns and read tokens.
    assert a.may_own("a.example.") and a.may_own("www.a.example") and not a.may_own("b.example.")
    assert b.owns == ("*",) and b.may_own("anything.test.")
    assert a.read_tokens == ("sha256:" + "1" * 64,) and b.read_tokens == ()
    assert config.view("customer-b") is b and config.view("nope") is None
    # Instance-wide sections are the same object for every view.
    assert a.state == b.state == config.state


def test_one_repository_file_is_its_own_only_view(tmp_path):
    config = load('[source]\nurl = "https://git.example.org/dns.git"\nbranch = "prod"\n', tmp_path)
    assert config.views() == (config,) and config.name == ""
    assert config.key == "https://git.example.org/dns.git#prod"  # what earlier versions filed runs under
    assert config.view(config.key) is config


REPOSITORY = """
[[repository]]
name = "{name}"
[repository.source]
path = "{name}"
[repository.webhook]
tokens = ["sha256:{token}"]
"""


@pytest.mark.parametrize("text, message", [
    ('[source]\npath = "x"\n' + REPOSITORY.format(name="a", token="a" * 64),
     r"\[source\] belongs inside each repository"),
    ('[webhook]\ntokens = []\n' + REPOSITORY.format(name="a", token="a" * 64),
     r"\[webhook\] belongs inside each repository"),
    (REPOSITORY.format(name="a", token="a" * 64) + REPOSITORY.format(name="a", token="b" * 64),
     "duplicate repository name"),
    (REPOSITORY.format(name="a", token="a" * 64) + REPOSITORY.format(name="b", token="a" * 64),
     "a token of repository 'a' is used again"),
    (REPOSITORY.format(name="../etc", token="a" * 64), "name is required"),
    ('[web]\nread_tokens = ["sha256:' + "c" * 64 + '"]\n'
     + REPOSITORY.format(name="a", token="a" * 64).replace('name = "a"', 'name = "a"\nread_tokens = ["sha256:' + "c" * 64 + '"]'),
     r"a token of \[web\] read_tokens .* is used again"),
    ('[[repository]]\nname = "a"\n', r"\[repository.source\] needs path or url"),
    (REPOSITORY.format(name="a", token="a" * 64) + '[repository.state]\npath = "x.db"\n', "unknown key 'state'"),
    (REPOSITORY.format(name="a", token="a" * 64).replace('name = "a"', 'name = "a"\nproviders = ["nope"]'),
     "no shared \\[\\[provider\\]\\] named 'nope'"),
    (REPOSITORY.format(name="a", token="a" * 64) + '[repository.defaults]\nttl = "long"\n',
     r"\[\[repository\]\] 'a': \[defaults\]: ttl must be int"),
])
def test_repository_mistakes_are_named(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message):
        load(text, tmp_path)


def test_repositories_must_not_share_a_git_cache(tmp_path):
    text = "".join(f"""
[[repository]]
name = "{name}"
[repository.source]
url = "https://git.example.org/{name}.git"
cache = "var/shared-cache"
""" for name in ("a", "b"))
    with pytest.raises(ConfigError, match="source cache .* is also repository 'a'"):
        load(text, tmp_path)


def test_repository_without_tokens_is_a_warning_not_an_error(tmp_path):
    config = load('[[repository]]\nname = "polled"\n[repository.source]\npath = "p"\n', tmp_path)
    assert [view.name for view in config.views()] == ["polled"]
    assert any("'polled': no [repository.webhook] tokens" in w for w in config.warnings)
