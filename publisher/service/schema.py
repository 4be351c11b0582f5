"""Every store on the state database, for ``zone-publisher db upgrade`` and the start of ``serve``:
the schema is what these stores declare (``TABLES``, ``MIGRATIONS``), nothing else.  A new store
is added to ``STORES``."""

from __future__ import annotations

from pathlib import Path

from publisher.publish.ownership import OwnershipStore
from publisher.publish.state import StateStore
from publisher.database import Database, Migration, Table, upgrade
from publisher.service.forge import ForgeStore
from publisher.service.jobs import JobQueue
from publisher.service.notify import Outbox
from publisher.service.runs import RunStore

STORES = (JobQueue, RunStore, Outbox, ForgeStore, StateStore, OwnershipStore)


def tables() -> tuple[Table, ...]:
    return tuple(table for store in STORES for table in store.TABLES)


def migrations() -> tuple[Migration, ...]:
    return tuple(migration for store in STORES for migration in store.MIGRATIONS)


def upgrade_all(location: Database | Path | str) -> list[str]:
    """Create and migrate every store's tables (see ``database.upgrade``); what was done."""
    return upgrade(location, tables(), migrations())
