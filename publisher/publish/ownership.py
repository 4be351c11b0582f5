"""Which repository owns each zone, in the state database: zone -> repository key.

Several repositories on one instance may share providers; a zone must still belong to one of them,
or a customer could take over another's zone by adding a file of the same name.  A repository
claims a zone when it first publishes it (``claim``: one INSERT, so of two repositories racing for
a new zone exactly one wins, whatever process each runs in), keeps it while it publishes it, and
gives it back when its deletion is applied (``release``).  A plan only asks (``owners``).

The SQL is plain (``INSERT ... ON CONFLICT DO NOTHING``) and runs on SQLite and PostgreSQL alike
(``publisher/database.py``), so instances sharing one PostgreSQL agree on every zone's owner.
"""

from __future__ import annotations

import time
from typing import Iterable

from publisher.database import REAL, TEXT, Column, PerThreadStore, Table

TABLES = (
    Table("zone_owners", (Column("zone", TEXT, True), Column("repository", TEXT, True),
                          Column("claimed_at", REAL, True)), primary_key=("zone",)),
)


class OwnershipStore(PerThreadStore):
    """Zone ownership on the state database (``[state] path`` or ``url``): one connection per thread."""

    TABLES = TABLES

    def __enter__(self) -> "OwnershipStore":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def owner(self, zone: str) -> str | None:
        """The key of the repository that owns ``zone``, or None."""
        row = self._connection.execute("SELECT repository FROM zone_owners WHERE zone = ?", (_name(zone),)).fetchone()
        return None if row is None else row["repository"]

    def owners(self, zones: Iterable[str] | None = None) -> dict[str, str]:
        """{zone: repository key} of ``zones`` that have an owner (every owned zone when None)."""
        rows = self._connection.execute("SELECT zone, repository FROM zone_owners").fetchall()
        owned = {row["zone"]: row["repository"] for row in rows}
        if zones is None:
            return owned
        return {zone: owned[_name(zone)] for zone in zones if _name(zone) in owned}

    def zones(self, repository: str) -> tuple[str, ...]:
        """The zones ``repository`` owns, sorted."""
        rows = self._connection.execute("SELECT zone FROM zone_owners WHERE repository = ? ORDER BY zone",
                                        (repository,)).fetchall()
        return tuple(row["zone"] for row in rows)

    def claim(self, zone: str, repository: str) -> bool:
        """Make ``repository`` the owner of ``zone`` unless another repository owns it; True when
        ``repository`` owns it afterwards.  The primary key decides a race: one INSERT wins."""
        db = self._connection
        db.execute("INSERT INTO zone_owners (zone, repository, claimed_at) VALUES (?, ?, ?)"
                   " ON CONFLICT (zone) DO NOTHING", (_name(zone), repository, time.time()))
        row = db.execute("SELECT repository FROM zone_owners WHERE zone = ?", (_name(zone),)).fetchone()
        return row is not None and row["repository"] == repository

    def release(self, zone: str, repository: str) -> None:
        """``repository`` no longer owns ``zone`` (its deletion was applied); another may claim it."""
        self._connection.execute("DELETE FROM zone_owners WHERE zone = ? AND repository = ?",
                                 (_name(zone), repository))


def _name(zone: str) -> str:
    """Zones are filed as the orchestrator names them: lower case, with the final dot."""
    zone = zone.strip().lower()
    return zone if zone.endswith(".") else zone + "."


__all__ = ["OwnershipStore"]
