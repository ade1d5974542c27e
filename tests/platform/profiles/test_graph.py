"""The identity graph: linking, the fast path, guardrails, graph ids, and order (Hypothesis)."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from koppla.platform.profiles.graph import Limits, Link, Region, link
from koppla.platform.profiles.identity import Identity, identities_of
from tests.platform.profiles.memory import MemoryGraph

ECID = Identity("ECID", "11111111111111111111111111111111111111")
ANN = Identity("Email", "ann@example.com")
A = Identity("CustomerId", "A")
B = Identity("CustomerId", "B")


def _ids() -> Iterable[str]:
    return (f"new{n}" for n in itertools.count(1))


def _new_id() -> str:
    raise AssertionError("no new graph id expected")


def test_a_new_identity_gets_a_graph_of_its_own() -> None:
    update = link(Region(), [ECID], 1, Limits(), lambda: "g1")
    assert update.graphs == {"g1": {ECID}}
    assert update.links == [] and update.hits == [] and update.removed == set()


def test_a_known_identity_alone_changes_nothing() -> None:
    region = Region({"g1": {ECID, ANN}}, {(ECID, ANN): Link(ECID, ANN, 1, 1)})
    update = link(region, [ECID], 5, Limits(), _new_id)
    assert update.graphs == {"g1": {ECID, ANN}}
    assert not update.graphs_changed and update.links == []


def test_identities_seen_together_join_one_graph_with_a_link_per_pair() -> None:
    store = MemoryGraph(Limits())
    store.observe([ECID, ANN, A], 10)
    assert store.graph_of(ECID) == {ECID, ANN, A}
    assert set(store.links) == {(A, ECID), (A, ANN), (ECID, ANN)}
    assert all(found.first_ms == found.last_ms == 10 for found in store.links.values())


def test_emails_are_normalised_before_linking() -> None:
    store = MemoryGraph(Limits())
    login = {"identityMap": {"ECID": [{"id": ECID.id}], "email": [{"id": " Ann@Example.COM"}]}}
    order = {"identityMap": {"Email": [{"id": "ann@example.com"}], "CustomerId": [{"id": "A"}]}}
    store.observe(identities_of(login), 1)
    store.observe(identities_of(order), 2)
    assert store.partition() == {frozenset({ECID, ANN, A})}


def test_the_next_page_view_of_a_known_shopper_only_moves_link_times() -> None:
    stored = Link(ECID, ANN, 1, 5)
    region = Region({"g1": {ECID, ANN}}, {(ECID, ANN): stored})
    update = link(region, [ECID, ANN], 9, Limits(), _new_id)
    assert not update.graphs_changed and update.graphs == {"g1": {ECID, ANN}}
    assert update.links == [Link(ECID, ANN, 1, 9)]
    assert stored == Link(ECID, ANN, 1, 5), "the region as loaded is not modified"
    assert link(region, [ECID, ANN], 3, Limits(), _new_id).links == []


def test_a_late_older_sighting_moves_first_seen_back() -> None:
    store = MemoryGraph(Limits())
    store.observe([ECID, ANN], 50)
    store.observe([ANN, ECID], 20)
    assert store.links[(ECID, ANN)] == Link(ECID, ANN, 20, 50)


def test_joining_two_graphs_keeps_the_id_of_the_larger_and_removes_the_other() -> None:
    other = Identity("ECID", "22222222222222222222222222222222222222")
    region = Region(
        {"g2": {ECID, ANN}, "g1": {other}},
        {(ECID, ANN): Link(ECID, ANN, 1, 1)},
    )
    update = link(region, [other, ANN], 2, Limits(), _new_id)
    assert update.graphs == {"g2": {ECID, ANN, other}}
    assert update.removed == {"g1"} and update.graphs_changed


def test_the_51st_identity_drops_the_oldest_link() -> None:
    store = MemoryGraph(Limits())
    emails = [Identity("Email", f"e{n}@example.com") for n in range(50)]
    for at, email in enumerate(emails):
        store.observe([ECID, email], at)
    assert store.graph_of(ECID) == {ECID, *emails[1:]}
    assert store.graph_of(emails[0]) == {emails[0]}
    assert not store.links[(ECID, emails[0])].active
    [hit] = store.hits
    assert (hit.kind, hit.identity, hit.at_ms) == ("max_identities", emails[0], 49)
    assert hit.graph_id == store.owner[emails[0]] != store.owner[ECID]
    assert "limit of 50" in hit.detail and str(emails[0]) in hit.detail


def test_a_shared_device_keeps_two_customers_apart_and_follows_the_latest_sign_in() -> None:
    store = MemoryGraph(Limits())
    store.observe([ECID, A], 1)
    store.observe([ECID, B], 2)
    assert store.partition() == {frozenset({A}), frozenset({ECID, B})}
    [hit] = store.hits
    assert (hit.kind, hit.identity, hit.graph_id) == ("namespace_limit", A, store.owner[A])
    assert "CustomerId" in hit.detail and "limit of 1" in hit.detail
    store.observe([ECID, A], 3)
    assert store.partition() == {frozenset({ECID, A}), frozenset({B})}
    assert [(h.kind, h.identity, h.at_ms) for h in store.hits[1:]] == [("namespace_limit", B, 3)]


def test_one_event_naming_two_customers_links_the_device_to_one_of_them() -> None:
    update = link(Region(), [ECID, A, B], 1, Limits(), iter(_ids()).__next__)
    assert sorted(map(frozenset, update.graphs.values()), key=len) == [{B}, {ECID, A}]
    assert {(h.kind, h.identity) for h in update.hits} == {("namespace_limit", B)}
    assert len(update.hits) == 2, "both links to B (from A and from the ECID) are refused"


def test_a_test_email_shared_by_a_thousand_shoppers_merges_at_most_fifty() -> None:
    store = MemoryGraph(Limits())
    shared = Identity("Email", "test@shop.example")
    for n in range(1000):
        shopper = Identity("ECID", f"{n + 1:038d}")
        store.observe([shopper, shared], n)
    assert max(len(members) for members in store.graphs.values()) == 50
    assert store.graph_of(shared) >= {Identity("ECID", f"{n + 1:038d}") for n in range(951, 1000)}
    assert len(store.hits) == 1000 - 49
    assert {hit.kind for hit in store.hits} == {"max_identities"}


def test_too_many_identities_in_one_event_link_only_the_first_ones() -> None:
    many = [Identity("Email", f"e{n}@example.com") for n in range(25)]
    update = link(Region(), many, 7, Limits(max_per_observation=20), lambda: "g1")
    assert update.graphs == {"g1": set(many[:20])}
    [hit] = update.hits
    assert (hit.kind, hit.graph_id, hit.identity, hit.at_ms) == (
        "identities_per_event",
        "g1",
        many[20],
        7,
    )
    assert "25" in hit.detail and "20" in hit.detail


def test_a_refused_link_is_recorded_once_not_on_every_later_sighting() -> None:
    store = MemoryGraph(Limits())
    store.observe([ECID, A], 1)
    store.observe([ECID, B], 2)
    store.observe([ECID, B], 3)
    store.observe([ECID], 4)
    assert len(store.hits) == 1


def test_a_late_sighting_of_a_refused_link_is_not_recorded_again() -> None:
    store = MemoryGraph(Limits())
    store.observe([ECID, A], 10)
    store.observe([ECID, B], 20)
    update = store.observe([A, ECID], 5)
    assert store.partition() == {frozenset({A}), frozenset({ECID, B})}
    assert update.hits == [] and len(store.hits) == 1
    assert store.links[(A, ECID)] == Link(A, ECID, 5, 10, active=False)


def test_an_inactive_link_inside_one_graph_is_made_active_when_the_graph_is_recomputed() -> None:
    region = Region(
        {"g1": {ECID, ANN, A}},
        {
            (ECID, ANN): Link(ECID, ANN, 1, 3),
            (A, ECID): Link(A, ECID, 2, 2),
            (A, ANN): Link(A, ANN, 1, 1, active=False),
        },
    )
    update = link(region, [ECID, ANN], 3, Limits(), _new_id)
    assert update.graphs == {"g1": {ECID, ANN, A}} and not update.graphs_changed
    assert update.links == [Link(A, ANN, 1, 1)] and update.hits == []


def test_a_split_keeps_the_old_id_for_the_part_with_most_of_the_graph() -> None:
    phone = Identity("Phone", "+15550100")
    store = MemoryGraph(Limits())
    store.observe([ECID, A], 1)
    store.observe([ECID, phone], 2)
    gid = store.owner[ECID]
    store.observe([ECID, B], 3)
    assert store.owner[ECID] == gid and store.graph_of(ECID) == {ECID, B, phone}
    assert store.owner[A] != gid and store.graph_of(A) == {A}


@pytest.mark.parametrize(
    "limits",
    [
        {"max_identities": 0},
        {"max_per_observation": 0},
        {"per_namespace": {"CustomerId": 0}},
    ],
)
def test_limits_below_one_are_refused(limits: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        Limits(**limits)  # type: ignore[arg-type]


# Order: Hypothesis builds observations from a small pool, so identities meet often.

POOL = [
    *(Identity("ECID", f"{n:038d}") for n in range(1, 5)),
    *(Identity("Email", f"{c}@example.com") for c in "xyz"),
    *(Identity("CustomerId", c) for c in "ABC"),
    Identity("Phone", "+15550100"),
]
HIGH = Limits(max_identities=10_000, per_namespace={}, max_per_observation=100)
ONE_CUSTOMER = Limits(
    max_identities=10_000, per_namespace={"CustomerId": 1}, max_per_observation=100
)

Observation = tuple[list[Identity], int]


def _replay(observations: Sequence[Observation], limits: Limits) -> MemoryGraph:
    store = MemoryGraph(limits)
    for identities, at_ms in observations:
        store.observe(identities, at_ms)
    return store


def _union_find(observations: Sequence[Observation]) -> set[frozenset[Identity]]:
    parent: dict[Identity, Identity] = {}

    def root(identity: Identity) -> Identity:
        while parent.setdefault(identity, identity) != identity:
            identity = parent[identity]
        return identity

    for identities, _ in observations:
        for identity in identities[1:]:
            parent[root(identity)] = root(identities[0])
        root(identities[0])
    groups: dict[Identity, set[Identity]] = {}
    for identity in parent:
        groups.setdefault(root(identity), set()).add(identity)
    return {frozenset(group) for group in groups.values()}


def _batch(observations: Sequence[Observation], customers: int) -> set[frozenset[Identity]]:
    """All links at once, newest first, at most `customers` CustomerIds a graph: a rebuild."""
    times: dict[tuple[Identity, Identity], tuple[int, int]] = {}
    groups = {i: frozenset({i}) for ids, _ in observations for i in ids}
    for identities, at_ms in observations:
        for a, b in itertools.combinations(sorted(set(identities)), 2):
            first, last = times.get((a, b), (at_ms, at_ms))
            times[(a, b)] = (min(first, at_ms), max(last, at_ms))
    for (a, b), _ in sorted(times.items(), key=lambda kv: (-kv[1][1], -kv[1][0], kv[0])):
        joined = groups[a] | groups[b]
        if sum(1 for i in joined if i.namespace == "CustomerId") <= customers:
            groups.update(dict.fromkeys(joined, joined))
    return set(groups.values())


observations_st = st.lists(
    st.lists(st.sampled_from(POOL), min_size=1, max_size=4),
    min_size=1,
    max_size=8,
)


@st.composite
def timed(draw: st.DrawFn, sizes: st.SearchStrategy[list[list[Identity]]]) -> list[Observation]:
    """Observations with distinct timestamps."""
    groups = draw(sizes)
    times = draw(
        st.lists(st.integers(0, 10_000), min_size=len(groups), max_size=len(groups), unique=True)
    )
    return list(zip(groups, times, strict=True))


@settings(max_examples=300)
@given(data=st.data(), observations=timed(observations_st))
def test_without_guardrails_any_order_gives_the_plain_union_find(
    data: st.DataObject, observations: list[Observation]
) -> None:
    shuffled = data.draw(st.permutations(observations))
    store = _replay(shuffled, HIGH)
    assert store.partition() == _union_find(observations)
    assert store.hits == []


@settings(max_examples=300)
@given(data=st.data(), observations=timed(observations_st))
def test_with_one_customer_per_graph_every_order_keeps_the_invariants(
    data: st.DataObject, observations: list[Observation]
) -> None:
    """What holds for any delivery order: the same links, and graphs inside the limits."""
    in_time = _replay(sorted(observations, key=lambda o: o[1]), ONE_CUSTOMER)
    store = _replay(data.draw(st.permutations(observations)), ONE_CUSTOMER)
    assert {k: (v.first_ms, v.last_ms) for k, v in store.links.items()} == {
        k: (v.first_ms, v.last_ms) for k, v in in_time.links.items()
    }
    plain = _union_find(observations)
    for (a, b), found in store.links.items():
        assert not found.active or store.owner[a] == store.owner[b]
    for members in store.graphs.values():
        assert sum(1 for m in members if m.namespace == "CustomerId") <= 1
        assert any(members <= group for group in plain)
        active = [(a, b) for (a, b), found in store.links.items() if found.active and a in members]
        assert _union_find([([a, b], 0) for a, b in active] + [([m], 0) for m in members]) == {
            frozenset(members)
        }, "a graph is held together by its active links"


@settings(max_examples=300)
@given(observations=timed(observations_st))
def test_with_one_customer_per_graph_delivery_in_time_order_equals_a_rebuild(
    observations: list[Observation],
) -> None:
    """In time order, linking one by one gives what one rebuild from all links gives."""
    in_time = _replay(sorted(observations, key=lambda o: o[1]), ONE_CUSTOMER)
    assert in_time.partition() == _batch(observations, customers=1)


def test_with_one_customer_per_graph_a_late_event_can_change_the_answer() -> None:
    """Why order matters once a guardrail is hit: a region sees only the observed graphs.

    At 63 one event names the device with both customers; the link ECID-B (first seen 63)
    outranks ECID-A (first seen 50). Delivered in time order, the ECID joins B. Delivered late,
    the event of 50 loads only the graphs of A, the ECID and x, so the stored ECID-B link is
    not reconsidered and the ECID stays with A.
    """
    x = Identity("Email", "x@example.com")
    early, late = ([A, ECID, x], 50), ([B, A, ECID], 63)
    assert _replay([early, late], ONE_CUSTOMER).partition() == {
        frozenset({A, x}),
        frozenset({B, ECID}),
    }
    assert _replay([late, early], ONE_CUSTOMER).partition() == {
        frozenset({A, ECID, x}),
        frozenset({B}),
    }
