"""Which repository owns each zone, in the state database: zone -> repository key.

Several repositories on one instance may share providers; a zone must still belong to one of them,
or a customer could take over another's zone by adding a file of the same name.  A repository
claims a zone when it first publishes it (``claim``: one INSERT, so of two repositories racing for
a new zone exactly one wins, whatever process each runs in), keeps it while it publishes it, and
gives it back when its deletion is applied (``release``).  A plan only asks (``owners``).

The SQL is plain (``INSERT ... ON CONFLICT DO NOTHING``, no SQLite-only clause) so another database
can run it unchanged.  Like ``state.StateStore``: one connection, a lock, safe to share between threads.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path
from typing import Iterable

_SCHEMA = """
CREATE TABLE IF NOT EXISTS zone_owners (
    zone       TEXT PRIMARY KEY,
    repository TEXT NOT NULL,
    claimed_at REAL NOT NULL
)
"""


class OwnershipStore:
    """Zone ownership on one state database (``[state] path``)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, timeout=30, isolation_level=None)
        self._db.execute("PRAGMA busy_timeout=30000")
        if str(path) != ":memory:":
            self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> "OwnershipStore":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def owner(self, zone: str) -> str | None:
        """The key of the repository that owns ``zone``, or None."""
        with self._lock:
            row = self._db.execute("SELECT repository FROM zone_owners WHERE zone = ?", (_name(zone),)).fetchone()
        return None if row is None else row[0]

    def owners(self, zones: Iterable[str] | None = None) -> dict[str, str]:
        """{zone: repository key} of ``zones`` that have an owner (every owned zone when None)."""
        with self._lock:
            rows = self._db.execute("SELECT zone, repository FROM zone_owners").fetchall()
        owned = {zone: repository for zone, repository in rows}
        if zones is None:
            return owned
        return {zone: owned[_name(zone)] for zone in zones if _name(zone) in owned}

    def zones(self, repository: str) -> tuple[str, ...]:
        """The zones ``repository`` owns, sorted."""
        with self._lock:
            rows = self._db.execute("SELECT zone FROM zone_owners WHERE repository = ? ORDER BY zone",
                                    (repository,)).fetchall()
        return tuple(zone for (zone,) in rows)

    def claim(self, zone: str, repository: str) -> bool:
        """Make ``repository`` the owner of ``zone`` unless another repository owns it; True when
        ``repository`` owns it afterwards.  The primary key decides a race: one INSERT wins."""
        with self._lock:
            self._db.execute("INSERT INTO zone_owners (zone, repository, claimed_at) VALUES (?, ?, ?)"
                             " ON CONFLICT (zone) DO NOTHING", (_name(zone), repository, time.time()))
            row = self._db.execute("SELECT repository FROM zone_owners WHERE zone = ?", (_name(zone),)).fetchone()
        return row is not None and row[0] == repository

    def release(self, zone: str, repository: str) -> None:
        """``repository`` no longer owns ``zone`` (its deletion was applied); another may claim it."""
        with self._lock:
            self._db.execute("DELETE FROM zone_owners WHERE zone = ? AND repository = ?", (_name(zone), repository))


def _name(zone: str) -> str:
    """Zones are filed as the orchestrator names them: lower case, with the final dot."""
    zone = zone.strip().lower()
    return zone if zone.endswith(".") else zone + "."


__all__ = ["OwnershipStore"]
