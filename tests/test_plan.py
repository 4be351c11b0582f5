"""Unit tests of the diff engine, ordering, plans, checksums and safety checks (pure, fast)."""

from __future__ import annotations

from hypothesis import given, settings, strategies as st

from publisher.model import CREATE, DELETE, UPDATE, IgnoreRule, Record
from publisher.publish.plan import IgnoreIndex, diff_records


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


def test_records_a_signing_server_maintains_are_left_alone():
    current = [rec("example.com.", "RRSIG", "A 13 2 300 20261231000000 20261201000000 12345 example.com. AAAA"),
               rec("example.com.", "NSEC", "www.example.com. A NS SOA RRSIG NSEC DNSKEY"),
               rec("example.com.", "NSEC3PARAM", "1 0 0 -"),
               rec("example.com.", "TYPE65534", "\\# 5 0d30390001"),
               rec("example.com.", "DNSKEY", "257 3 13 AAAA"), rec("example.com.", "CDS", "12345 13 2 AAAA"),
               rec("example.com.", "A", "192.0.2.1")]
    assert diff_records([rec("example.com.", "A", "192.0.2.1")], current) == ()
    # git may still publish its own keys: they are added, the server's are kept.
    (change,) = diff_records([rec("example.com.", "A", "192.0.2.1"), rec("example.com.", "DNSKEY", "256 3 13 BBBB")],
                             current)
    assert change.action == UPDATE and change.new == ("256 3 13 BBBB", "257 3 13 AAAA")


def test_ignored_records_are_never_deleted_and_never_lose_data():
    ignores = (IgnoreRule("%.dyn.example.com.", "A"), IgnoreRule("acme.example.com.", "*"))
    current = [rec("h1.dyn.example.com.", "A", "192.0.2.1"), rec("acme.example.com.", "TXT", '"token"'),
               rec("gone.example.com.", "A", "192.0.2.3")]
    desired = [rec("acme.example.com.", "TXT", '"mine"')]
    changes = diff_records(desired, current, ignores=ignores)
    assert [(c.action, c.name) for c in changes] == [(UPDATE, "acme.example.com."), (DELETE, "gone.example.com.")]
    assert changes[0].new == ('"mine"', '"token"')


_LABELS = st.sampled_from(["a", "b", "ab", "_acme-challenge", "x-1", "%", "a%", "%b", "a%b"])
_TYPES = st.sampled_from(["A", "TXT", "*", ""])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.lists(_LABELS, min_size=1, max_size=3), _TYPES), max_size=8),
       st.lists(st.lists(st.sampled_from(["a", "b", "ab", "_acme-challenge", "x-1", "aab", "ba"]),
                         min_size=1, max_size=4), min_size=1, max_size=8),
       st.sampled_from(["A", "TXT", "MX"]))
def test_ignore_index_agrees_with_the_rules_one_by_one(patterns, names, rtype):
    rules = [IgnoreRule(".".join(labels) + ".example.com.", t) for labels, t in patterns]
    index = IgnoreIndex(rules)
    for labels in names:
        name = ".".join(labels) + ".example.com."
        assert index.protects(name, rtype) == any(rule.matches(name, rtype) for rule in rules), (name, rules)


def test_20k_ignore_rules_over_20k_records_plan_in_bounded_work(monkeypatch):
    """Issue 8: rules were tried one by one against every name (20k x 20k took 114 s).  Each
    record may now be compared with the few rules that share its prefix, suffix and type only."""
    count = 20_000
    rules = tuple(IgnoreRule(f"keep{i}.example.com.", "TXT") if i % 2 else
                  IgnoreRule(f"_acme-challenge.%.h{i}.example.com.", "TXT") for i in range(count))
    current = tuple(Record(f"r{i}.h{i}.example.com.", "TXT", 300, f'"{i}"') for i in range(count))
    current += tuple(Record(f"_acme-challenge.x.h{i}.example.com.", "TXT", 300, '"t"') for i in range(0, 200, 2))
    current += tuple(Record(f"keep{i}.example.com.", "TXT", 300, '"k"') for i in range(1, 200, 2))
    budget = 2 * len(current)
    evaluations = 0
    original = IgnoreRule.matches

    def counted(rule, name, rtype):
        nonlocal evaluations
        evaluations += 1
        if evaluations > budget:
            raise AssertionError(f"more than {budget} pattern evaluations for {len(current)} records")
        return original(rule, name, rtype)

    monkeypatch.setattr(IgnoreRule, "matches", counted)
    changes = diff_records((), current, ignores=rules)
    assert len(changes) == count  # the 200 protected records stay, every other one is deleted
    assert not any(c.name.startswith(("_acme-challenge.", "keep")) for c in changes)
    assert evaluations == 200  # exactly one evaluation per protected record, none for the others


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


