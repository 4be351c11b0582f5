"""Server configuration: one TOML file, loaded once into frozen dataclasses.

Shape (see ``examples/config.toml`` for every key)::

    [source]      path = "zones"  |  url = "…", branch = "main", ssh_key = "…", cache = "var/cache/repo"
    [defaults]    ttl, nameservers, hostmaster, refresh, retry, expire, minimum, resolver,
                  update_threshold, delete_threshold, threshold_min_records, allow_zone_deletion
    [[provider]]  name, type ("rfc2136" | "powerdns" | "zonefile" | "octodns"), zones = ["*"], + the keys
                  the type declares (``OPTIONS`` in its module under publisher/publish/providers/)
    [state]       path = "var/state.db" (SQLite, the default)  |  url = "postgresql://…" (shared by instances)
    [cache]       path (default: cache/evaluations beside the state database), max_size (bytes), enabled
    [webhook]     tokens = ["sha256:<hex>"], secret, max_body, allowed_branches, repository
    [web]         trusted_proxies = ["CIDR"], read_tokens = ["sha256:<hex>"], [web.users] name = "<hash>"
    [notify]      smtp_host, smtp_port, smtp_security, smtp_username, smtp_password, from, to, …
    [poll]        interval (seconds, 0 = off)
    [jobs]        lease, max_attempts, retry_delay, retry_max_delay (seconds)
    [fetch]       max_size, max_files, timeout
    [retention]   keep_days, keep_newest, prune_interval
    [health]      queue_wait, mail_failing (seconds before /healthz answers 503)
    [forge]       type, api_url, token, username, repository, context, plan_forks, status_url, timeout
    [zones."example.com"] or [[zone]] name = "example.com": per-zone ttl, providers, thresholds,
                  allow_deletion, keep_nameservers
    [[repository]] name, owns = ["zone patterns"], read_tokens, providers = ["shared names"], and its own
                  [repository.source], .webhook, .notify, .defaults, .forge, .poll, [[repository.provider]],
                  [repository.zones."x"] / [[repository.zone]]: several repositories on one instance

Several repositories: each ``[[repository]]`` becomes a ``Config`` of its own (``Config.repositories``),
parsed exactly as a one-repository file would be, from the instance's shared sections with the
repository's tables laid over them (``[defaults]``, ``[notify]``, ``[poll]`` key by key; zone settings
appended; shared ``[[provider]]``s, narrowed by ``providers``, plus its own).  Instance-wide sections
(``[state]``, ``[web]``, ``[jobs]``, ``[fetch]``, ``[retention]``, ``[health]``, ``[sandbox]``) stay at the
top; ``[source]``, ``[webhook]`` and ``[forge]`` then belong inside each repository.  A file without
``[[repository]]`` is one repository, as before (``Config.views()`` is then ``(config,)``).

Secrets are written as ``"env:NAME"`` or ``"file:PATH"`` and resolved here, at load time; an error
names the key and the reference, never a value.  Relative paths are relative to the config file.
Unknown keys are errors (a typo in a safety setting must not pass silently), except provider keys
a provider type does not list, which become warnings the commands print (an ``octodns`` provider
passes them to its class instead, each resolved and masked as a secret).
"""

from __future__ import annotations

import fnmatch
import ipaddress
import os
import re
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

from publisher.publish.providers import PROVIDER_TYPES, option_schema

# Keys outside [[provider]] that may hold "env:NAME" / "file:PATH" references (a provider type
# declares its own in its OPTIONS).
SECRET_KEYS = frozenset({
    "secret", "tokens", "smtp_password", "smtp_username", "webhook_secret",
    "webhook_url",  # Slack-style URLs carry their secret in the path
    "read_tokens",
})


def is_password_hash(value: str) -> bool:
    """True for a hash made by ``werkzeug.security.generate_password_hash`` (``method$salt$hash``)
    with a slow method (scrypt or pbkdf2)."""
    method, salt, digest = (value.split("$") + ["", ""])[:3] if value.count("$") == 2 else ("", "", "")
    return method.split(":")[0] in ("scrypt", "pbkdf2") and bool(salt) and bool(digest)


# The sections of a ``[[repository]]`` table; the rest of a file is the instance's.
REPOSITORY_KEYS = frozenset({"name", "owns", "read_tokens", "providers", "source", "webhook", "notify", "defaults",
                             "provider", "zone", "zones", "forge", "poll"})
REPOSITORY_ONLY = ("source", "webhook", "forge")  # with [[repository]], only inside one
REPOSITORY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


class ConfigError(ValueError):
    """The configuration file is invalid; the message names the file and key, never a secret."""


@dataclass(frozen=True)
class SourceConfig:
    """Where zones come from: a local directory, or a git remote and branch."""

    path: Path | None = None
    url: str | None = field(default=None, repr=False)  # may carry credentials: show ``display_url``
    branch: str = "main"
    ssh_key: Path | None = None  # deploy key for SSH remotes
    cache: Path | None = None  # where the service keeps its clone of ``url``

    @property
    def display_url(self) -> str | None:
        """``url`` without its credentials: the only form that is shown, logged or stored."""
        from publisher.redaction import redact
        return redact(self.url) if self.url else None

    @property
    def key(self) -> str:
        """The name a one-repository instance files its jobs, runs and zones under: the git URL without
        credentials and the branch, else the directory.  Stored and shown: never with a password in it."""
        return f"{self.display_url}#{self.branch}" if self.url else str(self.path)


@dataclass(frozen=True)
class Thresholds:
    """Section F safety limits: above them a plan needs ``--force``."""

    update: float = 0.30  # fraction of existing records updated
    delete: float = 0.30  # fraction of existing records deleted
    min_records: int = 10  # limits apply once a zone has at least this many records


