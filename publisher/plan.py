"""The diff engine and plans: what must change at a provider so it serves the desired zone.

Pure functions over immutable data.  ``diff_records`` compares RRsets (name, type) and returns
``Change`` values in an order that never shows a server an invalid state, even when a provider
has to split the changes over several messages:

1. deletes of data that conflicts with what is about to be added (a CNAME and other data at one
   name), so the add that follows is legal;
2. updates (an RRset replaced in place: the apex NS set is never deleted then re-added);
3. creates;
4. the remaining deletes, last, so a name keeps resolving as long as possible.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Iterable, Sequence

from publisher.model import CREATE, DELETE, ERROR, UPDATE, WARNING, Change, Finding, IgnoreRule, Record

# Types a zone's SOA management owns; never part of a record diff.
_EXCLUDED_TYPES = frozenset({"SOA"})


def _name_sort_key(name: str) -> tuple[str, ...]:
    """DNS canonical-ish order: by labels from the root, so a zone prints parent before child."""
    return tuple(reversed(name.rstrip(".").split(".")))


def _group(records: Iterable[Record]) -> dict[tuple[str, str], tuple[int, frozenset[str]]]:
    """RRsets as {(name, type): (ttl, data set)}; the TTL of an RRset is its first record's."""
    ttls: dict[tuple[str, str], int] = {}
    datas: dict[tuple[str, str], set[str]] = {}
    for record in records:
        if record.type in _EXCLUDED_TYPES:
            continue
        key = (record.name, record.type)
        if key not in ttls:
            ttls[key] = record.ttl
            datas[key] = set()
        datas[key].add(record.data)
    return {key: (ttls[key], frozenset(datas[key])) for key in ttls}


def is_ignored(name: str, rtype: str, ignores: Sequence[IgnoreRule]) -> bool:
    """True when an ``ignore()`` rule protects (name, type) from deletion."""
    return any(rule.matches(name, rtype) for rule in ignores)


def diff_records(
    desired: Iterable[Record],
    current: Iterable[Record],
    *,
    ignores: Sequence[IgnoreRule] = (),
) -> tuple[Change, ...]:
    """The changes that turn ``current`` into ``desired``, by RRset, safely ordered.

    A TTL-only difference is an update.  RRsets matched by ``ignores`` are never deleted and
    never lose data: when git also defines them, git's data is added to what the server has.
    SOA records are ignored on both sides (the publisher manages the SOA itself).
    """
    want = _group(desired)
    have = _group(current)
    ignores = tuple(ignores)

    conflicting_deletes: list[Change] = []
    updates: list[Change] = []
    creates: list[Change] = []
    other_deletes: list[Change] = []

    # Names where desired data conflicts with current data of another type (CNAME rules).
    desired_types: dict[str, set[str]] = {}
    for name, rtype in want:
        desired_types.setdefault(name, set()).add(rtype)

    for key in sorted(set(want) | set(have), key=lambda k: (_name_sort_key(k[0]), k[1])):
        name, rtype = key
        protected = bool(ignores) and is_ignored(name, rtype, ignores)
        if key not in want:
            if protected:
                continue
            old_ttl, old = have[key]
            change = Change(DELETE, name, rtype, old_ttl, old=tuple(sorted(old)), old_ttl=old_ttl)
            types_here = desired_types.get(name, set())
            conflicts = ("CNAME" in types_here) or (rtype == "CNAME" and bool(types_here))
            (conflicting_deletes if conflicts else other_deletes).append(change)
            continue
        ttl, new = want[key]
        if key not in have:
            creates.append(Change(CREATE, name, rtype, ttl, new=tuple(sorted(new))))
            continue
        old_ttl, old = have[key]
        if protected:
            new = new | old  # git may add to an ignored RRset, never take away
        if new != old or ttl != old_ttl:
            updates.append(
                Change(UPDATE, name, rtype, ttl, old=tuple(sorted(old)), new=tuple(sorted(new)), old_ttl=old_ttl)
            )
    return tuple(conflicting_deletes + updates + creates + other_deletes)
