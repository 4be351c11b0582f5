"""The last-applied zone state: round trips, compact storage, concurrent readers; on SQLite and on
PostgreSQL (``state_location``), shared by instances there."""

from __future__ import annotations

import sqlite3
import threading

from publisher.model import Record
from publisher.publish.state import StateStore, decode_records, encode_records

SOA = Record("example.com.", "SOA", 3600, "ns1.example.net. hostmaster.example.net. 7 3600 600 1209600 300")


def test_round_trip_keeps_every_field(state_location):
    records = (Record("example.com.", "TXT", 300, '"two words" "and more"'), Record("a.example.com.", "A", 60, "192.0.2.1"))
    with StateStore(state_location) as store:
        assert store.get("primary", "example.com.") is None
        store.put("primary", "example.com.", 7, records, SOA)
        state = store.get("primary", "example.com.")
    assert state.serial == 7 and state.records == records and state.soa == SOA


def test_a_new_state_file_is_made_with_its_folder(tmp_path):
    with StateStore(tmp_path / "var" / "state.db") as store:
        store.put("primary", "example.com.", 7, [], SOA)
    assert (tmp_path / "var" / "state.db").exists()


def test_records_survive_reopening_and_forget_drops_them(state_location):
    path = state_location
    with StateStore(path) as store:
        store.put("primary", "example.com.", 1, [], SOA)
        store.put("files", "example.org.", 2, [], None)
    with StateStore(path) as store:
        assert store.zones() == (("files", "example.org."), ("primary", "example.com."))
        assert store.zones("primary") == (("primary", "example.com."),)
        assert store.serial("files", "example.org.") == 2 and store.get("files", "example.org.").soa is None
        store.forget("primary", "example.com.")
        assert store.get("primary", "example.com.") is None
        assert [row["zone"] for row in store.summary()] == ["example.org."]


def test_100k_records_are_one_small_row(state_location):
    records = tuple(Record(f"host{i}.example.com.", "A", 3600, f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}")
                    for i in range(100_000))
    blob = encode_records(records)
    assert len(blob) < 1_000_000  # about 40 bytes of text per record, compressed well under that
    assert decode_records(blob) == records
    with StateStore(state_location) as store:
        store.put("primary", "example.com.", 1, records, SOA)
        assert store.get("primary", "example.com.").records == records


def test_wal_mode_lets_another_connection_read_while_writing(tmp_path):
    path = tmp_path / "state.db"
    with StateStore(path) as store:
        store.put("primary", "example.com.", 1, [], SOA)
        assert store._connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        writer = sqlite3.connect(path, isolation_level=None)
        writer.execute("BEGIN IMMEDIATE")
        writer.execute("UPDATE published_zones SET serial = 2")
        assert store.serial("primary", "example.com.") == 1  # the reader is not blocked
        writer.execute("COMMIT")
        writer.close()
        assert store.serial("primary", "example.com.") == 2


def test_store_is_shared_safely_between_threads(state_location):
    with StateStore(state_location) as store:
        def write(n):
            for i in range(20):
                store.put("p", f"z{n}-{i}.example.", i, [Record("a.", "A", 1, "192.0.2.1")], None)
        threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(store.zones()) == 80


def test_two_instances_share_what_was_applied(postgres_server):
    """Two stores on one PostgreSQL database, as two instances have: what one applied, the other
    reads (so it plans against the zone as it is, not as it last saw it)."""
    url = postgres_server.new_database()
    first, second = StateStore(url), StateStore(url)
    first.put("primary", "example.com.", 9, [Record("a.example.com.", "A", 60, "192.0.2.9")], SOA)
    assert second.get("primary", "example.com.").serial == 9
    second.put("primary", "example.com.", 10, [], SOA)
    assert first.serial("primary", "example.com.") == 10
    first.close()


def test_secondaries_are_remembered_kept_by_put_and_dropped_by_forget(tmp_path):
    with StateStore(tmp_path / "state.db") as store:
        store.remember_secondaries("files", "example.com.", ["192.0.2.1"])  # no row yet: nothing kept
        store.put("files", "example.com.", 1, [], SOA)
        assert store.secondaries("files", "example.com.") is None  # unknown until seen or set
        store.remember_secondaries("files", "example.com.", ["192.0.2.9", "192.0.2.1", "192.0.2.9"])
        store.put("files", "example.com.", 2, [], SOA)
        assert store.secondaries("files", "example.com.") == ("192.0.2.1", "192.0.2.9")
        store.remember_secondaries("files", "example.com.", [])
        assert store.secondaries("files", "example.com.") == ()  # known to be none
        store.forget("files", "example.com.")
        store.put("files", "example.com.", 3, [], SOA)
        assert store.secondaries("files", "example.com.") is None


def test_a_database_from_before_the_secondaries_column_is_upgraded(tmp_path):
    path = tmp_path / "state.db"
    old = sqlite3.connect(path)
    old.execute("CREATE TABLE published_zones (provider TEXT NOT NULL, zone TEXT NOT NULL, serial INTEGER NOT NULL,"
                " soa TEXT NOT NULL, records BLOB NOT NULL, count INTEGER NOT NULL, applied_at REAL NOT NULL,"
                " PRIMARY KEY (provider, zone))")
    old.execute("INSERT INTO published_zones VALUES ('files', 'example.com.', 5, '', ?, 0, 0)", (encode_records([]),))
    old.commit()
    old.close()
    with StateStore(path) as store:
        assert store.serial("files", "example.com.") == 5 and store.secondaries("files", "example.com.") is None
        store.remember_secondaries("files", "example.com.", ["192.0.2.4"])
        assert store.secondaries("files", "example.com.") == ("192.0.2.4",)