@dataclass(frozen=True)
class Defaults:
    """Values every zone gets unless it says otherwise."""

    ttl: int = 3600
    nameservers: tuple[str, ...] = ()
    hostmaster: str = "hostmaster.invalid."
    refresh: int = 3600
    retry: int = 600
    expire: int = 1209600
    minimum: int = 300
    resolver: str | None = None  # "host" or "host:port" used to flatten ALIAS; None = system resolver
    thresholds: Thresholds = Thresholds()
    allow_zone_deletion: bool = False


@dataclass(frozen=True)
class ProviderConfig:
    """One ``[[provider]]`` table; ``options`` holds the type-specific keys, secrets resolved;
    ``secrets`` names the options that are secrets (masked in reprs)."""

    name: str
    type: str
    zones: tuple[str, ...] = ("*",)
    options: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    secrets: frozenset[str] = frozenset({"tsig_secret", "api_key"})
    checks: str = "bind"  # whose refusals block a zone sent here besides BIND's: "bind" or "knot"

    def get(self, key: str, default: Any = None) -> Any:
        return self.options.get(key, default)

    def __repr__(self) -> str:  # secrets masked: configs end up in logs and tracebacks
        shown = {k: ("***" if k in self.secrets else v) for k, v in self.options.items()}
        return f"ProviderConfig(name={self.name!r}, type={self.type!r}, zones={self.zones!r}, options={shown!r})"

    def serves(self, origin: str) -> bool:
        """True when one of the ``zones`` patterns matches the zone (with or without final dot)."""
        bare = origin.rstrip(".").lower()
        return any(fnmatch.fnmatchcase(bare, pattern.rstrip(".").lower()) for pattern in self.zones)


@dataclass(frozen=True)
class ZoneSettings:
    """Per-zone overrides, matched by zone name (glob patterns allowed)."""

    name: str
    ttl: int | None = None
    providers: tuple[str, ...] | None = None
    thresholds: Thresholds | None = None
    allow_deletion: bool | None = None
    keep_nameservers: bool | None = None  # a BIND file's own apex NS instead of [defaults] nameservers

    def matches(self, origin: str) -> bool:
        return fnmatch.fnmatchcase(origin.rstrip(".").lower(), self.name.rstrip(".").lower())


@dataclass(frozen=True)
class StateConfig:
    """``path``: the SQLite file (and the folder of local files such as the development token);
    ``url``: a PostgreSQL database several instances share instead (it may hold a password)."""

    path: Path = Path("var/state.db")
    url: str | None = field(default=None, repr=False)

    @property
    def location(self) -> "Path | str":
        """What the stores are opened on: the URL when set, else the SQLite file."""
        return self.url or self.path


@dataclass(frozen=True)
class CacheConfig:
    """``[cache]``: evaluated zones kept by content (``publisher.zone.evaluation_cache``), so a
    plan re-evaluates only the zones whose files changed."""

    path: Path = Path("var/cache/evaluations")
    max_size: int = 512 << 20  # bytes; the least recently used entries go first
    enabled: bool = True


@dataclass(frozen=True)
class WebhookConfig:
    """``tokens`` are "sha256:<hex>" hashes of the URL tokens; ``secret`` verifies signatures."""

    tokens: tuple[str, ...] = ()
    secret: str | None = field(default=None, repr=False)
    max_body: int = 1_048_576
    allowed_branches: tuple[str, ...] = ()  # empty: the source branch only
    repository: str | None = None  # "owner/name" the forge reports, for a source that is a mirror or a path


@dataclass(frozen=True)
class WebConfig:
    """``[web]``: who may read the status page, ``/api/*`` and ``/metrics`` from elsewhere than
    loopback, and which peers' forwarded client addresses are believed."""

    trusted_proxies: tuple[str, ...] = ()  # CIDR networks whose X-Forwarded-For is believed
    users: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}), repr=False)  # name -> hash
    read_tokens: tuple[str, ...] = field(default=(), repr=False)  # "sha256:<hex>" of Bearer tokens


@dataclass(frozen=True)
class NotifyConfig:
    """Mail (through the persisted outbox) and an optional outbound webhook."""

    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_security: str = "none"  # "none" | "starttls" | "tls"
    smtp_username: str | None = None
    smtp_password: str | None = field(default=None, repr=False)
    from_: str = "zone-publisher@localhost"  # TOML key "from"
    to: tuple[str, ...] = ()
    notify_author: bool = False  # also mail the commit author
    every_run: bool = False  # mail every run, not only runs with problems
    outbox: Path | None = None  # write .eml files here instead of sending (make run)
    webhook_url: str | None = field(default=None, repr=False)
    webhook_secret: str | None = field(default=None, repr=False)
    timeout: float = 10.0


FORGE_TYPES = ("github", "gitlab", "gitea", "forgejo", "bitbucket-cloud", "bitbucket-datacenter")
# The public API of each hosted forge; self-hosted ones (and GitHub Enterprise) set api_url.
FORGE_API_URLS: Mapping[str, str] = {"github": "https://api.github.com", "gitlab": "https://gitlab.com/api/v4",
                                     "bitbucket-cloud": "https://api.bitbucket.org"}


@dataclass(frozen=True)
class ForgeConfig:
    """``[forge]``: where commit statuses and pull-request plan comments go (unset: nowhere)."""

    type: str
    api_url: str
    repository: str  # "owner/name"; GitLab "group/sub/name" or the numeric project id; Bitbucket DC "PROJECT/slug"
    token: str = field(default="", repr=False)
    username: str | None = None  # Bitbucket Cloud app passwords and DC basic auth: user name beside the token
    context: str = "zone-publisher"  # the status's context / name / key; plans use "<context>/plan"
    plan_forks: bool = False  # plan requests whose head is in another repository (their code is untrusted)
    status_url: str | None = None  # public base URL of the status page, for the links; default: serve's
    timeout: float = 10.0


