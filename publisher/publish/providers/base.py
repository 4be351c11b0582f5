"""The provider interface every DNS backend implements, and its capabilities as data.

A provider reads what a server serves for a zone and applies a list of RRset changes to it.  The
diff engine (``publisher.publish.plan``) is shared; providers never decide *what* to change, only *how*.
Every provider passes the same conformance suite (``tests/test_providers_conformance.py``) against a
real server.
"""

from __future__ import annotations

from typing import NamedTuple, Protocol, Sequence

from publisher.model import Change, Record


class ProviderError(Exception):
    """A provider could not read or apply; the message names provider and zone, never secrets."""


class ConcurrentChangeError(ProviderError):
    """The zone changed on the server since it was read (SOA serial prerequisite failed)."""


class Capabilities(NamedTuple):
    """What a provider can hold and do, checked by the planner before any change is made."""

    record_types: frozenset[str]  # types it can store
    can_create_zones: bool  # creates a missing zone itself (PowerDNS, zone files)
    native_alias: bool = False  # stores ALIAS itself; otherwise ALIAS is flattened to A/AAAA
    configures_secondaries: bool = False  # can set also-notify/allow-transfer itself


class Snapshot(NamedTuple):
    """What a provider serves for one zone: every record except the SOA, plus the SOA serial."""

    records: tuple[Record, ...]
    serial: int
    soa: Record | None = None


class Provider(Protocol):
    """A DNS backend.  Construct from its ``[[provider]]`` configuration table."""

    name: str
    capabilities: Capabilities

    def serial(self, origin: str) -> int | None:
        """The zone's current SOA serial, cheaply (one query), or None when the zone is absent."""

    def read(self, origin: str) -> Snapshot | None:
        """Every record the server serves for the zone (AXFR, API), or None when absent."""

    def apply(self, origin: str, changes: Sequence[Change], soa: Record, expected_serial: int | None) -> int:
        """Apply ``changes`` and set the SOA to ``soa`` (whose serial is the new one).

        ``expected_serial`` guards against concurrent edits: when the server's serial differs,
        raise ConcurrentChangeError and change nothing more.  Returns the serial now served.
        """

    def create_zone(self, origin: str, soa: Record, nameservers: Sequence[Record]) -> None:
        """Create a zone holding ``soa`` and ``nameservers`` (the apex NS records, followed by the
        in-zone A/AAAA glue of their targets); raise ProviderError with instructions when not capable."""

    def delete_zone(self, origin: str) -> None:
        """Remove the whole zone (only ever called for an explicit, forced deletion)."""
