"""Who is asking: the client's address behind trusted proxies, whether a request came straight from
loopback, and the login that the status page, ``/api/*`` and ``/metrics`` require otherwise.

``X-Forwarded-For`` is believed only from a peer in ``[web] trusted_proxies``: anyone can send the
header, so believing it from anyone would let a client pick the address the failure limiter counts.
A request is *local* only when its peer is a loopback address and it carries no forwarding header:
a reverse proxy on the same host forwards requests from the internet, and they must log in.

Who sees what: the operator (a ``[web]`` user or read token, or loopback) sees every repository; a
read token of a ``[[repository]]`` sees that repository only, and anything of another answers 404,
as a missing id does (a 403 would tell that it exists).
"""

from __future__ import annotations

import functools
import hashlib
import ipaddress
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Iterable, Mapping

from werkzeug.datastructures import Authorization
from werkzeug.security import check_password_hash, generate_password_hash

from publisher.service.tokens import TokenSet
from publisher.service.web.ratelimit import FailureLimiter

_FORWARDING_HEADERS = ("HTTP_X_FORWARDED_FOR", "HTTP_FORWARDED", "HTTP_X_REAL_IP")



@functools.cache
def _dummy_hash() -> str:
    """Checked against when the user name is unknown, so the answer takes as long as for a known one."""
    return generate_password_hash("not a password of anyone's", method="scrypt")


