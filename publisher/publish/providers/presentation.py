"""Which canonical rdata texts are "plain": no escapes, so the RFC 2136 provider can build their
wire form directly instead of through dnspython (see ``rfc2136.py``)."""

from __future__ import annotations

import re


_NAME = r"(?:[A-Za-z0-9_*-]{1,63}\.)+|\."  # absolute, no escapes
_STRING = r'"[ !#-\[\]-~]{0,255}"'  # printable ASCII without '"' or '\': dnspython prints it as is
_U16 = r"(?:0|[1-9][0-9]{0,4})"
_PATTERNS = {
    "NS": re.compile(rf"(?:{_NAME})\Z"),
    "CNAME": re.compile(rf"(?:{_NAME})\Z"),
    "PTR": re.compile(rf"(?:{_NAME})\Z"),
    "DNAME": re.compile(rf"(?:{_NAME})\Z"),
    "MX": re.compile(rf"{_U16} (?:{_NAME})\Z"),
    "SRV": re.compile(rf"{_U16} {_U16} {_U16} (?:{_NAME})\Z"),
    "TXT": re.compile(rf"{_STRING}(?: {_STRING})*\Z"),
    "SPF": re.compile(rf"{_STRING}(?: {_STRING})*\Z"),
    "CAA": re.compile(rf"(?:0|[1-9][0-9]?|1[0-9]{{2}}|2[0-4][0-9]|25[0-5]) [a-z0-9]+ {_STRING}\Z"),
}
_LOWER = frozenset({"NS", "CNAME", "PTR", "DNAME", "MX", "SRV"})
_MAX_U16 = 65535


def is_plain(rtype: str, text: str) -> bool:
    """True when ``text`` is canonical and needs no escapes, so its wire form is simple to build
    (NS, CNAME, PTR, DNAME, MX, SRV, TXT, SPF, CAA)."""
    pattern = _PATTERNS.get(rtype)
    return pattern is not None and pattern.match(text) is not None and _numbers_fit(rtype, text) and \
        (rtype not in _LOWER or text == text.lower())


def _numbers_fit(rtype: str, text: str) -> bool:
    if rtype == "MX":
        return int(text.split(" ", 1)[0]) <= _MAX_U16
    if rtype == "SRV":
        return all(int(field) <= _MAX_U16 for field in text.split(" ", 3)[:3])
    return True
