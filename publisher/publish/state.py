"""What the publisher last applied, per (provider, zone), in the state database (SQLite, or the
PostgreSQL database several instances share: each sees what the others applied).

One row per zone: the serial the provider served after our apply, the SOA we set, and the whole
record set as canonical text compressed with zlib, so a 100,000-record zone is one small blob read
in milliseconds instead of an 11-second AXFR.  The rows also list the zones published, which is
how a zone whose file was removed from git is recognised.

The service keeps its own tables (jobs, outbox) in the same database through its own modules.
"""

from __future__ import annotations

import time
import zlib
from typing import Iterable, NamedTuple

from publisher.model import Record
from publisher.database import BLOB, INTEGER, REAL, TEXT, Column, PerThreadStore, Table

TABLES = (
    Table("published_zones", (
        Column("provider", TEXT, True), Column("zone", TEXT, True), Column("serial", INTEGER, True),
        Column("soa", TEXT, True), Column("records", BLOB, True), Column("count", INTEGER, True),
        Column("applied_at", REAL, True),
        Column("secondaries", TEXT)),  # space-separated; NULL: not known (added later, upgraded in place)
        primary_key=("provider", "zone")),
)


class ZoneState(NamedTuple):
    """What a provider served for a zone right after the publisher last applied or read it."""

    provider: str
    zone: str
    serial: int
    soa: Record | None
    records: tuple[Record, ...]
    applied_at: float


def encode_records(records: Iterable[Record]) -> bytes:
    """Records as zlib-compressed "name ttl type data" lines (data may contain spaces, the rest not)."""
    text = "\n".join(f"{r.name} {r.ttl} {r.type} {r.data}" for r in records)
    return zlib.compress(text.encode("utf-8"), 6)


def decode_records(blob: bytes) -> tuple[Record, ...]:
    text = zlib.decompress(blob).decode("utf-8")
    if not text:
        return ()
    records = []
    for line in text.split("\n"):
        name, ttl, rtype, data = line.split(" ", 3)
        records.append(Record(name, rtype, int(ttl), data))
    return tuple(records)


def _soa_to_text(soa: Record | None) -> str:
    return "" if soa is None else f"{soa.name} {soa.ttl} {soa.data}"


def _soa_from_text(text: str) -> Record | None:
    if not text:
        return None
    name, ttl, data = text.split(" ", 2)
    return Record(name, "SOA", int(ttl), data)


class StateStore(PerThreadStore):
    """The publisher's state database.  Safe to share between threads (one connection per thread)
    and between instances (PostgreSQL)."""

    TABLES = TABLES

    def __enter__(self) -> "StateStore":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def get(self, provider: str, zone: str) -> ZoneState | None:
        row = self._connection.execute(
            "SELECT serial, soa, records, applied_at FROM published_zones WHERE provider = ? AND zone = ?",
            (provider, zone)).fetchone()
        if row is None:
            return None
        serial, soa, blob, applied_at = row
        return ZoneState(provider, zone, serial, _soa_from_text(soa), decode_records(bytes(blob)), applied_at)

    def serial(self, provider: str, zone: str) -> int | None:
        """The stored serial alone (no record decoding)."""
        row = self._connection.execute("SELECT serial FROM published_zones WHERE provider = ? AND zone = ?",
                                       (provider, zone)).fetchone()
        return None if row is None else row[0]

    def put(self, provider: str, zone: str, serial: int, records: Iterable[Record], soa: Record | None = None) -> None:
        records = tuple(records)
        blob = encode_records(records)
        self._connection.execute(  # the secondaries remembered for the zone stay as they are
            "INSERT INTO published_zones (provider, zone, serial, soa, records, count, applied_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (provider, zone) DO UPDATE SET serial = excluded.serial,"
            " soa = excluded.soa, records = excluded.records, count = excluded.count, applied_at = excluded.applied_at",
            (provider, zone, serial, _soa_to_text(soa), blob, len(records), time.time()))

    def secondaries(self, provider: str, zone: str) -> tuple[str, ...] | None:
        """The secondaries the provider was last seen or set to have for the zone; None: unknown."""
        row = self._connection.execute("SELECT secondaries FROM published_zones WHERE provider = ? AND zone = ?",
                                       (provider, zone)).fetchone()
        if row is None or row["secondaries"] is None:
            return None
        return tuple(ip for ip in row["secondaries"].split(" ") if ip)

    def remember_secondaries(self, provider: str, zone: str, ips: Iterable[str]) -> None:
        """Record the zone's secondaries at the provider (a zone with no state row is left alone)."""
        self._connection.execute("UPDATE published_zones SET secondaries = ? WHERE provider = ? AND zone = ?",
                                 (" ".join(sorted(set(ips))), provider, zone))

    def forget(self, provider: str, zone: str) -> None:
        """Drop what is known, so the next run reads the server in full (after a failed apply)."""
        self._connection.execute("DELETE FROM published_zones WHERE provider = ? AND zone = ?", (provider, zone))

    def zones(self, provider: str | None = None) -> tuple[tuple[str, str], ...]:
        """(provider, zone) pairs published, sorted."""
        if provider is None:
            rows = self._connection.execute("SELECT provider, zone FROM published_zones ORDER BY provider, zone")
        else:
            rows = self._connection.execute("SELECT provider, zone FROM published_zones WHERE provider = ? ORDER BY zone",
                                            (provider,))
        return tuple((p, z) for p, z in rows.fetchall())

    def summary(self) -> tuple[dict, ...]:
        """Per (provider, zone): serial, record count and time of the last apply, for the status page."""
        rows = self._connection.execute(
            "SELECT provider, zone, serial, count, applied_at FROM published_zones ORDER BY zone, provider").fetchall()
        return tuple({"provider": p, "zone": z, "serial": s, "records": c, "applied_at": t} for p, z, s, c, t in rows)
