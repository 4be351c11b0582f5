"""Credentials out of text that leaves the process: logs, pages, API answers, mail.

``[source] url`` may carry credentials (``https://user:TOKEN@host/repo.git``, whether written in the
file or read through ``env:``/``file:``); git needs them, nothing else does.  Every place that shows
or stores a source URL or a message that may quote one (git's errors do) passes it through
:func:`redact`, so there is one definition of what is hidden.
"""

from __future__ import annotations

import re

REDACTED = "[redacted]"

# scheme://userinfo@ : the userinfo (user, user:password, or a token as user) is hidden.  ssh's
# user name (``ssh://git@host``) is no secret, but one rule for every scheme keeps this simple.
_URL_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s@'\"<>]+@")


def redact(text: str) -> str:
    """``text`` with the credentials of every URL in it replaced by ``[redacted]``."""
    return _URL_USERINFO.sub(r"\1" + REDACTED + "@", text)