def parse_address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """An address from a header or peer field ("a.b.c.d", "a.b.c.d:port", "[v6]:port", "v6"), else None."""
    text = text.strip()
    if text.startswith("[") and "]" in text:  # "[v6]:port"
        text = text[1:text.index("]")]
    elif text.count(":") == 1:  # "v4:port"
        text = text.split(":", 1)[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


class ClientAddresses:
    """The client address of a WSGI request, given the trusted proxies (CIDR networks)."""

    def __init__(self, trusted_proxies: Iterable[str] = ()) -> None:
        self.networks = tuple(ipaddress.ip_network(network, strict=False) for network in trusted_proxies)

    def trusted(self, address: str) -> bool:
        parsed = parse_address(address)
        return parsed is not None and any(parsed in network for network in self.networks)

    def client(self, environ: Mapping[str, str]) -> str:
        """The peer address, or, when the peer is a trusted proxy, the nearest untrusted hop of
        ``X-Forwarded-For`` (read from the right: each proxy appends the address it saw)."""
        client = environ.get("REMOTE_ADDR") or "unknown"
        if not self.trusted(client):
            return client
        for hop in reversed((environ.get("HTTP_X_FORWARDED_FOR") or "").split(",")):
            parsed = parse_address(hop)
            if parsed is None:
                break  # garbage from further away than our proxies: keep the last believed hop
            client = str(parsed)
            if not self.trusted(client):
                break
        return client

    @staticmethod
    def is_local(environ: Mapping[str, str]) -> bool:
        """True for a request straight from loopback: a loopback peer, no forwarding header."""
        peer = parse_address(environ.get("REMOTE_ADDR") or "")
        if peer is None or not peer.is_loopback:
            return False
        return not any(environ.get(header) for header in _FORWARDING_HEADERS)


@dataclass(frozen=True)
class Viewer:
    """Who reads: the operator (every repository) or the reader of one repository (its key)."""

    repository: str | None = None  # None: the operator

    @property
    def is_operator(self) -> bool:
        return self.repository is None

    def sees(self, key: str) -> bool:
        """True when this viewer may read the repository filed under ``key``."""
        return self.repository is None or key == self.repository


OPERATOR = Viewer()


class Login:
    """HTTP Basic users (werkzeug scrypt/pbkdf2 hashes) and Bearer read tokens (SHA-256 hashes): the
    operator's, and each repository's (``repository_tokens``: key -> hashes), which read that one only.

    A password hash is slow to check by design, so a credential that was verified once is
    remembered (as a SHA-256 of user and password, in this process) and later requests cost a
    hash; a client that keeps failing is refused (429) before its new guesses are checked.
    """

    OK, MISSING, BAD, LIMITED = "ok", "missing", "bad", "limited"

    def __init__(self, users: Mapping[str, str], read_tokens: Iterable[str], limiter: FailureLimiter,
                 max_remembered: int = 1000, repository_tokens: Mapping[str, Iterable[str]] | None = None) -> None:
        self.users = dict(users)
        self.read_tokens = TokenSet(read_tokens)
        self.repository_tokens = {key: TokenSet(hashes) for key, hashes in (repository_tokens or {}).items()}
        self.limiter = limiter
        self.max_remembered = max_remembered
        self._verified: OrderedDict[bytes, None] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def configured(self) -> bool:
        return bool(self.users) or len(self.read_tokens) > 0 or any(len(t) for t in self.repository_tokens.values())

    def check(self, authorization: Authorization | None, client: str) -> str:
        """OK, MISSING (no credentials offered), BAD (wrong ones) or LIMITED (too many failures)."""
        return self.authenticate(authorization, client)[0]

    def authenticate(self, authorization: Authorization | None, client: str) -> tuple[str, Viewer | None]:
        """``check``'s verdict, and with OK who logged in."""
        if authorization is None:
            return self.MISSING, None
        if authorization.type == "bearer":
            token = authorization.token or ""
            if self.read_tokens.matches(token):
                return self.OK, OPERATOR
            # Every repository's set is compared (no early exit): timing tells no repository apart.
            owners = [key for key, tokens in self.repository_tokens.items() if tokens.matches(token)]
            if len(owners) == 1:
                return self.OK, Viewer(owners[0])
            return self._failed(client), None  # (the config refuses a token shared by two repositories)
        if authorization.type != "basic":
            return self.MISSING, None
        return self._basic(authorization, client)

    def _basic(self, authorization: Authorization, client: str) -> tuple[str, Viewer | None]:
        user, password = authorization.username or "", authorization.password or ""
        remembered = hashlib.sha256(user.encode("utf-8", "surrogateescape") + b"\0"
                                    + password.encode("utf-8", "surrogateescape")).digest()
        with self._lock:
            if remembered in self._verified:
                self._verified.move_to_end(remembered)
                return self.OK, OPERATOR
        if self.limiter.blocked(client):
            return self.LIMITED, None
        stored = self.users.get(user)
        valid = check_password_hash(stored or _dummy_hash(), password) and stored is not None
        if not valid:
            return self._failed(client), None
        with self._lock:
            self._verified[remembered] = None
            while len(self._verified) > self.max_remembered:
                self._verified.popitem(last=False)
        return self.OK, OPERATOR

    def _failed(self, client: str) -> str:
        self.limiter.fail(client)
        return self.LIMITED if self.limiter.blocked(client) else self.BAD


# Endpoints anyone may reach: the webhooks authenticate themselves, load balancers probe /healthz,
# and the stylesheet holds nothing.
OPEN_ENDPOINTS = frozenset({"api.healthz", "status.static", "static"})


def current_viewer() -> Viewer:
    """Who logged in for this request (set by ``require_login``)."""
    from flask import g

    return g.viewer


def require_login():
    """``before_request``: the status page, ``/api/*`` and ``/metrics`` need a login unless the
    request comes straight from loopback (the operator).  None lets the request through, with
    ``g.viewer`` saying who it is."""
    from flask import g, jsonify, request

    from publisher.service.web import services

    if request.endpoint is None or request.blueprint == "webhooks" or request.endpoint in OPEN_ENDPOINTS:
        return None
    if ClientAddresses.is_local(request.environ):
        g.viewer = OPERATOR
        return None
    shared = services()
    login = shared.login
    if not login.configured:
        return jsonify(status="forbidden", reason="served only to loopback: configure [web] users or read_tokens"
                       " to read it from elsewhere"), 403
    client = shared.clients.client(request.environ)
    verdict, viewer = login.authenticate(request.authorization, client)
    if verdict == Login.OK:
        g.viewer = viewer
        return None
    if verdict == Login.LIMITED:
        return jsonify(status="rate-limited", reason="too many failed logins; try again later"), 429
    response = jsonify(status="unauthorized", reason="log in with a [web] user (Basic) or a read token (Bearer)")
    response.status_code = 401
    scheme = "Basic" if login.users else "Bearer"
    response.headers["WWW-Authenticate"] = f'{scheme} realm="zone-publisher", charset="UTF-8"'
    return response
