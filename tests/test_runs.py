"""Run records round-trip through SQLite; zone states are the latest outcome per zone and provider."""

from publisher.model import Change, Finding
from publisher.outcome import FAILED, OK, PROBLEMS, ZoneOutcome
from publisher.service.runs import RunRecord, RunStore

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


# -- reading one repository's runs (several repositories on one instance) ---------------------------

def test_each_repository_reads_its_own_runs_and_zone_states(tmp_path):
    store = RunStore(tmp_path / "state.db")

    def run(repository, finished, *zones, status=OK):
        return store.record(RunRecord(repository, "push", status, finished - 1, finished,
                                      zones=tuple(ZoneOutcome(zone, "p", state) for zone, state in zones)))

    a1 = run("a", 10.0, ("a.example.", "applied"), ("shared.example.", "applied"))
    b1 = run("b", 20.0, ("b.example.", "applied"), ("shared.example.", "failed"), status=FAILED)  # B tried A's zone
    plan = run("a#request/7", 30.0)
    a_b = run("a_b", 40.0, ("ab.example.", "applied"))  # "_" is no wildcard, "A" is not "a"
    big_a = run("A", 50.0, ("upper.example.", "applied"))
    # Instance-wide (the one-repository form): the latest outcome of each zone, whoever recorded it.
    assert {(o.zone, o.status) for _, _, o in store.zone_states()} >= {("shared.example.", "failed")}
    # Per repository: the latest of its own runs.
    assert [(run_id, o.zone, o.status) for run_id, _, o in store.zone_states("a")] == [
        (a1, "a.example.", "applied"), (a1, "shared.example.", "applied")]
    assert [o.zone for _, _, o in store.zone_states("a", limit=1, offset=1)] == ["shared.example."]
    grouped = store.zone_states_by_repository(["a", "b", "a_b", "A", "nobody"])
    assert {key: [o.zone for _, _, o in states] for key, states in grouped.items()} == {
        "a": ["a.example.", "shared.example."], "b": ["b.example.", "shared.example."], "a_b": ["ab.example."],
        "A": ["upper.example."], "nobody": []}
    assert grouped["b"] == store.zone_states("b")
    assert [r.id for r in store.recent(repository="a")] == [plan, a1]  # a request's plan is its repository's
    assert [r.id for r in store.recent(repository="a_b")] == [a_b]
    assert store.get(b1, repository="a") is None and store.get(b1, repository="b").id == b1
    assert store.get(plan, repository="a").id == plan
    assert {key: run.id for key, run in store.last_runs(["a", "b", "A", "nobody"]).items()} == {
        "a": a1, "b": b1, "A": big_a}  # the last deploy run: the plan is filed under a key of its own
    assert store.counts("a") == {OK: 2} and store.counts("b") == {FAILED: 1}
    assert store.counts_by_repository()["a#request/7"] == {OK: 1}
    assert store.last_finished("a") == 30.0 and store.last_finished("nobody") is None
    assert store.last_finished_by_repository() == {"a": 10.0, "b": 20.0, "a#request/7": 30.0, "a_b": 40.0, "A": 50.0}
    store.close()


def test_prune_keeps_each_repositorys_latest_outcome_of_a_zone(state_location):
    """B's later, refused attempt at A's zone must not make A's own latest outcome prunable."""
    store = RunStore(state_location)
    mine = store.record(RunRecord("a", "push", OK, 1.0, 2.0, zones=(ZoneOutcome("a.example.", "p", "applied"),)))
    store.record(RunRecord("b", "push", PROBLEMS, 3.0, 4.0, zones=(ZoneOutcome("a.example.", "p", "blocked"),)))
    assert store.prune(before=100.0, keep_newest=0) == 0
    assert [(run_id, o.status) for run_id, _, o in store.zone_states("a")] == [(mine, "applied")]
    store.close()