def test_parents_come_before_children():
    desired = [rec("b.a.example.com.", "A", "192.0.2.1"), rec("a.example.com.", "TXT", '"x"'),
               rec("example.com.", "MX", "0 ."), rec("a.example.com.", "A", "192.0.2.2"), rec("z.example.com.", "A", "192.0.2.3")]
    assert [(c.name, c.type) for c in diff_records(desired, [])] == [
        ("example.com.", "MX"), ("a.example.com.", "A"), ("a.example.com.", "TXT"), ("b.a.example.com.", "A"),
        ("z.example.com.", "A")]


def test_order_is_deterministic():
    desired = [rec(f"h{i}.example.com.", "A", f"192.0.2.{i}") for i in range(20)]
    assert diff_records(desired, []) == diff_records(list(reversed(desired)), [])


# -- applying changes to a record set -----------------------------------------------------------


from publisher.model import ERROR, WARNING, Change  # noqa: E402
from publisher.publish.plan import Plan, ZonePlan, apply_changes, capability_findings, safety_findings  # noqa: E402
from publisher.publish.soa import make_soa, next_serial, serial_gt, without_serial  # noqa: E402
from publisher.config import Defaults  # noqa: E402

_names = st.sampled_from(["example.com.", "a.example.com.", "b.example.com.", "c.b.example.com."])
_types = st.sampled_from(["A", "TXT", "CNAME", "MX"])
_records = st.lists(st.builds(lambda n, t, d, ttl: Record(n, t, ttl, f"{t}-{d}"), _names, _types,
                              st.integers(0, 3), st.sampled_from([300, 600])), max_size=12)


def _canonical(records):
    """Records as a set, with each RRset's TTL taken from its first record, as diff_records does."""
    ttl = {}
    for r in records:
        ttl.setdefault((r.name, r.type), r.ttl)
    return {(r.name, r.type, ttl[(r.name, r.type)], r.data) for r in records}


def _as_served(records):
    """A server holds one TTL per RRset."""
    ttl = {}
    for r in records:
        ttl.setdefault((r.name, r.type), r.ttl)
    return [r._replace(ttl=ttl[(r.name, r.type)]) for r in records]


@settings(max_examples=300, deadline=None)
@given(_records, _records)
def test_applying_the_diff_yields_the_desired_set(desired, current):
    current = _as_served(current)
    changes = diff_records(desired, current)
    assert _canonical(apply_changes(current, changes)) == _canonical(desired)
    assert diff_records(desired, apply_changes(current, changes)) == ()


@settings(max_examples=200, deadline=None)
@given(_records, _records)
def test_no_intermediate_state_has_cname_and_other_data(desired, current):
    """Applied one change at a time (a provider splitting messages), no step adds data that
    conflicts with a CNAME, unless the desired zone itself is invalid."""
    def conflicts(records):
        types = {}
        for r in records:
            types.setdefault(r.name, set()).add(r.type)
        return {n for n, t in types.items() if "CNAME" in t and len(t) > 1}

    bad_in_either = conflicts(desired) | conflicts(current)
    state = tuple(current)
    for change in diff_records(desired, current):
        state = apply_changes(state, [change])
        assert conflicts(state) <= bad_in_either


def test_apply_changes_keeps_records_it_is_not_told_about():
    current = [rec("x.example.com.", "TXT", '"by hand"'), rec("a.example.com.", "A", "192.0.2.1")]
    after = apply_changes(current, [Change(DELETE, "a.example.com.", "A", 300, old=("192.0.2.1",))])
    assert after == (Record("x.example.com.", "TXT", 300, '"by hand"'),)


# -- safety -------------------------------------------------------------------------------------

ORIGIN = "example.com."


def _zone_records(count):
    return [rec(f"h{i}.example.com.", "A", f"192.0.2.{i}") for i in range(count)]


def test_apex_ns_change_needs_force():
    changes = diff_records([rec(ORIGIN, "NS", "ns3.example.net.")], [rec(ORIGIN, "NS", "ns1.example.net.")])
    (finding,) = safety_findings(ORIGIN, changes, 1)
    assert (finding.severity, finding.code) == (ERROR, "apex-ns-change")
    assert "ns1.example.net." in finding.message and "--force" in finding.message
    (forced,) = safety_findings(ORIGIN, changes, 1, force=True)
    assert forced.severity == WARNING
    # A new zone gets its NS without any fuss.
    assert safety_findings(ORIGIN, changes, 0, zone_exists=False) == ()


