"""Webhook URL tokens: generated at random, stored only as SHA-256 hashes, compared in constant time.

The token is the secret part of ``/notifications/<token>/push``.  Configuration holds
``"sha256:<hex>"`` entries, several at once so a token can be rotated without downtime.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Iterable

PREFIX = "sha256:"


class TokenConfigError(ValueError):
    """A configured webhook token is not of the form ``sha256:<64 hex digits>``."""


def generate_token(nbytes: int = 32) -> str:
    """A new URL-safe random token (``nbytes`` of entropy)."""
    return secrets.token_urlsafe(nbytes)


def hash_token(token: str) -> str:
    """The configuration form of ``token``: ``sha256:<hex>``."""
    return PREFIX + hashlib.sha256(token.encode("utf-8")).hexdigest()


def config_line(token: str) -> str:
    """The TOML line that accepts ``token``."""
    return f'tokens = ["{hash_token(token)}"]'


class TokenSet:
    """The accepted token hashes.  ``matches`` compares against every entry, without early exit,
    so neither timing nor the number of configured tokens leaks which one (if any) was close."""

    def __init__(self, hashes: Iterable[str]) -> None:
        digests = []
        for entry in hashes:
            entry = str(entry).strip()
            hex_part = entry[len(PREFIX):] if entry.lower().startswith(PREFIX) else ""
            try:
                digest = bytes.fromhex(hex_part)
            except ValueError:
                digest = b""
            if len(digest) != 32:
                # Never echo the entry: it might be a plain token pasted by mistake.
                raise TokenConfigError(
                    "[webhook] tokens entries must be 'sha256:<64 hex digits>'; run `zone-publisher token`")
            digests.append(digest)
        self._digests = tuple(digests)

    def __len__(self) -> int:
        return len(self._digests)

    def matches(self, candidate: str) -> bool:
        """True when ``candidate`` hashes to one of the configured entries."""
        digest = hashlib.sha256(candidate.encode("utf-8", "surrogateescape")).digest()
        found = False
        for expected in self._digests:
            found |= hmac.compare_digest(digest, expected)
        return found
