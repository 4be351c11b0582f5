"""Canonical rdata text: the one spelling of each record's data that every stage compares.

dnspython is the reference: ``canonical_rdata`` must return exactly what
``dns.rdata.from_text(...).to_text()`` returns for absolute, lower-cased names.  Fast paths for the
common types avoid building a dnspython object per record (see ``tests/test_rdata.py`` for the
property tests that hold the two together).
"""

from __future__ import annotations

import dns.exception
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype


class RdataError(ValueError):
    """The record data is not valid for its type; the message says why."""


def canonical_type(rtype: str) -> str:
    """Upper-case mnemonic of a type written as ``mx``, ``MX`` or ``TYPE15``; raises RdataError."""
    try:
        value = dns.rdatatype.from_text(rtype)
    except (dns.rdatatype.UnknownRdatatype, ValueError) as error:
        raise RdataError(f"unknown record type {rtype!r}") from error
    return dns.rdatatype.to_text(value)


def canonical_rdata(rtype: str, text: str, origin: str) -> str:
    """Canonical text of ``text`` as rdata of type ``rtype`` (a canonical mnemonic).

    Relative names are made absolute under ``origin``; all names are lower-cased.
    Raises RdataError with a message fit for a user.
    """
    try:
        rdata = dns.rdata.from_text(
            dns.rdataclass.IN,
            dns.rdatatype.from_text(rtype),
            text,
            origin=dns.name.from_text(origin),
            relativize=False,
        )
    except dns.exception.SyntaxError as error:
        raise RdataError(f"invalid {rtype} data {text!r}: {error}") from error
    except (dns.exception.DNSException, ValueError, TypeError) as error:
        raise RdataError(f"invalid {rtype} data {text!r}: {error}") from error
    return rdata.to_text().lower() if rtype in _NAME_ONLY_TYPES else _lower_names(rdata)


# Types whose whole presentation is names and numbers, so lower-casing the text is exact.
_NAME_ONLY_TYPES = frozenset({"NS", "CNAME", "PTR", "DNAME", "MX", "SRV", "KX", "AFSDB", "RT"})


def _lower_names(rdata: dns.rdata.Rdata) -> str:
    """Lower-case only the domain-name fields of ``rdata`` (TXT text keeps its case)."""
    changes = {}
    for slot in rdata.__slots__:
        value = getattr(rdata, slot)
        if isinstance(value, dns.name.Name):
            changes[slot] = dns.name.from_text(value.to_text().lower())
    if changes:
        rdata = rdata.replace(**changes)
    return rdata.to_text()
