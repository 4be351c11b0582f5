"""The provider interface every DNS backend implements, and its capabilities as data.

A provider reads what a server serves for a zone and applies a list of RRset changes to it.  The
diff engine (``publisher.publish.plan``) is shared; providers never decide *what* to change, only *how*.
Every provider passes the same conformance suite (``tests/test_providers_conformance.py``) against a
real server.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any, Callable, Mapping, NamedTuple, Protocol, Sequence

from publisher.model import Change, Finding, Record


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
    # The host writes the zone's SOA itself (hosted DNS: Route 53 keeps serial 1): the publisher's
    # SOA is neither sent nor compared, and "serial" is a fingerprint of the records read.
    host_soa: bool = False
    # Reads the serials of many zones in one request (``ReadsSerialsInBulk``): the plan asks once
    # per run instead of once per zone.
    bulk_serials: bool = False
    # Defers the work that is done once for many zones (checking, reloading) to the end of the
    # run (``BatchesRuns``): ``apply``/``create_zone`` only stage, ``finish_run`` commits.
    batches_runs: bool = False
    # ``create_zone`` takes every record of the new zone, not only its apex NS and glue, and
    # returns the serial served: a new zone is one call, with no apply after it.
    creates_filled_zones: bool = False
    # How many zones the orchestrator may apply at once (each zone still on its own): a server
    # that commits every call to disk (PowerDNS's sqlite3 backend) serves several in the time of one.
    parallel_applies: int = 1


class Option(NamedTuple):
    """One key of a provider type's ``[[provider]]`` table."""

    kind: type | tuple[type, ...]  # what TOML must give (an int is accepted for a float)
    required: bool = False
    secret: bool = False  # may be "env:NAME" / "file:PATH"; masked in reprs and logs
    path: bool = False  # a path, relative to the configuration file


class OptionSchema(NamedTuple):
    """The keys one provider type takes, declared beside the provider (``OPTIONS`` in its module);
    ``publisher.config`` checks every ``[[provider]]`` table against it."""

    options: Mapping[str, Option]
    # Keys the schema does not list are passed through to the provider (the parameters of an
    # octoDNS class): each may be a secret, so all are resolved and masked.  Without it an
    # unlisted key is a warning.
    pass_through: bool = False
    exclusive: tuple[tuple[str, str], ...] = ()  # pairs of keys that cannot both be set
    # Why a table that passed the checks above still cannot work (a missing package), or None.
    check: Callable[[Mapping[str, Any]], str | None] | None = None

    def secret_keys(self, keys: Sequence[str]) -> frozenset[str]:
        """Which of ``keys`` hold secrets under this schema."""
        return frozenset(k for k in keys if (self.options[k].secret if k in self.options else self.pass_through))


def schema(**options: Option) -> Mapping[str, Option]:
    return MappingProxyType(options)


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

    def create_zone(self, origin: str, soa: Record, nameservers: Sequence[Record]) -> int | None:
        """Create a zone holding ``soa`` and ``nameservers`` (the apex NS records, followed by the
        in-zone A/AAAA glue of their targets; with ``creates_filled_zones``, every record of the
        zone) and return the serial served (None: unknown); raise ProviderError with instructions
        when not capable."""

    def delete_zone(self, origin: str) -> None:
        """Remove the whole zone (only ever called for an explicit, forced deletion)."""


class PreparesRecords(Protocol):
    """Optional: a provider whose host stores records in its own form (octoDNS's model joins TXT
    strings, escapes ``;``) or limits them beyond their type says so before anything is sent."""

    def prepare(self, origin: str, records: Sequence[Record]) -> tuple[tuple[Record, ...], tuple[Finding, ...]]:
        """``records`` as the host will serve them (so a re-plan is empty), and a finding for
        each record the host cannot hold or that it changes; pure, no I/O."""


class ReadsSerialsInBulk(Protocol):
    """Optional (``Capabilities.bulk_serials``): every zone's serial in one go."""

    def serials(self, origins: Sequence[str]) -> Mapping[str, int | None]:
        """The serial of each of ``origins`` (None when the zone is absent), exactly what
        ``serial(origin)`` answers for it; raise ProviderError when the listing cannot be read."""


class BatchesRuns(Protocol):
    """Optional (``Capabilities.batches_runs``): a run's changes committed together at its end.

    Between ``begin_run()`` and ``finish_run()`` the provider may stage what ``apply``,
    ``create_zone``, ``delete_zone`` and ``set_secondaries`` do (``read``/``serial`` see the staged
    zone); ``finish_run`` does the per-run work once (one check of every staged zone, one reload)
    and keeps serving the previous version of any zone that fails it.  Outside a run every call
    takes effect at once, as for any provider.
    """

    def begin_run(self) -> None:
        """Start staging."""

    def finish_run(self) -> Mapping[str, str]:
        """Commit what was staged; the zones that failed at the end, each with its error message
        (naming provider and zone).  Always ends the run, also when it raises ProviderError (then
        every staged zone is left as it was before the run)."""
