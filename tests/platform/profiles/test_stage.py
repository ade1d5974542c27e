"""The profile stage on a real store (SQLite and PostgreSQL): stitching, merging, deleting."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from koppla.platform.profiles.graph import Limits
from koppla.platform.profiles.identity import Identity
from koppla.platform.profiles.lookup import ProfileLookup
from koppla.platform.profiles.observation import Kind, Observation, observe
from koppla.platform.profiles.policies import PolicyBook
from koppla.platform.profiles.stage import ProfileStage
from koppla.platform.profiles.store import ProfileStore

ECID = {"ECID": [{"id": "7001", "primary": True}]}
ANN = Identity("Email", "ann@example.com")
T0 = 1_780_000_000_000


def _stage(store: ProfileStore, **limits: Any) -> ProfileStage:
    return ProfileStage(store, limits=Limits(**limits), policy=PolicyBook(store).default)


def _obs(kind: Kind, body: dict[str, Any], at_ms: int, dataset: str = "events") -> Observation:
    if kind == "event":
        body = {"timestamp": f"{_iso(at_ms)}", **body}
    found = observe(dataset, kind, body, stored_ms=at_ms)
    assert found is not None
    return found


def _iso(ms: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


def _record(customer: str, email: str, first: str, at_ms: int, dataset: str = "crm") -> Observation:
    body = {
        "_id": f"rec-{customer}-{at_ms}",
        "identityMap": {
            "CustomerId": [{"id": customer, "primary": True}],
            "Email": [{"id": email, "primary": False}],
        },
        "person": {"name": {"firstName": first, "lastName": "Lee"}},
        "personalEmail": {"address": email},
        "extSourceSystemAudit": {"lastUpdatedDate": _iso(at_ms)},
    }
    return _obs("record", body, at_ms, dataset)


def _shopper_journey() -> list[Observation]:
    """Anonymous browsing, a sign-in, a back-office order, then the shop's customer record."""
    view = {"_id": "v1", "eventType": "commerce.productViews", "identityMap": ECID}
    login = {
        "_id": "l1",
        "eventType": "userAccount.login",
        "identityMap": {**ECID, "Email": [{"id": "Ann@Example.com", "primary": False}]},
    }
    order = {
        "_id": "o1",
        "eventType": "commerce.backofficeOrderPlaced",
        "identityMap": {"Email": [{"id": "ann@example.com", "primary": True}]},
        "commerce": {"order": {"purchaseID": "000000042", "priceTotal": 80.0}},
    }
    return [
        _obs("event", view, T0),
        _obs("event", login, T0 + 1000),
        _obs("event", order, T0 + 2000),
        _record("42", "ann@example.com", "Ann", T0 + 3000),
    ]


@pytest.mark.parametrize("chunks", [1, 4])
def test_a_shopper_becomes_one_profile_with_three_identities(
    store: ProfileStore, chunks: int
) -> None:
    stage = _stage(store)
    journey = _shopper_journey()
    size = len(journey) // chunks
    for start in range(0, len(journey), size):
        stage.apply(journey[start : start + size], {"events": start})

    view = ProfileLookup(store).profile(Identity("ECID", "7001"))

    assert view is not None
    assert {m.identity for m in view.members} == {
        Identity("ECID", "7001"),
        ANN,
        Identity("CustomerId", "42"),
    }
    assert view.attributes["person"] == {"name": {"firstName": "Ann", "lastName": "Lee"}}
    assert (view.computed.orders, view.computed.lifetime_value) == (1, 80.0)
    assert view.computed.first_seen_ms == T0 and view.computed.last_seen_ms == T0 + 2000
    events = ProfileLookup(store).events(Identity("CustomerId", "42"))
    assert [e.event_id for e in events] == ["v1", "l1", "o1"]
    row = store.profile(view.graph_id)
    assert row is not None and row.attributes == view.attributes and row.orders == 1
    assert store.counts()["profiles"] == 1


def test_replaying_a_chunk_changes_nothing(store: ProfileStore) -> None:
    stage = _stage(store)
    journey = _shopper_journey()
    stage.apply(journey, {"events": 3})
    before = store.counts()

    _stage(store).apply(journey, {"events": 3})

    assert store.counts() == before
    view = ProfileLookup(store).profile(ANN)
    assert view is not None and view.computed.orders == 1


def test_a_newer_record_changes_the_profile_and_a_delete_removes_its_data(
    store: ProfileStore,
) -> None:
    stage = _stage(store)
    stage.apply(_shopper_journey(), {})
    stage.apply([_record("42", "ann@example.com", "Annie", T0 + 9000)], {})
    assert ProfileLookup(store).profile(ANN).attributes["person"]["name"]["firstName"] == "Annie"  # type: ignore[union-attr]

    deleted = {
        "_id": "del-42",
        "eventType": "userAccount.backofficeDeleteProfile",
        "identityMap": {"CustomerId": [{"id": "42", "primary": True}]},
    }
    stage.apply([_obs("event", deleted, T0 + 10_000)], {})
    stage.apply([_record("42", "ann@example.com", "Stale", T0 + 9500)], {})

    view = ProfileLookup(store).profile(ANN)
    assert view is not None
    assert "person" not in view.attributes
    assert [e.event_id for e in ProfileLookup(store).events(ANN)][-1] == "del-42"
    assert view.computed.orders == 1


