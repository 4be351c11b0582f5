"""Zone ownership in the state database (SQLite and PostgreSQL): one owner per zone, claimed
atomically, released."""

import threading

from publisher.publish.ownership import OwnershipStore


def test_a_zone_has_one_owner_until_released(state_location):
    with OwnershipStore(state_location) as store:
        assert store.owner("a.example.") is None
        assert store.claim("A.Example", "customer-a")  # filed as the orchestrator names zones
        assert store.claim("a.example.", "customer-a")  # claiming one's own again is fine
        assert not store.claim("a.example.", "customer-b")
        assert store.owner("a.example.") == "customer-a"
        assert store.owners(["a.example.", "b.example."]) == {"a.example.": "customer-a"}
        assert store.zones("customer-a") == ("a.example.",) and store.zones("customer-b") == ()
        store.release("a.example.", "customer-b")  # not its zone: nothing happens
        assert store.owner("a.example.") == "customer-a"
        store.release("a.example.", "customer-a")
        assert store.claim("a.example.", "customer-b") and store.owner("a.example.") == "customer-b"


def test_two_repositories_racing_for_a_new_zone_exactly_one_wins(state_location):
    # Each contender on a connection of its own, as two job threads or two processes (two instances
    # on one PostgreSQL) would be.
    stores = [OwnershipStore(state_location) for _ in range(8)]
    start = threading.Barrier(len(stores))
    wins: list[str] = []

    def contend(index: int) -> None:
        start.wait()
        for zone in range(50):
            if stores[index].claim(f"z{zone}.example.", f"repository-{index}"):
                wins.append(f"z{zone}")

    threads = [threading.Thread(target=contend, args=(index,)) for index in range(len(stores))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(wins) == sorted(f"z{zone}" for zone in range(50))  # each zone won once, by one
    owners = stores[0].owners()
    assert len(owners) == 50 and all(owner.startswith("repository-") for owner in owners.values())
    for store in stores:
        store.close()
