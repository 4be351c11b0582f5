"""Unit tests of the diff engine, ordering, plans, checksums and safety checks (pure, fast)."""

from __future__ import annotations

from publisher.model import CREATE, DELETE, UPDATE, IgnoreRule, Record
from publisher.plan import diff_records


def rec(name: str, rtype: str, data: str, ttl: int = 300) -> Record:
    return Record(name, rtype, ttl, data)


def test_identical_sets_make_no_changes():
    records = [rec("a.example.com.", "A", "192.0.2.1"), rec("example.com.", "MX", "10 mx.example.com.")]
    assert diff_records(records, list(reversed(records))) == ()


def test_create_update_delete_by_rrset():
    desired = [rec("a.example.com.", "A", "192.0.2.1"), rec("a.example.com.", "A", "192.0.2.2"),
               rec("new.example.com.", "TXT", '"hello"')]
    current = [rec("a.example.com.", "A", "192.0.2.1"), rec("old.example.com.", "A", "192.0.2.9")]
    changes = {(c.action, c.name, c.type): c for c in diff_records(desired, current)}
    assert set(changes) == {(UPDATE, "a.example.com.", "A"), (CREATE, "new.example.com.", "TXT"),
                            (DELETE, "old.example.com.", "A")}
    update = changes[(UPDATE, "a.example.com.", "A")]
    assert update.old == ("192.0.2.1",) and update.new == ("192.0.2.1", "192.0.2.2")
    delete = changes[(DELETE, "old.example.com.", "A")]
    assert delete.old == ("192.0.2.9",) and delete.new == ()


def test_ttl_only_change_is_an_update_with_both_ttls():
    (change,) = diff_records([rec("a.example.com.", "A", "192.0.2.1", 600)], [rec("a.example.com.", "A", "192.0.2.1", 300)])
    assert (change.action, change.ttl, change.old_ttl) == (UPDATE, 600, 300)
    assert change.old == change.new == ("192.0.2.1",)


def test_soa_is_never_part_of_the_diff():
    soa = rec("example.com.", "SOA", "ns1.example.net. hostmaster.example.net. 1 2 3 4 5")
    assert diff_records([], [soa]) == ()
    assert diff_records([soa], []) == ()


def test_ignored_records_are_never_deleted_and_never_lose_data():
    ignores = (IgnoreRule("%.dyn.example.com.", "A"), IgnoreRule("acme.example.com.", "*"))
    current = [rec("h1.dyn.example.com.", "A", "192.0.2.1"), rec("acme.example.com.", "TXT", '"token"'),
               rec("gone.example.com.", "A", "192.0.2.3")]
    desired = [rec("acme.example.com.", "TXT", '"mine"')]
    changes = diff_records(desired, current, ignores=ignores)
    assert [(c.action, c.name) for c in changes] == [(UPDATE, "acme.example.com."), (DELETE, "gone.example.com.")]
    assert changes[0].new == ('"mine"', '"token"')


def test_cname_replacing_a_deletes_the_a_before_creating_the_cname():
    changes = diff_records([rec("www.example.com.", "CNAME", "web.example.net.")],
                           [rec("www.example.com.", "A", "192.0.2.1"), rec("www.example.com.", "AAAA", "2001:db8::1")])
    actions = [(c.action, c.type) for c in changes]
    assert actions[-1] == (CREATE, "CNAME")
    assert sorted(actions[:-1]) == [(DELETE, "A"), (DELETE, "AAAA")]


def test_a_replacing_cname_deletes_the_cname_first():
    changes = diff_records([rec("www.example.com.", "A", "192.0.2.1")],
                           [rec("www.example.com.", "CNAME", "web.example.net.")])
    assert [(c.action, c.type) for c in changes] == [(DELETE, "CNAME"), (CREATE, "A")]


def test_unrelated_deletes_come_after_creates():
    changes = diff_records([rec("new.example.com.", "A", "192.0.2.1")], [rec("old.example.com.", "A", "192.0.2.1")])
    assert [c.action for c in changes] == [CREATE, DELETE]


def test_apex_ns_change_is_one_update_in_place():
    current = [rec("example.com.", "NS", "ns1.example.net."), rec("example.com.", "NS", "ns2.example.net.")]
    desired = [rec("example.com.", "NS", "ns1.example.net."), rec("example.com.", "NS", "ns3.example.net.")]
    (change,) = diff_records(desired, current)
    assert change.action == UPDATE and change.type == "NS"
    assert change.new == ("ns1.example.net.", "ns3.example.net.")


def test_order_is_deterministic():
    desired = [rec(f"h{i}.example.com.", "A", f"192.0.2.{i}") for i in range(20)]
    assert diff_records(desired, []) == diff_records(list(reversed(desired)), [])