def test_two_customers_sharing_a_device_stay_two_profiles(store: ProfileStore) -> None:
    stage = _stage(store, per_namespace={"CustomerId": 1})
    device = {"ECID": [{"id": "shared", "primary": True}]}

    def sign_in(customer: str, at_ms: int) -> Observation:
        ids = {**device, "CustomerId": [{"id": customer}]}
        return _obs("event", {"_id": f"in-{customer}-{at_ms}", "identityMap": ids}, at_ms)

    stage.apply([sign_in("A", T0), sign_in("B", T0 + 1000)], {})

    lookup = ProfileLookup(store)
    a = lookup.profile(Identity("CustomerId", "A"))
    b = lookup.profile(Identity("CustomerId", "B"))
    assert a is not None and b is not None and a.graph_id != b.graph_id
    assert Identity("ECID", "shared") in {m.identity for m in b.members}
    hits = store.hits()
    assert [(h.kind, h.identity.namespace) for h in hits] == [("namespace_limit", "CustomerId")]

    stage.apply([sign_in("A", T0 + 2000)], {})
    back = lookup.profile(Identity("ECID", "shared"))
    assert back is not None
    assert {m.identity.id for m in back.members} == {"shared", "A"}


def test_dataset_precedence_and_timestamp_order_answer_differently(store: ProfileStore) -> None:
    stage = _stage(store)
    stage.apply(
        [
            _record("42", "ann@example.com", "FromCrm", T0, dataset="crm"),
            _record("42", "ann@example.com", "FromShop", T0 + 5000, dataset="shop"),
        ],
        {},
    )
    book = PolicyBook(store)
    precedence = book.create(
        {
            "name": "CRM first",
            "schema": {"name": "_xdm.context.profile"},
            "identityGraph": {"type": "pdg"},
            "attributeMerge": {"type": "dataSetPrecedence", "order": ["crm", "shop"]},
        }
    )
    lookup = ProfileLookup(store)

    latest = lookup.profile(ANN)
    ranked = lookup.profile(ANN, precedence.id)

    assert latest is not None and ranked is not None
    assert latest.attributes["person"]["name"]["firstName"] == "FromShop"
    assert ranked.attributes["person"]["name"]["firstName"] == "FromCrm"
    assert book.default().id != precedence.id
    book.change(precedence.id, {"default": True})
    assert book.default().id == precedence.id
    assert [p.id for p in book.all() if p.default] == [precedence.id]


def test_a_failed_write_leaves_nothing_half_done_and_the_retry_lands_once(
    store: ProfileStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    stage = _stage(store)
    journey = _shopper_journey()
    stage.apply(journey[:2], {"events": 1})
    real_write = store.write

    def broken(change: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(store, "write", broken)
    with pytest.raises(OSError):
        stage.apply(journey[2:], {"events": 3})
    monkeypatch.setattr(store, "write", real_write)
    assert store.cursors() == {"events": 1}

    stage.apply(journey[2:], {"events": 3})

    view = ProfileLookup(store).profile(ANN)
    assert view is not None and len(view.members) == 3
    assert view.computed.orders == 1 and store.counts()["events"] == 3
    assert store.profile(view.graph_id) is not None


def test_a_new_default_policy_remerges_the_profiles_kept_for_sql(tmp_path: Path) -> None:
    from koppla.core.layout import Layout
    from koppla.platform.catalog.store import Catalog
    from koppla.platform.profiles.runner import ProfileRunner
    from koppla.xdm.registry import builtin_registry

    store = ProfileStore(f"sqlite:///{tmp_path / 'p.sqlite'}")
    catalog = Catalog(tmp_path / "catalog.sqlite")
    runner = ProfileRunner(Layout(tmp_path), catalog, builtin_registry(), store)
    runner.step()
    runner.stage.apply(
        [
            _record("42", "ann@example.com", "FromCrm", T0, dataset="crm"),
            _record("42", "ann@example.com", "FromShop", T0 + 5000, dataset="shop"),
        ],
        {},
    )
    view = ProfileLookup(store).profile(ANN)
    assert view is not None
    row = store.profile(view.graph_id)
    assert row is not None and row.attributes["person"]["name"]["firstName"] == "FromShop"

    runner.policies.create(
        {
            "name": "CRM first",
            "default": True,
            "schema": {"name": "_xdm.context.profile"},
            "identityGraph": {"type": "pdg"},
            "attributeMerge": {"type": "dataSetPrecedence", "order": ["crm"]},
        }
    )
    runner.step()

    row = store.profile(view.graph_id)
    assert row is not None and row.attributes["person"]["name"]["firstName"] == "FromCrm"
    assert row.sources[0] == "crm"
    store.close()
    catalog.close()


def test_a_graph_that_loses_an_identity_to_a_guardrail_is_merged_again(store: ProfileStore) -> None:
    stage = _stage(store, per_namespace={"CustomerId": 1})

    def seen(customer: str, email: str, at_ms: int) -> Observation:
        ids = {"CustomerId": [{"id": customer, "primary": True}], "Email": [{"id": email}]}
        return _obs("event", {"_id": f"{customer}-{email}", "identityMap": ids}, at_ms)

    stage.apply([seen("1", f"{x}@x.io", T0 + n) for n, x in enumerate("abc")], {})
    first = ProfileLookup(store).profile(Identity("CustomerId", "1"))
    assert first is not None and len(first.members) == 4

    stage.apply([seen("2", "a@x.io", T0 + 100)], {})

    row = store.profile(first.graph_id)
    assert row is not None
    assert "Email:a@x.io" not in row.identities
    assert sorted(row.identities) == ["CustomerId:1", "Email:b@x.io", "Email:c@x.io"]


def test_a_lower_case_date_time_is_read_as_sent() -> None:
    obs = observe(
        "ds",
        "event",
        {"_id": "x", "timestamp": "2026-03-01t10:00:00z", "identityMap": ECID},
        stored_ms=5,
    )
    assert obs is not None and obs.at_ms == 1772359200000
