"""The profile store on SQLite and on the real PostgreSQL: one interface, the same answers."""

from __future__ import annotations

from koppla.platform.profiles.graph import GuardrailHit, Link
from koppla.platform.profiles.identity import Identity
from koppla.platform.profiles.store import ProfileStore
from koppla.platform.profiles.stored import (
    Activity,
    Fact,
    Member,
    ProfileRow,
    StoredEvent,
    StoredFragment,
    Write,
)

ECID = Identity("ECID", "111")
EMAIL = Identity("Email", "ann@example.com")
CID = Identity("CustomerId", "7")
OTHER = Identity("ECID", "999")


def _graph(store: ProfileStore) -> None:
    """Ann: ECID + Email + CustomerId in graph g1; a stranger's ECID alone in g2."""
    change = Write()
    for node, identity, graph in (
        (1, ECID, "g1"),
        (2, EMAIL, "g1"),
        (3, CID, "g1"),
        (4, OTHER, "g2"),
    ):
        change.members[identity] = Member(identity, node, graph, 1000 * node, 2000 * node)
    change.links[(1, 2)] = Link(ECID, EMAIL, 10, 20)
    change.links[(2, 3)] = Link(CID, EMAIL, 30, 40)
    change.links[(1, 4)] = Link(ECID, OTHER, 5, 5, active=False)
    change.hits.append(GuardrailHit("namespace_limit", "g2", OTHER, "kept out", 5))
    store.write(change)


def test_a_graph_slice_holds_every_member_of_the_graphs_touched_and_their_links(
    store: ProfileStore,
) -> None:
    _graph(store)

    found = store.graph_slice([EMAIL])

    assert set(found.members) == {ECID, EMAIL, CID}
    assert {m.graph_id for m in found.members.values()} == {"g1"}
    assert set(found.links) == {(ECID, EMAIL), (CID, EMAIL)}
    both = store.graph_slice([EMAIL, OTHER])
    assert (ECID, OTHER) in both.links and not both.links[(ECID, OTHER)].active
    assert store.max_node() == 4


def test_members_links_and_hits_read_back(store: ProfileStore) -> None:
    _graph(store)

    members = store.members("g1")

    assert [m.identity for m in members] == [ECID, EMAIL, CID]
    links = store.graph_links(members)
    assert [(link.a, link.b) for link in links] == [(CID, EMAIL), (ECID, EMAIL)]
    assert store.member(Identity("Email", "nobody@example.com")) is None
    assert [h.identity for h in store.hits("g2")] == [OTHER]
    assert store.hits("g1") == []


def test_an_older_record_never_replaces_a_newer_one(store: ProfileStore) -> None:
    newer = StoredFragment("ds", CID, "r2", {"person": {"name": {"firstName": "Ann"}}}, 200)
    older = StoredFragment("ds", CID, "r1", {"person": {"name": {"firstName": "Anna"}}}, 100)
    store.write(Write(fragments={("ds", CID): newer}))
    store.write(Write(fragments={("ds", CID): older}))

    (kept,) = store.fragments([CID])

    assert kept.record_id == "r2" and kept.record["person"]["name"]["firstName"] == "Ann"


def test_a_tombstone_removes_older_records_and_is_remembered(store: ProfileStore) -> None:
    store.write(Write(fragments={("ds", CID): StoredFragment("ds", CID, "r1", {"a": 1}, 100)}))

    store.write(Write(tombstones={CID: 150}))
    store.write(Write(tombstones={CID: 120}))

    assert store.fragments([CID]) == []
    assert store.tombstones([CID, EMAIL]) == {CID: 150}


def test_events_are_stored_once_and_timelines_cut_back_to_the_newest(store: ProfileStore) -> None:
    events = [StoredEvent(f"e{n}", 1, "ds", n, "commerce.productViews", {"n": n}) for n in range(6)]
    store.write(Write(events=events, activity={1: Activity(0, 5, 6, None, None)}))
    store.write(Write(events=events[:2], event_counts={1: 3}))

    kept = store.events([1], newest_first=True)

    assert [e.event_id for e in kept] == ["e5", "e4", "e3"]
    assert store.known_events(["e0", "e5", "e9"]) == {"e5"}
    assert store.events([1], start_ms=4, end_ms=5)[0].body == {"n": 4}
    activity, _ = store.computed_inputs([1])
    assert activity[1].events == 3


def test_activity_merges_times_counts_and_keeps_the_newest_cart(store: ProfileStore) -> None:
    store.write(Write(activity={1: Activity(100, 200, 2, {"cartID": "old"}, 150)}))
    store.write(Write(activity={1: Activity(50, 180, 1, {"cartID": "older"}, 120)}))
    store.write(Write(activity={1: Activity(300, 300, 1, None, None)}))

    activity, facts = store.computed_inputs([1])

    assert activity[1] == Activity(50, 300, 4, {"cartID": "old"}, 150)
    assert facts == []


def test_order_facts_are_keyed_by_their_event(store: ProfileStore) -> None:
    fact = Fact("e1", 2, "000001", "placed", 99.5, "USD", 10)
    store.write(Write(order_facts=[fact]))
    store.write(Write(order_facts=[fact]))

    _, facts = store.computed_inputs([2])

    assert facts == [fact]


def test_profiles_are_upserted_and_removed_with_their_graph(store: ProfileStore) -> None:
    row = ProfileRow("g1", {"person": {}}, ["ECID:111"], ["ds"], 1, 2, 1, 9.0, None, 5)
    store.write(Write(profiles=[row]))
    store.write(Write(profiles=[ProfileRow("g1", {}, ["ECID:111"], [], 1, 3, 2, 19.0, None, 6)]))

    stored = store.profile("g1")

    assert stored is not None and stored.orders == 2 and stored.last_seen_ms == 3
    store.write(Write(removed_graphs={"g1"}))
    assert store.profile("g1") is None


def test_cursors_move_with_the_data_they_cover(store: ProfileStore) -> None:
    store.write(Write(cursors={"ds-a": 3, "ds-b": 0}))
    store.write(Write(cursors={"ds-a": 5}))

    assert store.cursors() == {"ds-a": 5, "ds-b": 0}


def test_a_new_default_policy_unsets_the_old_one(store: ProfileStore) -> None:
    store.save_policy("p1", "_xdm.context.profile", True, {"name": "one"}, 1)
    store.save_policy("p2", "_xdm.context.profile", True, {"name": "two"}, 2)

    rows = {policy_id: default for policy_id, _, default, _, _ in store.policy_rows()}

    assert rows == {"p1": False, "p2": True}
    assert store.delete_policy("p1") and not store.delete_policy("p1")


def test_rows_stream_a_whole_table(store: ProfileStore) -> None:
    _graph(store)

    parts = list(store.rows("identities", ["ns", "id"], batch=3))

    assert [len(p) for p in parts] == [3, 1]
    assert {row for part in parts for row in part} == {
        ("ECID", "111"),
        ("Email", "ann@example.com"),
        ("CustomerId", "7"),
        ("ECID", "999"),
    }
    assert store.counts()["identities"] == 4
