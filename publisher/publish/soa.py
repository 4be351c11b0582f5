"""SOA management: the publisher owns every zone's SOA; zone files never set it.

The serial follows RFC 1982 serial arithmetic: a new serial is "greater" than the old one even
across the 2^32 wrap, and prefers the familiar date form YYYYMMDDnn when that is still ahead.
"""

from __future__ import annotations

import datetime as _dt
from typing import TYPE_CHECKING, Iterable, Sequence

from publisher.model import Record

if TYPE_CHECKING:  # providers import this module; config imports the providers' option schemas
    from publisher.config import Config, Defaults

SERIAL_MODULUS = 2**32
_HALF = 2**31


def serial_gt(a: int, b: int) -> bool:
    """RFC 1982: is serial ``a`` strictly after serial ``b``?"""
    return a != b and (a - b) % SERIAL_MODULUS < _HALF


def serial_after(serial: int, steps: int = 1) -> int:
    """``serial`` advanced by ``steps`` in RFC 1982 arithmetic (skipping nothing: 0 is valid)."""
    return (serial + steps) % SERIAL_MODULUS


def serial_of(soa_data: str) -> int:
    """The serial field of canonical SOA rdata text."""
    return int(soa_data.split()[2])


def part_serial(start: int, index: int, parts: int, target: int) -> int:
    """The serial set by part ``index`` (1-based) of an apply sent in ``parts`` messages or PATCHes,
    starting from the served serial ``start``: each part advances it by one, so secondaries see
    every step; the last part sets the planned ``target`` when that is still ahead."""
    if index == parts and serial_gt(target, serial_after(start, index - 1)):
        return target
    return serial_after(start, index)


def date_serial(today: _dt.date) -> int:
    """The first serial of ``today`` in YYYYMMDDnn form."""
    return int(today.strftime("%Y%m%d")) * 100


def next_serial(old: int | None, today: _dt.date | None = None) -> int:
    """A serial greater than ``old`` (RFC 1982): the date form when it is ahead, else ``old + 1``."""
    candidate = date_serial(today or _dt.datetime.now(_dt.timezone.utc).date())
    if old is None:
        return candidate
    if serial_gt(candidate, old):
        return candidate
    return (old + 1) % SERIAL_MODULUS


def soa_data(mname: str, rname: str, serial: int, defaults: Defaults) -> str:
    return f"{mname} {rname} {serial} {defaults.refresh} {defaults.retry} {defaults.expire} {defaults.minimum}"


def make_soa(origin: str, serial: int, defaults: Defaults, zone_nameservers: Sequence[str] = (),
             ttl: int | None = None) -> Record:
    """The SOA the publisher serves: primary = first configured nameserver (else the zone's own
    first apex NS, else the apex), contact = ``hostmaster``, timers from ``[defaults]``."""
    mname = (defaults.nameservers or tuple(zone_nameservers) or (origin,))[0]
    return Record(origin, "SOA", defaults.ttl if ttl is None else ttl, soa_data(mname, defaults.hostmaster, serial, defaults))


def zone_soa(config: Config, origin: str, serial: int, records: Iterable[Record]) -> Record:
    """The SOA published for ``origin`` with ``records`` (its apex NS as ``managed_records``
    leaves them) at ``serial``: what ``apply`` serves and ``build`` writes."""
    apex_ns = tuple(r.data for r in records if r.name == origin and r.type == "NS")
    return make_soa(origin, serial, config.defaults, apex_ns, config.ttl_for(origin))


def soa_serial(record: Record) -> int:
    return serial_of(record.data)


def without_serial(record: Record | None) -> tuple | None:
    """The SOA fields the configuration sets (everything but the serial), to detect a needed update."""
    if record is None:
        return None
    fields = record.data.split()
    return (record.ttl, *fields[:2], *fields[3:])
