"""TSIG keys: read from ``tsig-keygen`` files or given inline, turned into dnspython keys.

A key file holds one or more ``key "name" { algorithm hmac-sha256; secret "base64"; };`` blocks,
exactly what ``tsig-keygen`` writes and what ``named.conf``/``knot.conf`` operators already keep.
The secret never appears in ``repr`` or in error messages.
"""

from __future__ import annotations

import base64
import binascii
import re
from pathlib import Path
from typing import NamedTuple

import dns.name
import dns.tsig

_ALGORITHMS = {
    "hmac-md5": dns.tsig.HMAC_MD5,
    "hmac-md5.sig-alg.reg.int": dns.tsig.HMAC_MD5,
    "hmac-sha1": dns.tsig.HMAC_SHA1,
    "hmac-sha224": dns.tsig.HMAC_SHA224,
    "hmac-sha256": dns.tsig.HMAC_SHA256,
    "hmac-sha384": dns.tsig.HMAC_SHA384,
    "hmac-sha512": dns.tsig.HMAC_SHA512,
}

_KEY_BLOCK = re.compile(r'key\s+"?([^"\s{]+)"?\s*\{(.*?)\}\s*;', re.S)
_ALGORITHM = re.compile(r"algorithm\s+\"?([A-Za-z0-9.-]+)\"?\s*;")
_SECRET = re.compile(r'secret\s+"([^"]*)"\s*;')
# A quoted string first, kept as it is: a base64 secret may hold "//", which is no comment there.
_COMMENTS = re.compile(r'("[^"]*")|#[^\n]*|//[^\n]*|/\*.*?\*/', re.S)


class TsigError(ValueError):
    """The TSIG key is missing, malformed or uses an unknown algorithm; the message never holds the secret."""


class TsigKey(NamedTuple):
    """A TSIG key: name (absolute, lower-case), algorithm mnemonic (``hmac-sha256``), secret."""

    name: str
    algorithm: str
    secret: str  # base64, as in the key file

    def __repr__(self) -> str:  # keep the secret out of logs and tracebacks
        return f"TsigKey(name={self.name!r}, algorithm={self.algorithm!r}, secret=<hidden>)"

    def to_dnspython(self) -> dns.tsig.Key:
        """The key as dnspython wants it for ``Message.use_tsig`` and ``query.xfr``."""
        return dns.tsig.Key(self.name, self.secret, _ALGORITHMS[self.algorithm])


def make_key(name: str, algorithm: str, secret: str) -> TsigKey:
    """A validated key from its three parts (configuration given inline)."""
    algorithm = algorithm.lower().rstrip(".")
    if algorithm not in _ALGORITHMS:
        raise TsigError(f"unknown TSIG algorithm {algorithm!r} for key {name!r}")
    try:
        if not base64.b64decode(secret, validate=True):
            raise TsigError(f"TSIG key {name!r} has an empty secret")
    except binascii.Error as error:
        raise TsigError(f"TSIG key {name!r}: secret is not valid base64") from error
    return TsigKey(dns.name.from_text(name).to_text().lower(), algorithm, secret)


def parse_keys(text: str) -> tuple[TsigKey, ...]:
    """Every key block of a named.conf-style key file, in file order."""
    text = _COMMENTS.sub(lambda match: match.group(1) or "", text)
    keys = []
    for match in _KEY_BLOCK.finditer(text):
        name, body = match.group(1), match.group(2)
        algorithm = _ALGORITHM.search(body)
        secret = _SECRET.search(body)
        if algorithm is None or secret is None:
            raise TsigError(f"TSIG key {name!r}: needs both 'algorithm' and 'secret'")
        keys.append(make_key(name, algorithm.group(1), secret.group(1)))
    return tuple(keys)


def read_keyfile(path: Path | str, name: str | None = None) -> TsigKey:
    """The key named ``name`` (or the only/first key) from a ``tsig-keygen`` file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise TsigError(f"cannot read TSIG key file {path}: {error.strerror}") from error
    keys = parse_keys(text)
    if not keys:
        raise TsigError(f"no TSIG key found in {path}")
    if name is None:
        return keys[0]
    wanted = dns.name.from_text(name).to_text().lower()
    for key in keys:
        if key.name == wanted:
            return key
    raise TsigError(f"TSIG key {name!r} not found in {path}")