@dataclass(frozen=True)
class PollConfig:
    interval: int = 0  # seconds between polls of the branch; 0 disables polling


@dataclass(frozen=True)
class JobsConfig:
    """``[jobs]``: a running job is owned through a lease the worker renews (heartbeat); a job whose
    lease ran out (its worker died, whatever its pid) is claimed again.  A job that fails or crashes
    is retried after ``retry_delay`` doubling up to ``retry_max_delay``, ``max_attempts`` times in all."""

    lease: float = 60.0
    workers: int = 2  # runs of different repositories at once (one repository's runs never overlap)
    max_attempts: int = 8
    retry_delay: float = 30.0
    retry_max_delay: float = 3600.0

    def retry_after(self, attempts: int) -> float:
        """Seconds to wait before attempt ``attempts + 1``."""
        return min(self.retry_delay * 2 ** max(attempts - 1, 0), self.retry_max_delay)


@dataclass(frozen=True)
class FetchConfig:
    """``[fetch]``: bounds on what a repository may make the service download and check out."""

    max_size: int = 256 * 1024 * 1024  # bytes: the git objects kept, and the files of one commit
    max_files: int = 20_000  # files in one commit
    timeout: float = 300.0  # seconds per git command


@dataclass(frozen=True)
class RetentionConfig:
    """``[retention]``: finished runs, jobs, delivery ids and sent mail are pruned once they are older
    than ``keep_days`` and not among the newest ``keep_newest``; the worker prunes every
    ``prune_interval`` seconds."""

    keep_days: float = 30.0
    keep_newest: int = 100
    prune_interval: float = 3600.0


@dataclass(frozen=True)
class HealthConfig:
    """``[health]``: how long the queue may stand still (a job waiting, no live lease) and mail may
    stay undelivered before ``/healthz`` answers 503."""

    queue_wait: float = 600.0
    mail_failing: float = 3600.0


@dataclass(frozen=True)
class SandboxConfig:
    """``[sandbox]``: per-zone limits of Lua evaluation (a zone over one fails alone)."""

    cpu_seconds: float = 10.0  # Lua CPU time per zone, templates and compilation included
    memory_mb: int = 1024  # Lua heap per zone
    max_records: int = 2_000_000
    wall_seconds: float = 60.0  # hard limit: the evaluating process is killed after this


@dataclass(frozen=True)
class Config:
    """The whole configuration, immutable."""

    source: SourceConfig = SourceConfig()
    defaults: Defaults = Defaults()
    providers: tuple[ProviderConfig, ...] = ()
    state: StateConfig = StateConfig()
    cache: CacheConfig = CacheConfig()
    webhook: WebhookConfig = WebhookConfig()
    web: WebConfig = WebConfig()
    notify: NotifyConfig = NotifyConfig()
    poll: PollConfig = PollConfig()
    sandbox: SandboxConfig = SandboxConfig()
    jobs: JobsConfig = JobsConfig()
    fetch: FetchConfig = FetchConfig()
    retention: RetentionConfig = RetentionConfig()
    health: HealthConfig = HealthConfig()
    zones: tuple[ZoneSettings, ...] = ()
    forge: ForgeConfig | None = None
    path: Path | None = None  # the file it was loaded from
    warnings: tuple[str, ...] = ()
    # Several repositories (``[[repository]]``): the instance's config lists one view per repository;
    # each view names itself and the zones it may own.  A one-repository file leaves them empty.
    name: str = ""  # the repository's name; "" in the one-repository form
    owns: tuple[str, ...] = ("*",)  # zone patterns this repository may publish
    read_tokens: tuple[str, ...] = field(default=(), repr=False)  # "sha256:<hex>": may read this repository only
    repositories: tuple["Config", ...] = ()

    def views(self) -> tuple["Config", ...]:
        """Every repository this instance publishes, each as a ``Config`` of its own."""
        return self.repositories or (self,)

    @property
    def key(self) -> str:
        """The name jobs, runs, mail and zone ownership are filed under: ``name``, or in the
        one-repository form the source's key (what earlier versions stored)."""
        return self.name or self.source.key

    def view(self, key: str) -> "Config | None":
        """The repository filed under ``key``, or None."""
        return next((view for view in self.views() if view.key == key), None)

    def may_own(self, origin: str) -> bool:
        """True when ``owns`` lets this repository publish ``origin``."""
        bare = origin.rstrip(".").lower()
        return any(fnmatch.fnmatchcase(bare, pattern.rstrip(".").lower()) for pattern in self.owns)

    @classmethod
    def default(cls, root: Path | str = ".") -> "Config":
        """The embedded default used by ``make run``, with paths under ``root``."""
        text = (Path(__file__).parent / "default.toml").read_text(encoding="utf-8")
        return load_config_text(text, base=Path(root).resolve(), display="<default config>")

    def provider(self, name: str) -> ProviderConfig:
        for provider in self.providers:
            if provider.name == name:
                return provider
        raise ConfigError(f"no provider named {name!r} in {self.display}")

    @property
    def display(self) -> str:
        return str(self.path) if self.path else "<config>"

    def zone_settings(self, origin: str) -> ZoneSettings:
        """Overrides for ``origin``: an exact name wins over patterns; later patterns win over earlier."""
        exact = [z for z in self.zones if z.name.rstrip(".").lower() == origin.rstrip(".").lower()]
        chosen = exact or [z for z in self.zones if z.matches(origin)]
        merged = ZoneSettings(origin.rstrip(".").lower())
        for settings in chosen:
            merged = replace(merged, **{k: v for k, v in vars(settings).items() if k != "name" and v is not None})
        return merged

    def providers_for(self, origin: str) -> tuple[ProviderConfig, ...]:
        """The providers a zone is published to: the zone's own list, else matching patterns."""
        names = self.zone_settings(origin).providers
        if names is not None:
            return tuple(p for p in self.providers if p.name in names)
        return tuple(p for p in self.providers if p.serves(origin))

    def thresholds_for(self, origin: str) -> Thresholds:
        return self.zone_settings(origin).thresholds or self.defaults.thresholds

    def ttl_for(self, origin: str) -> int:
        return self.zone_settings(origin).ttl or self.defaults.ttl

    def keeps_nameservers(self, origin: str) -> bool:
        """True when a BIND zone file's own apex NS are published instead of [defaults] nameservers."""
        return bool(self.zone_settings(origin).keep_nameservers)

    def allows_deletion(self, origin: str) -> bool:
        setting = self.zone_settings(origin).allow_deletion
        return self.defaults.allow_zone_deletion if setting is None else setting


