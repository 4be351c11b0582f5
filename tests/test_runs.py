"""Run records round-trip through SQLite; zone states are the latest outcome per zone and provider."""

from publisher.model import Change, Finding
from publisher.service.runs import FAILED, OK, PROBLEMS, RunRecord, RunStore, ZoneOutcome

FINDING = Finding("error", "bad-ttl", "example.com.", "example.com.zone", 3, "TTL out of range")


def test_record_round_trip_and_zone_states(state_location):
    store = RunStore(state_location)
    first = RunRecord("example/dns", "push", PROBLEMS, 1.0, 2.0, commit="a" * 40, author_email="a@example.org",
                      zones=(ZoneOutcome("example.com.", "p", "kept-last-good", (), (FINDING,)),
                             ZoneOutcome("example.net.", "p", "applied",
                                         (Change("create", "www.example.net.", "A", 60, (), ("192.0.2.1",)),))),
                      timings={"fetch": 0.1})
    first_id = store.record(first)
    loaded = store.get(first_id)
    assert loaded.zones == first.zones and loaded.timings == {"fetch": 0.1} and loaded.id == first_id
    assert loaded.all_findings == (FINDING,)
    assert loaded.to_dict()["zones"][1]["changes"][0]["new"] == ["192.0.2.1"]
    listed = loaded.to_dict(include_changes=False)["zones"][1]
    assert "changes" not in listed and listed["change_count"] == 1

    second_id = store.record(RunRecord("example/dns", "poll", FAILED, 3.0, 4.0,
                                       zones=(ZoneOutcome("example.com.", "p", "failed", error="p: timeout"),)))
    states = {(o.zone, o.provider): (run_id, o.status) for run_id, _, o in store.zone_states()}
    assert states == {("example.com.", "p"): (second_id, "failed"), ("example.net.", "p"): (first_id, "applied")}
    assert [r.id for r in store.recent()] == [second_id, first_id]
    assert store.counts() == {PROBLEMS: 1, FAILED: 1}
    assert store.get(999) is None
    assert not RunRecord("r", "push", OK, 0, 0).has_problems


def test_record_and_what_follows_commit_together_or_not_at_all(state_location):
    import pytest

    from publisher.service.notify import MAIL, Outbox

    store, outbox = RunStore(state_location), Outbox(state_location)

    def mail_then_crash(db, run_id):
        outbox.add(MAIL, ["ops@example.org"], b"mail", run_id=run_id, db=db)
        raise RuntimeError("crash before the job is finished")

    with pytest.raises(RuntimeError):
        store.record(RunRecord("r", "push", PROBLEMS, 0, 1), then=mail_then_crash)
    assert store.recent() == [] and outbox.pending() == 0
    run_id = store.record(RunRecord("r", "push", PROBLEMS, 0, 1),
                          then=lambda db, run_id: outbox.add(MAIL, ["ops@example.org"], b"m", run_id=run_id, db=db))
    assert store.get(run_id) is not None and outbox.pending() == 1


def test_prune_keeps_the_newest_n_and_everything_younger_than_the_age(state_location):
    day = 86400.0
    store = RunStore(state_location)
    ids = {}
    for i in range(1, 21):  # run i finished on day i
        zones = (ZoneOutcome("example.com.", "p", "applied", (), ()),) if i != 3 else (
            ZoneOutcome("old.example.", "p", "applied", (), ()),)  # the only run that has this zone
        ids[i] = store.record(RunRecord("r", "push", OK, i * day - 10, i * day, zones=zones))
    assert store.prune(before=10 * day, keep_newest=15) == 4  # days 1, 2, 4, 5: old and not among the newest 15
    assert sorted(r.id for r in store.recent(100)) == [ids[3]] + [ids[i] for i in range(6, 21)]
    assert store.prune(before=18 * day, keep_newest=2) == 12  # days 6-17; 18 is young, 19 and 20 the newest
    assert sorted(r.id for r in store.recent(100)) == [ids[3], ids[18], ids[19], ids[20]]
    # The status page still knows every zone's latest outcome, and no zone row is left orphaned.
    assert {(o.zone, run_id) for run_id, _, o in store.zone_states()} == {("old.example.", ids[3]),
                                                                          ("example.com.", ids[20])}
    orphans = "SELECT COUNT(*) FROM run_zones WHERE run_id NOT IN (SELECT id FROM runs)"
    assert store._connection.execute(orphans).fetchone()[0] == 0
    assert store.prune(before=100 * day, keep_newest=0) == 2  # only the zones' latest runs stay
    store.close()
