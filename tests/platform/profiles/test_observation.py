"""Observations: what one stored record or event contributes to a profile."""

from __future__ import annotations

from koppla.platform.profiles.identity import Identity
from koppla.platform.profiles.observation import OrderFact, observe

IDS = {"Email": [{"id": "Ann@Example.com", "primary": True}]}


def test_an_event_is_filed_under_its_primary_identity_at_its_timestamp() -> None:
    body = {
        "_id": "e1",
        "timestamp": "2026-03-01T10:00:00.000Z",
        "eventType": "commerce.productViews",
        "identityMap": {
            "ECID": [{"id": "42", "primary": True}],
            "email": [{"id": "Ann@Example.com"}],
        },
    }

    obs = observe("ds", "event", body, stored_ms=5)

    assert obs is not None
    assert obs.identities == (Identity("ECID", "42"), Identity("Email", "ann@example.com"))
    assert obs.at_ms == 1772359200000 and obs.event_type == "commerce.productViews"
    assert obs.order is None and obs.cart is None and obs.deletes == ()


def test_a_record_is_dated_by_its_last_update_else_by_when_it_was_stored() -> None:
    audit = {"extSourceSystemAudit": {"lastUpdatedDate": "2026-03-01T10:00:00Z"}}

    dated = observe("ds", "record", {"identityMap": IDS, **audit}, stored_ms=5)
    undated = observe("ds", "record", {"identityMap": IDS}, stored_ms=5)

    assert dated is not None and dated.at_ms == 1772359200000
    assert undated is not None and undated.at_ms == 5


def test_nothing_to_identify_means_no_observation() -> None:
    zero = {"ECID": [{"id": "000000000000000000000000000000000000", "primary": True}]}

    assert observe("ds", "event", {"_id": "x", "identityMap": zero}, 0) is None
    assert observe("ds", "event", {"_id": "x"}, 0) is None
    assert observe("ds", "event", {"_id": "x", "identityMap": {"ECID": "not a list"}}, 0) is None


def test_back_office_events_carry_their_order_value() -> None:
    def event(event_type: str, order: dict[str, object]) -> OrderFact | None:
        body = {
            "_id": "e",
            "eventType": event_type,
            "identityMap": IDS,
            "commerce": {"order": order},
        }
        obs = observe("ds", "event", body, 0)
        assert obs is not None
        return obs.order

    placed = event(
        "commerce.backofficeOrderPlaced",
        {"purchaseID": "000001", "priceTotal": 120.5, "currencyCode": "EUR"},
    )
    refund = event(
        "commerce.backofficeCreditMemoIssued",
        {"purchaseID": "000001", "refunds": [{"refundAmount": 20, "currencyCode": "EUR"}]},
    )
    cancel = event("commerce.backofficeOrderCancelled", {"purchaseID": "000002"})

    assert placed == OrderFact("000001", "placed", 120.5, "EUR")
    assert refund == OrderFact("000001", "refund", 20.0, "EUR")
    assert cancel == OrderFact("000002", "cancel", 0.0, None)
    assert event("commerce.backofficeOrderPlaced", {"priceTotal": 1}) is None


def test_cart_events_show_the_cart_and_account_deletes_name_the_customer() -> None:
    cart = {
        "_id": "c",
        "eventType": "commerce.productListAdds",
        "identityMap": IDS,
        "commerce": {"cart": {"cartID": "q1"}, "productListAdds": {"value": 1}},
        "productListItems": [{"SKU": "MJ01", "quantity": 2, "extra": "dropped"}],
    }
    gone = {
        "_id": "d",
        "eventType": "userAccount.backofficeDeleteProfile",
        "identityMap": {"CustomerId": [{"id": "7", "primary": True}], **IDS},
    }

    added = observe("ds", "event", cart, 9)
    deleted = observe("ds", "event", gone, 9)

    assert added is not None and added.cart == {
        "cartID": "q1",
        "eventType": "commerce.productListAdds",
        "items": [{"SKU": "MJ01", "quantity": 2}],
        "at_ms": 9,
    }
    assert deleted is not None and deleted.deletes == (Identity("CustomerId", "7"),)


def test_nul_characters_never_reach_the_store() -> None:
    body = {
        "_id": "e\x001",
        "eventType": "commerce.backofficeOrderPlaced\x00",
        "identityMap": {
            "Email": [{"id": "nul\x00@example.com"}, {"id": "ann@example.com", "primary": True}],
            "bad\x00ns": [{"id": "x"}],
        },
        "commerce": {"order": {"purchaseID": "P\x001", "priceTotal": 5, "currencyCode": "U\x00SD"}},
    }

    obs = observe("ds", "event", body, 0)

    assert obs is not None
    assert obs.identities == (Identity("Email", "ann@example.com"),)
    assert (obs.record_id, obs.event_type) == ("e1", "commerce.backofficeOrderPlaced")
    assert obs.order == OrderFact("P1", "placed", 5.0, "USD")