def test_apex_ns_ttl_change_is_not_a_set_change():
    changes = diff_records([rec(ORIGIN, "NS", "ns1.example.net.", 3600)], [rec(ORIGIN, "NS", "ns1.example.net.", 300)])
    assert changes and safety_findings(ORIGIN, changes, 1) == ()


def test_delegation_ns_change_is_not_an_apex_change():
    changes = diff_records([rec("sub.example.com.", "NS", "ns9.example.net.")], [])
    assert safety_findings(ORIGIN, changes, 1) == ()


def test_delete_threshold():
    current = _zone_records(10)
    # 3 of 10 deleted is 30%: allowed; 4 of 10 is over.
    assert safety_findings(ORIGIN, diff_records(current[3:], current), 10) == ()
    (finding,) = safety_findings(ORIGIN, diff_records(current[4:], current), 10)
    assert finding.code == "too-many-deletes" and "4 of 10" in finding.message


def test_update_threshold_counts_ttl_changes_and_replaced_data():
    current = _zone_records(10)
    desired = [r._replace(ttl=900) for r in current[:4]] + current[4:]
    (finding,) = safety_findings(ORIGIN, diff_records(desired, current), 10)
    assert finding.code == "too-many-updates"
    # Adding an address to an RRset changes no existing record.
    grown = current + [rec(f"h{i}.example.com.", "A", f"198.51.100.{i}") for i in range(10)]
    assert safety_findings(ORIGIN, diff_records(grown, current), 10) == ()


def test_thresholds_do_not_apply_to_small_zones_and_are_configurable():
    current = _zone_records(9)
    assert safety_findings(ORIGIN, diff_records([], current), 9) == ()
    current = _zone_records(20)
    changes = diff_records(current[10:], current)
    assert safety_findings(ORIGIN, changes, 20, delete_threshold=0.5) == ()
    assert safety_findings(ORIGIN, changes, 20, delete_threshold=0.4)[0].code == "too-many-deletes"
    assert safety_findings(ORIGIN, changes, 20, min_records=50) == ()


def test_capability_findings_name_each_unsupported_type_once():
    records = [rec("a.example.com.", "ALIAS", "x.example.net."), rec("b.example.com.", "ALIAS", "y.example.net."),
               rec("a.example.com.", "A", "192.0.2.1")]
    (finding,) = capability_findings(ORIGIN, records, frozenset({"A"}), "pdns")
    assert finding.code == "unsupported-record-type" and "ALIAS" in finding.message and "'pdns'" in finding.message


# -- SOA serials (RFC 1982) ----------------------------------------------------------------------

import datetime  # noqa: E402

TODAY = datetime.date(2026, 11, 28)


def test_serial_prefers_the_date_form_and_always_increases():
    assert next_serial(None, TODAY) == 2026112800
    assert next_serial(2026010100, TODAY) == 2026112800
    assert next_serial(2026112800, TODAY) == 2026112801
    assert next_serial(2026112899, TODAY) == 2026112900  # past nn=99, still greater
    assert next_serial(7, TODAY) == 2026112800
    assert next_serial(2**32 - 1, TODAY) == 2026112800  # 2^32-1 is "behind" today's date in RFC 1982
    assert next_serial(2**32 - 1, datetime.date(3000, 1, 1)) == 0  # wraps, and 0 is "greater"
    assert serial_gt(0, 2**32 - 1)


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_next_serial_is_always_greater_in_serial_arithmetic(old):
    new = next_serial(old, TODAY)
    assert 0 <= new < 2**32 and serial_gt(new, old)


def test_soa_from_defaults():
    defaults = Defaults(nameservers=("ns1.example.net.", "ns2.example.net."), hostmaster="hostmaster.example.net.",
                        refresh=7200, retry=900, expire=604800, minimum=60)
    soa = make_soa(ORIGIN, 2026112800, defaults)
    assert soa.data == "ns1.example.net. hostmaster.example.net. 2026112800 7200 900 604800 60"
    assert without_serial(soa) == without_serial(make_soa(ORIGIN, 5, defaults))
    assert make_soa(ORIGIN, 1, Defaults(), ["ns.example.com."]).data.startswith("ns.example.com. ")


# -- plans as data --------------------------------------------------------------------------------