def load_config(path: Path | str) -> Config:
    """Load and check a TOML configuration file; raises ConfigError."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"cannot read configuration {path}: {error.strerror}") from error
    config = load_config_text(text, base=path.resolve().parent, display=str(path))
    return replace(config, path=path)


def load_config_text(text: str, *, base: Path, display: str = "<config>") -> Config:
    """Parse configuration ``text``; relative paths resolve against ``base``."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{display}: invalid TOML: {error}") from error
    return _Loader(base, display).load(data)


def _table_list(value: Any) -> list[Any]:
    """A TOML array of tables as a list (one ``[provider]`` table counts as one); anything else is
    kept as one item, for ``providers()`` to report."""
    return list(value) if isinstance(value, list) else [value]


def _absolute(name: str) -> str:
    name = name.strip().lower()
    return name if name.endswith(".") else name + "."


class _Loader:
    """Turns the parsed TOML into a Config, checking every key as it goes."""

    def __init__(self, base: Path, display: str) -> None:
        self.base = base
        self.display = display
        self.warnings: list[str] = []
        self.default_thresholds = Thresholds()

    def error(self, where: str, message: str) -> ConfigError:
        return ConfigError(f"{self.display}: {where}: {message}")

    def check_keys(self, where: str, table: Mapping[str, Any], allowed: set[str] | frozenset[str]) -> None:
        unknown = sorted(set(table) - set(allowed))
        if unknown:
            raise self.error(where, "unknown key" + ("s " if len(unknown) > 1 else " ") + ", ".join(map(repr, unknown)))

    def table(self, data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
        value = data.get(key, {})
        if not isinstance(value, dict):
            raise self.error(f"[{key}]", "must be a table")
        return value

    def typed(self, where: str, key: str, value: Any, kind: type) -> Any:
        """``value`` checked to be a ``kind`` (an int is accepted as a float; a bool is no int)."""
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
            raise self.error(where, f"{key} must be {kind.__name__}, not {type(value).__name__}")
        return value

    def strings(self, where: str, key: str, value: Any) -> tuple[str, ...]:
        if isinstance(value, str):
            return (value,)
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise self.error(where, f"{key} must be a list of strings")
        return tuple(value)

    def path(self, value: str) -> Path:
        path = Path(os.path.expanduser(value))
        return path if path.is_absolute() else self.base / path

    def secret(self, where: str, key: str, value: str) -> str:
        """Resolve an "env:NAME" or "file:PATH" reference; plain strings are returned as they are."""
        if value.startswith("env:"):
            variable = value[4:]
            if variable not in os.environ:
                raise self.error(where, f"{key}: environment variable {variable} is not set")
            return os.environ[variable]
        if value.startswith("file:"):
            path = self.path(value[5:])
            try:
                return path.read_text(encoding="utf-8").strip()
            except OSError as error:
                raise self.error(where, f"{key}: cannot read secret file {path}: {error.strerror}") from error
        return value

    def resolve_secrets(self, where: str, table: Mapping[str, Any],
                        keys: frozenset[str] = SECRET_KEYS) -> dict[str, Any]:
        """``table`` with the references of ``keys`` resolved, inside lists and tables too."""
        resolved = dict(table)
        for key in keys & set(table):
            resolved[key] = self.resolve_value(where, key, table[key])
        return resolved

    def resolve_value(self, where: str, key: str, value: Any) -> Any:
        if isinstance(value, str):
            return self.secret(where, key, value)
        if isinstance(value, list):
            return [self.resolve_value(where, key, item) for item in value]
        if isinstance(value, dict):
            return {k: self.resolve_value(where, f"{key}.{k}", v) for k, v in value.items()}
        return value

    # -- sections --------------------------------------------------------------------------------

    def load(self, data: Mapping[str, Any]) -> Config:
        if "repository" not in data:
            return self.load_one(data)
        tables = data["repository"]
        if not isinstance(tables, list) or not tables or not all(isinstance(t, dict) for t in tables):
            raise self.error("[[repository]]", "must be an array of tables")
        for key in REPOSITORY_ONLY:
            if key in data:
                raise self.error(f"[{key}]", f"with [[repository]] tables, [{key}] belongs inside each repository "
                                             f"([repository.{key}])")
        shared = {key: value for key, value in data.items() if key != "repository"}
        instance = self.load_one(shared)
        views: list[Config] = []
        for index, table in enumerate(tables, 1):
            views.append(self.repository(index, table, shared))
        self.check_distinct(views)
        operator = set(instance.web.read_tokens)
        for view in views:
            if operator & set(view.read_tokens) or operator & set(view.webhook.tokens):
                raise self.error(f"[[repository]] {view.name!r}", "a token of [web] read_tokens (the operator's, "
                                 "who reads every repository) is used again: each token identifies one reader")
        return replace(instance, repositories=tuple(views), warnings=tuple(self.warnings))

    def repository(self, index: int, table: Mapping[str, Any], shared: Mapping[str, Any]) -> Config:
        """One ``[[repository]]``: parsed as a whole configuration file would be, from the shared
        sections with the repository's own laid over them."""
        name = table.get("name")
        if not isinstance(name, str) or not REPOSITORY_NAME.fullmatch(name):
            raise self.error(f"[[repository]] #{index}", "name is required: letters, digits, '.', '_' or '-', "
                                                         "at most 64, starting with a letter or digit")
        where = f"[[repository]] {name!r}"
        self.check_keys(where, table, REPOSITORY_KEYS)
        owns = self.strings(where, "owns", table.get("owns", ["*"]))
        read_tokens = self.strings(where, "read_tokens", self.resolve_secrets(where, table, frozenset({"read_tokens"}))
                                   .get("read_tokens", []))
        self.check_token_hashes(where, "read_tokens", read_tokens)
        merged: dict[str, Any] = {key: value for key, value in shared.items()
                                  if key not in ("defaults", "notify", "poll", "provider", "zone", "zones")}
        for key in ("defaults", "notify", "poll"):
            merged[key] = {**self.table(shared, key), **self.nested(where, table, key)}
        provider_tables = _table_list(shared.get("provider", []))
        if "providers" in table:
            allowed = self.strings(where, "providers", table["providers"])
            known = {p.get("name") for p in provider_tables if isinstance(p, dict)}
            for missing in sorted(set(allowed) - known):
                raise self.error(where, f"providers: no shared [[provider]] named {missing!r}")
            provider_tables = [p for p in provider_tables if isinstance(p, dict) and p.get("name") in allowed]
        merged["provider"] = provider_tables + _table_list(table.get("provider", []))
        merged["zone"] = list(shared.get("zone", [])) + list(self.nested_list(where, table, "zone"))
        merged["zones"] = {**self.table(shared, "zones"), **self.nested(where, table, "zones")}
        for key in REPOSITORY_ONLY:
            if key in table:
                merged[key] = table[key]
        source = dict(self.nested(where, table, "source"))
        if "path" not in source and "url" not in source:
            raise self.error(where, "[repository.source] needs path or url")
        source.setdefault("cache", f"var/cache/repositories/{name}")
        merged["source"] = source
        loader = _Loader(self.base, f"{self.display} {where}")
        view = loader.load_one(merged)
        self.warnings.extend(w for w in loader.warnings if w not in self.warnings)
        return replace(view, name=name, owns=owns, read_tokens=read_tokens, warnings=())

    def nested(self, where: str, table: Mapping[str, Any], key: str) -> Mapping[str, Any]:
        value = table.get(key, {})
        if not isinstance(value, dict):
            raise self.error(where, f"[repository.{key}] must be a table")
        return value

    def nested_list(self, where: str, table: Mapping[str, Any], key: str) -> list[Any]:
        value = table.get(key, [])
        if not isinstance(value, list):
            raise self.error(where, f"[[repository.{key}]] must be an array of tables")
        return value

    def check_distinct(self, views: list[Config]) -> None:
        """What identifies a repository (its name, each webhook token) or belongs to it alone (its git
        cache) must not be shared: a push must never reach, nor a clone overwrite, another repository."""
        seen_names: set[str] = set()
        token_owner: dict[str, str] = {}
        cache_owner: dict[Path, str] = {}
        for view in views:
            where = f"[[repository]] {view.name!r}"
            if view.name in seen_names:
                raise self.error(where, "duplicate repository name")
            seen_names.add(view.name)
            for token in (*view.webhook.tokens, *view.read_tokens):
                if token in token_owner and token_owner[token] != view.name:
                    raise self.error(where, f"a token of repository {token_owner[token]!r} is used again: "
                                            "each token identifies one repository (run `zone-publisher token`)")
                token_owner[token] = view.name
            cache = view.source.cache.resolve() if view.source.url and view.source.cache else None
            if cache is not None:
                if cache in cache_owner:
                    raise self.error(where, f"source cache {cache} is also repository {cache_owner[cache]!r}'s")
                cache_owner[cache] = view.name
            if not view.webhook.tokens:
                self.warnings.append(f"{self.display}: {where}: no [repository.webhook] tokens: it is published "
                                     "by polling only")

    def load_one(self, data: Mapping[str, Any]) -> Config:
        self.check_keys("top level", data, {"source", "defaults", "provider", "state", "webhook", "notify",
                                            "poll", "sandbox", "zone", "zones", "web", "cache",
                                            "jobs", "fetch", "retention", "health", "forge"})
        defaults = self.defaults(self.table(data, "defaults"))
        self.default_thresholds = defaults.thresholds
        state = self.state(self.table(data, "state"))
        config = Config(
            source=self.source(self.table(data, "source")),
            defaults=defaults,
            providers=self.providers(data.get("provider", [])),
            state=state,
            cache=self.cache(self.table(data, "cache"), state),
            webhook=self.webhook(self.table(data, "webhook")),
            web=self.web(self.table(data, "web")),
            notify=self.notify(self.table(data, "notify")),
            poll=self.poll(self.table(data, "poll")),
            sandbox=self.sandbox(self.table(data, "sandbox")),
            jobs=self.numbers("[jobs]", self.table(data, "jobs"), JobsConfig()),
            fetch=self.numbers("[fetch]", self.table(data, "fetch"), FetchConfig()),
            retention=self.numbers("[retention]", self.table(data, "retention"), RetentionConfig()),
            health=self.numbers("[health]", self.table(data, "health"), HealthConfig()),
            zones=self.zones(data.get("zone", []), data.get("zones", {})),
            forge=self.forge(self.table(data, "forge")) if "forge" in data else None,
        )
        known = {p.name for p in config.providers}
        for settings in config.zones:
            for name in settings.providers or ():
                if name not in known:
                    raise self.error(f"zone {settings.name!r}", f"providers: no provider named {name!r}")
        return replace(config, warnings=tuple(self.warnings))

    def source(self, table: Mapping[str, Any]) -> SourceConfig:
        where = "[source]"
        self.check_keys(where, table, {"path", "url", "branch", "ssh_key", "cache"})
        if "path" in table and "url" in table:
            raise self.error(where, "set either path or url, not both")
        path = self.path(self.typed(where, "path", table["path"], str)) if "path" in table else None
        # The URL may hold credentials, so it may also come from the environment or a file
        # ("file:PATH"; a "file://" URL is a repository on this host, not a reference).
        url = self.typed(where, "url", table["url"], str) if "url" in table else None
        if url is not None and not url.startswith("file://"):
            url = self.secret(where, "url", url)
        if path is None and url is None:
            path = self.path("zones")
        ssh_key = self.path(self.typed(where, "ssh_key", table["ssh_key"], str)) if "ssh_key" in table else None
        cache = self.path(self.typed(where, "cache", table.get("cache", "var/cache/repository"), str))
        return SourceConfig(path=path, url=url, branch=self.typed(where, "branch", table.get("branch", "main"), str),
                            ssh_key=ssh_key, cache=cache)

    def thresholds(self, where: str, table: Mapping[str, Any], base: Thresholds) -> Thresholds:
        update = self.typed(where, "update_threshold", table.get("update_threshold", base.update), float)
        delete = self.typed(where, "delete_threshold", table.get("delete_threshold", base.delete), float)
        minimum = self.typed(where, "threshold_min_records", table.get("threshold_min_records", base.min_records), int)
        for key, value in (("update_threshold", update), ("delete_threshold", delete)):
            if not 0 <= value <= 1:
                raise self.error(where, f"{key} must be a fraction between 0 and 1")
        return Thresholds(update, delete, minimum)

    def defaults(self, table: Mapping[str, Any]) -> Defaults:
        where = "[defaults]"
        self.check_keys(where, table, {"ttl", "nameservers", "hostmaster", "refresh", "retry", "expire", "minimum",
                                       "resolver", "update_threshold", "delete_threshold", "threshold_min_records",
                                       "allow_zone_deletion"})
        base = Defaults()
        numbers = {}
        for key in ("ttl", "refresh", "retry", "expire", "minimum"):
            value = self.typed(where, key, table.get(key, getattr(base, key)), int)
            if not 0 <= value <= 2**31 - 1:
                raise self.error(where, f"{key} must be between 0 and 2147483647")
            numbers[key] = value
        nameservers = tuple(_absolute(ns) for ns in self.strings(where, "nameservers", table.get("nameservers", [])))
        hostmaster = _absolute(self.typed(where, "hostmaster", table.get("hostmaster", base.hostmaster), str))
        if "@" in hostmaster:  # accept an e-mail address: the SOA rname spells "@" as "."
            local, _, domain = hostmaster.partition("@")
            hostmaster = local.replace(".", "\\.") + "." + domain
        resolver = self.typed(where, "resolver", table["resolver"], str) if "resolver" in table else None
        return Defaults(
            nameservers=nameservers,
            hostmaster=hostmaster,
            resolver=resolver,
            thresholds=self.thresholds(where, table, base.thresholds),
            allow_zone_deletion=self.typed(where, "allow_zone_deletion", table.get("allow_zone_deletion", False), bool),
            **numbers,
        )

    def providers(self, tables: Any) -> tuple[ProviderConfig, ...]:
        if isinstance(tables, dict):
            tables = [tables]
        if not isinstance(tables, list):
            raise self.error("[[provider]]", "must be an array of tables")
        providers: list[ProviderConfig] = []
        for index, table in enumerate(tables, 1):
            where = f"[[provider]] #{index}"
            if not isinstance(table, dict):
                raise self.error(where, "must be a table")
            name = table.get("name")
            if not isinstance(name, str) or not name:
                raise self.error(where, "name is required")
            where = f"[[provider]] {name!r}"
            if any(p.name == name for p in providers):
                raise self.error(where, "duplicate provider name")
            kind = table.get("type")
            if kind not in PROVIDER_TYPES:
                raise self.error(where, f"type must be one of {', '.join(PROVIDER_TYPES)}")
            zones = self.strings(where, "zones", table.get("zones", ["*"]))
            checks = table.get("checks", "bind")
            if checks not in ("bind", "knot"):
                raise self.error(where, 'checks must be "bind" or "knot" (the server whose refusals block a zone)')
            options, secrets = self.provider_options(
                where, kind, {k: v for k, v in table.items() if k not in ("name", "type", "zones", "checks")})
            providers.append(ProviderConfig(name, kind, zones, MappingProxyType(options), secrets, checks))
        return tuple(providers)

    def provider_options(self, where: str, kind: str, table: Mapping[str, Any]) -> tuple[dict[str, Any], frozenset[str]]:
        """The options of one ``[[provider]]`` table checked against its type's declared schema:
        types, required keys, exclusive pairs, secrets resolved, paths made absolute."""
        declared = option_schema(kind)
        secrets = declared.secret_keys(tuple(table))
        options = self.resolve_secrets(where, table, secrets)
        unknown = sorted(set(options) - set(declared.options))
        if unknown and not declared.pass_through:
            self.warnings.append(f"{self.display}: {where}: unknown key{'s' if len(unknown) > 1 else ''} "
                                 + ", ".join(map(repr, unknown)) + f" for type {kind}")
        missing = [key for key, option in declared.options.items() if option.required and key not in options]
        if missing:
            raise self.error(where, f"missing {', '.join(missing)} (required for type {kind})")
        for first, second in declared.exclusive:
            if first in options and second in options:
                raise self.error(where, f"set either {first} or {second}, not both")
        for key, option in declared.options.items():
            if key not in options:
                continue
            kinds = option.kind if isinstance(option.kind, tuple) else (option.kind,)
            value = options[key]
            if float in kinds and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
                names = " or ".join(k.__name__ for k in kinds)
                shown = "" if key in secrets else f" ({value!r})"
                raise self.error(where, f"{key} must be {names}, not {type(value).__name__}{shown}")
            options[key] = str(self.path(value)) if option.path else value
        problem = declared.check(options) if declared.check else None
        if problem:
            raise self.error(where, problem)
        return options, secrets

    def state(self, table: Mapping[str, Any]) -> StateConfig:
        where = "[state]"
        self.check_keys(where, table, {"path", "url"})
        path = self.path(self.typed(where, "path", table.get("path", "var/state.db"), str))
        url = None
        if "url" in table:  # may carry the password: "env:NAME" / "file:PATH" like every secret
            url = self.secret(where, "url", self.typed(where, "url", table["url"], str))
            if not url.startswith(("postgresql://", "postgres://")):
                raise self.error(where, "url must be a postgresql:// URL (for SQLite, set path)")
        return StateConfig(path, url)

    def cache(self, table: Mapping[str, Any], state: StateConfig) -> CacheConfig:
        """``[cache]``; by default next to the state database (``var/state.db`` ->
        ``var/cache/evaluations``), where the service may write already."""
        where = "[cache]"
        self.check_keys(where, table, {"path", "max_size", "enabled"})
        base = CacheConfig()
        max_size = self.typed(where, "max_size", table.get("max_size", base.max_size), int)
        if max_size <= 0:
            raise self.error(where, "max_size must be a positive number of bytes")
        path = (self.path(self.typed(where, "path", table["path"], str)) if "path" in table
                else state.path.parent / "cache" / "evaluations")
        return CacheConfig(path=path, max_size=max_size,
                           enabled=self.typed(where, "enabled", table.get("enabled", True), bool))

    def webhook(self, table: Mapping[str, Any]) -> WebhookConfig:
        where = "[webhook]"
        self.check_keys(where, table, {"tokens", "secret", "max_body", "allowed_branches", "repository"})
        table = self.resolve_secrets(where, table)
        tokens = self.strings(where, "tokens", table.get("tokens", []))
        self.check_token_hashes(where, "tokens", tokens)
        secret = self.typed(where, "secret", table["secret"], str) if "secret" in table else None
        repository = self.typed(where, "repository", table["repository"], str).strip("/") if "repository" in table else None
        if repository is not None and "/" not in repository:
            raise self.error(where, 'repository must be "owner/name" as the forge names it')
        return WebhookConfig(tokens=tokens, secret=secret or None,
                             max_body=self.typed(where, "max_body", table.get("max_body", 1_048_576), int),
                             allowed_branches=self.strings(where, "allowed_branches", table.get("allowed_branches", [])),
                             repository=repository or None)

    def check_token_hashes(self, where: str, key: str, hashes: tuple[str, ...]) -> None:
        command = "zone-publisher token" + (" --read" if key == "read_tokens" else "")
        for entry in hashes:
            digest = entry.partition(":")[2]
            if not entry.startswith("sha256:") or len(digest) != 64 or not all(c in "0123456789abcdef" for c in digest):
                raise self.error(where, f'{key} must be "sha256:<64 hex digits>" (run `{command}`)')

    def web(self, table: Mapping[str, Any]) -> WebConfig:
        where = "[web]"
        self.check_keys(where, table, {"trusted_proxies", "users", "read_tokens"})
        table = self.resolve_secrets(where, table)
        proxies = self.strings(where, "trusted_proxies", table.get("trusted_proxies", []))
        for network in proxies:
            try:
                ipaddress.ip_network(network, strict=False)
            except ValueError:
                raise self.error(where, f"trusted_proxies: {network!r} is not an address or CIDR network") from None
        read_tokens = self.strings(where, "read_tokens", table.get("read_tokens", []))
        self.check_token_hashes(where, "read_tokens", read_tokens)
        users = table.get("users", {})
        if not isinstance(users, dict):
            raise self.error("[web.users]", "must be a table of user name = password hash")
        hashes = {}
        for name, value in users.items():
            if not isinstance(value, str):
                raise self.error("[web.users]", f"{name}: must be a string")
            value = self.secret("[web.users]", name, value)
            if not is_password_hash(value):  # never echo it: it may be a password typed by mistake
                raise self.error("[web.users]", f"{name}: not a password hash (run `zone-publisher passwd {name}`)")
            hashes[name] = value
        return WebConfig(trusted_proxies=proxies, users=MappingProxyType(hashes), read_tokens=read_tokens)

    def notify(self, table: Mapping[str, Any]) -> NotifyConfig:
        where = "[notify]"
        self.check_keys(where, table, {"smtp_host", "smtp_port", "smtp_security", "smtp_username", "smtp_password",
                                       "from", "to", "notify_author", "every_run", "outbox", "webhook_url",
                                       "webhook_secret", "timeout"})
        table = self.resolve_secrets(where, table)
        security = self.typed(where, "smtp_security", table.get("smtp_security", "none"), str)
        if security not in ("none", "starttls", "tls"):
            raise self.error(where, "smtp_security must be none, starttls or tls")
        optional = {key: self.typed(where, key, table[key], str) if key in table else None
                    for key in ("smtp_host", "smtp_username", "smtp_password", "webhook_url", "webhook_secret")}
        return NotifyConfig(
            smtp_port=self.typed(where, "smtp_port", table.get("smtp_port", 465 if security == "tls" else 25), int),
            smtp_security=security,
            from_=self.typed(where, "from", table.get("from", NotifyConfig.from_), str),
            to=self.strings(where, "to", table.get("to", [])),
            notify_author=self.typed(where, "notify_author", table.get("notify_author", False), bool),
            every_run=self.typed(where, "every_run", table.get("every_run", False), bool),
            outbox=self.path(self.typed(where, "outbox", table["outbox"], str)) if "outbox" in table else None,
            timeout=self.typed(where, "timeout", table.get("timeout", 10.0), float),
            **optional,
        )

    def forge(self, table: Mapping[str, Any]) -> ForgeConfig:
        where = "[forge]"
        self.check_keys(where, table, {"type", "api_url", "token", "username", "repository", "context",
                                       "plan_forks", "status_url", "timeout"})
        kind = table.get("type")
        if kind not in FORGE_TYPES:
            raise self.error(where, f"type must be one of {', '.join(FORGE_TYPES)}")
        api_url = self.typed(where, "api_url", table["api_url"], str) if "api_url" in table else FORGE_API_URLS.get(kind)
        if not api_url:
            raise self.error(where, f"api_url is required for type {kind} (the forge's own address)")
        if not api_url.startswith(("https://", "http://")):
            raise self.error(where, "api_url must be an http:// or https:// URL")
        repository = self.typed(where, "repository", table.get("repository", ""), str).strip("/")
        if "/" not in repository and not (kind == "gitlab" and repository.isdigit()):
            raise self.error(where, 'repository must be "owner/name" as the forge names it'
                                    ' (GitLab: "group/name" or the project id; Bitbucket Data Center: "PROJECT/slug")')
        token = self.secret(where, "token", self.typed(where, "token", table["token"], str)) if "token" in table else ""
        if not token:
            raise self.error(where, 'token is required: "env:NAME" or "file:PATH"')
        username = self.typed(where, "username", table["username"], str) if "username" in table else None
        timeout = self.typed(where, "timeout", table.get("timeout", 10.0), float)
        status_url = self.typed(where, "status_url", table["status_url"], str) if "status_url" in table else None
        return ForgeConfig(type=kind, api_url=api_url.rstrip("/"), repository=repository, token=token,
                           username=username or None,
                           context=self.typed(where, "context", table.get("context", "zone-publisher"), str),
                           plan_forks=self.typed(where, "plan_forks", table.get("plan_forks", False), bool),
                           status_url=status_url, timeout=timeout)

    def poll(self, table: Mapping[str, Any]) -> PollConfig:
        self.check_keys("[poll]", table, {"interval"})
        interval = self.typed("[poll]", "interval", table.get("interval", 0), int)
        if interval < 0:
            raise self.error("[poll]", "interval must be >= 0")
        return PollConfig(interval)

    def sandbox(self, table: Mapping[str, Any]) -> SandboxConfig:
        self.check_keys("[sandbox]", table, {"cpu_seconds", "memory_mb", "max_records", "wall_seconds"})
        base = SandboxConfig()
        values = {}
        for key, kind in (("cpu_seconds", (int, float)), ("memory_mb", int), ("max_records", int),
                          ("wall_seconds", (int, float))):
            value = table.get(key, getattr(base, key))
            if isinstance(value, bool) or not isinstance(value, kind) or value <= 0:
                raise self.error("[sandbox]", f"{key} must be a positive number")
            values[key] = value
        if values["wall_seconds"] < values["cpu_seconds"]:
            raise self.error("[sandbox]", "wall_seconds must be at least cpu_seconds")
        return SandboxConfig(**values)

    def numbers(self, where: str, table: Mapping[str, Any], base: Any) -> Any:
        """A section of positive numbers (``[jobs]``, ``[fetch]``, ``[retention]``, ``[health]``): each
        key of ``base``'s dataclass, typed like its default."""
        self.check_keys(where, table, set(vars(base)))
        values = {}
        for key, default in vars(base).items():
            value = self.typed(where, key, table.get(key, default), type(default))
            if value <= 0:
                raise self.error(where, f"{key} must be a positive number")
            values[key] = value
        return replace(base, **values)

    def zones(self, array: Any, mapping: Any) -> tuple[ZoneSettings, ...]:
        entries: list[tuple[str, Mapping[str, Any]]] = []
        if not isinstance(array, list) or not isinstance(mapping, dict):
            raise self.error("[[zone]]/[zones]", "[[zone]] must be an array of tables and [zones] a table")
        for index, table in enumerate(array, 1):
            if not isinstance(table, dict) or not isinstance(table.get("name"), str):
                raise self.error(f"[[zone]] #{index}", "name is required")
            entries.append((table["name"], {k: v for k, v in table.items() if k != "name"}))
        for name, table in mapping.items():
            if not isinstance(table, dict):
                raise self.error(f"[zones.{name!r}]", "must be a table")
            entries.append((name, table))
        settings: list[ZoneSettings] = []
        for name, table in entries:
            where = f"zone {name!r}"
            self.check_keys(where, table, {"ttl", "providers", "update_threshold", "delete_threshold",
                                           "threshold_min_records", "allow_deletion", "keep_nameservers"})
            has_thresholds = any(k in table for k in ("update_threshold", "delete_threshold", "threshold_min_records"))
            settings.append(ZoneSettings(
                name=name.rstrip(".").lower(),
                ttl=self.typed(where, "ttl", table["ttl"], int) if "ttl" in table else None,
                providers=self.strings(where, "providers", table["providers"]) if "providers" in table else None,
                # Partial overrides start from the global limits, so unspecified keys keep them.
                thresholds=self.thresholds(where, table, self.default_thresholds) if has_thresholds else None,
                allow_deletion=self.typed(where, "allow_deletion", table["allow_deletion"], bool)
                if "allow_deletion" in table else None,
                keep_nameservers=self.typed(where, "keep_nameservers", table["keep_nameservers"], bool)
                if "keep_nameservers" in table else None,
            ))
        return tuple(settings)
