"""``zone-publisher db upgrade``: create the state database's tables, or bring those of an older
version up to date (rows kept), on SQLite (``[state] path``) or PostgreSQL (``[state] url``).
``serve`` does the same at start; this is for doing it first, on its own, before a roll-out."""

from __future__ import annotations

import sys

from publisher.config import Config, ConfigError, load_config


def run(args) -> int:
    from publisher.database import DatabaseError, StateDatabaseError, open_database
    from publisher.service.schema import upgrade_all

    try:
        config = load_config(args.config) if args.config else Config.default()
    except ConfigError as error:
        print(f"zone-publisher db: {error}", file=sys.stderr)
        return 2
    try:
        database = open_database(config.state.location)
        done = upgrade_all(database)
    except StateDatabaseError as error:
        print(f"zone-publisher db: {error}", file=sys.stderr)
        return 2
    except DatabaseError as error:  # a refused statement: the message names no password
        print(f"zone-publisher db: the state database {database.display} refused the upgrade: "
              f"{type(error).__name__}: {str(error).strip()}", file=sys.stderr)
        return 2
    for step in done:
        print(f"  {step}")
    print(f"zone-publisher db: the state database {database.display} is up to date"
          + (f" ({len(done)} change(s))" if done else " (nothing to do)"))
    return 0