import hashlib  # noqa: E402
import json  # noqa: E402

from publisher.model import Finding  # noqa: E402


def _plan():
    changes = diff_records([rec("www.example.com.", "A", "192.0.2.1"), rec("a.example.com.", "TXT", '"a|b"')],
                           [rec("www.example.com.", "A", "192.0.2.9"), rec("old.example.com.", "A", "192.0.2.3")])
    return Plan((ZonePlan(ORIGIN, "primary", changes, (), 2026112800, 2026112801),
                 ZonePlan("example.org.", "primary", (), (), 5, 5)))


def test_plan_json_has_the_documented_shape():
    data = json.loads(json.dumps(_plan().to_json()))
    assert set(data) == {"zones", "checksum"}
    assert [set(z) for z in data["zones"]] == [{"zone", "provider", "changes", "create_zone", "delete_zone",
                                                 "blocked", "has_changes", "serial_before", "serial_after", "soa",
                                                 "soa_changed", "secondaries", "findings"}] * 2
    change = data["zones"][0]["changes"][0]
    assert set(change) == {"action", "name", "type", "ttl", "old", "new", "old_ttl"}
    assert {c["action"] for c in data["zones"][0]["changes"]} == {"create", "update", "delete"}
    assert len(data["checksum"]) == 64


def test_plan_json_carries_zone_creation_deletion_and_blocked_plans():
    """Issue 9: the JSON plan left out what the text plan shows beyond the record changes."""
    soa = rec(ORIGIN, "SOA", "ns1.example.net. hostmaster.example.net. 7 3600 600 1209600 300")
    blocked = Finding("error", "apex-ns-change", "example.org.", "example.org.lua", 0, "the apex NS set changes")
    plan = Plan((ZonePlan(ORIGIN, "primary", _plan().zone_plans[0].changes, (), None, 7, soa=soa, create_zone=True),
                 ZonePlan("gone.example.", "primary", (), (), 5, None, delete_zone=True),
                 ZonePlan("example.org.", "primary", (), (blocked,), 5, 6, soa=soa, soa_changed=True,
                          secondaries=("192.0.2.53",))))
    created, deleted, refused = json.loads(json.dumps(plan.to_json()))["zones"]
    assert (created["create_zone"], created["serial_before"], created["serial_after"]) == (True, None, 7)
    assert created["soa"] == soa.data and not created["blocked"] and created["has_changes"]
    assert deleted["delete_zone"] and not deleted["create_zone"] and deleted["has_changes"]
    assert refused["blocked"] and refused["soa_changed"] and refused["secondaries"] == ["192.0.2.53"]
    assert refused["findings"] == [blocked._asdict()]
    text = plan.to_text()
    assert "(new zone)" in text and "(DELETE ZONE)" in text and "[apex-ns-change]" in text
    # What the checksum commits to is unchanged: the same sha256 as the payload of the first version.
    legacy = [{"zone": p.zone, "provider": p.provider, "changes": [c.to_dict() for c in p.changes],
               "create_zone": p.create_zone, "delete_zone": p.delete_zone, "secondaries": p.secondaries}
              for p in plan.zone_plans]
    text = json.dumps(legacy, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert plan.checksum == hashlib.sha256(text.encode("utf-8")).hexdigest()


def test_checksum_is_stable_and_follows_the_changes_only():
    plan = _plan()
    assert plan.checksum == _plan().checksum
    # Serials do not matter; changes do.
    moved = Plan((ZonePlan(ORIGIN, "primary", plan.zone_plans[0].changes, (), 2026112900, 2026112901),))
    assert moved.checksum == plan.checksum
    other = Plan((ZonePlan(ORIGIN, "primary", plan.zone_plans[0].changes[:-1], (), 1, 2),))
    assert other.checksum != plan.checksum
    assert Plan((ZonePlan(ORIGIN, "secondary", plan.zone_plans[0].changes, (), 1, 2),)).checksum != plan.checksum


def test_text_and_markdown_list_every_change():
    plan = _plan()
    text = plan.to_text()
    assert "+ www.example.com. 300 A 192.0.2.1" in text and "- www.example.com. 300 A 192.0.2.9" in text
    assert "- old.example.com. 300 A 192.0.2.3" in text and "example.org. -> primary  no changes" in text
    assert plan.checksum in text
    markdown = plan.to_markdown()
    assert "`old.example.com.`" in markdown and '`` "a\\|b" ``' in markdown
    assert "example.org." not in markdown and "1 zone/provider pair(s) without changes." in markdown
