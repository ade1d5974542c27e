"""Back-office events of an order's life: each type, the §5.2 fields, XDM validity."""

from __future__ import annotations

import copy
from collections.abc import Collection
from typing import Any

import pytest

from koppla.connector.events import (
    CANCELLED,
    CREDIT_MEMO_ISSUED,
    INVOICED,
    ITEMS_SHIPPED,
    PLACED,
    SHIPMENT_COMPLETED,
    EventContext,
    event_id,
    event_keys,
    history,
    keyed_events,
    pack_keys,
    prune,
    unpack_keys,
)
from koppla.xdm.experience_event import commerce_experience_event
from koppla.xdm.validation import validate
from tests.connector.samples import CTX, Order


def types(events: list[dict[str, Any]]) -> list[str]:
    return [e["eventType"] for e in events]


def unsent(emitted: Collection[str], current: dict[str, Any]) -> list[dict[str, Any]]:
    """The events of `current`'s life whose keys are not in `emitted`."""
    return [event for _key, event in keyed_events(current, CTX, frozenset(emitted))]


def since(previous: dict[str, Any], current: dict[str, Any]) -> list[dict[str, Any]]:
    """The events of `current`'s life not in `previous`'s."""
    return unsent(event_keys(previous), current)


def assert_valid(events: list[dict[str, Any]]) -> None:
    for event in events:
        issues = validate(commerce_experience_event(), event).issues
        assert issues == (), (event["eventType"], issues)


def test_a_new_order_is_placed() -> None:
    events = history(Order().snapshot(), CTX)
    assert types(events) == [PLACED]
    assert_valid(events)


def test_each_new_invoice_shipment_and_credit_memo_gives_one_event() -> None:
    order = Order(seed=2)
    placed = order.snapshot()
    invoiced = order.invoice().snapshot()
    assert types(since(placed, invoiced)) == [INVOICED]
    shipped = order.ship().snapshot()
    assert types(since(invoiced, shipped)) == [ITEMS_SHIPPED, SHIPMENT_COMPLETED]
    closed = order.refund().snapshot()
    assert types(since(shipped, closed)) == [CREDIT_MEMO_ISSUED]
    assert since(closed, closed) == []


def test_cancelling_gives_one_cancelled_event() -> None:
    order = Order(seed=3)
    before = order.snapshot()
    after = order.cancel().snapshot()
    events = since(before, after)
    assert types(events) == [CANCELLED]
    order_fields = events[0]["commerce"]["order"]
    assert order_fields["cancelDate"] == "2026-11-02T10:30:00.000Z"
    assert order_fields["lastUpdatedDate"] == order_fields["cancelDate"]
    assert_valid(events)


def test_the_first_sync_of_an_old_order_emits_its_whole_history_with_own_timestamps() -> None:
    snap = Order(seed=4).invoice(hours=1).ship(hours=5).refund(hours=9).snapshot()
    events = history(snap, CTX)
    # no status trail here: completion is inferred (fully invoiced and shipped before the memo)
    assert types(events) == [
        PLACED,
        INVOICED,
        ITEMS_SHIPPED,
        SHIPMENT_COMPLETED,
        CREDIT_MEMO_ISSUED,
    ]
    assert [e["timestamp"] for e in events] == [
        "2026-11-02T09:30:00.000Z",
        "2026-11-02T10:30:00.000Z",
        "2026-11-02T14:30:00.000Z",
        "2026-11-02T14:30:00.000Z",
        "2026-11-02T18:30:00.000Z",
    ]
    assert_valid(events)


def test_event_ids_are_deterministic_and_distinct() -> None:
    snap = Order(seed=5).invoice().ship().snapshot()
    first, again = history(snap, CTX), history(copy.deepcopy(snap), CTX)
    assert [e["_id"] for e in first] == [e["_id"] for e in again]
    assert len({e["_id"] for e in first}) == len(first)
    invoice_id = snap["invoices"][0]["entityId"]
    assert first[1]["_id"] == event_id(
        "env-1", "base", snap["commerceOrderId"], INVOICED, invoice_id
    )
    other_site = history(snap, EventContext("other", "env-1"))
    assert not {e["_id"] for e in first} & {e["_id"] for e in other_site}
    other_space = history(snap, EventContext("base", "env-2"))
    assert not {e["_id"] for e in first} & {e["_id"] for e in other_space}


def test_placed_carries_the_placed_column_of_the_matrix() -> None:
    order = Order(seed=6)
    snap = order.snapshot()
    event = history(snap, CTX)[0]
    raw = order.draft.order
    commerce = event["commerce"]
    assert commerce["order"]["purchaseID"] == raw["increment_id"]
    assert commerce["order"]["currencyCode"] == "USD"
    assert commerce["order"]["taxAmount"] == raw["base_tax_amount"]
    assert commerce["order"]["discountAmount"] == abs(raw["base_discount_amount"])
    assert commerce["order"]["createdDate"] == "2026-11-02T09:30:00.000Z"
    payment = commerce["order"]["payments"][0]
    assert payment["paymentType"] == order.draft.payment["method"]
    assert payment["paymentAmount"] == raw["base_grand_total"]
    assert commerce["shipping"] == {
        "shippingMethod": "flatrate_flatrate",
        "shippingAmount": 5.0,
        "currencyCode": "USD",
    }
    assert set(commerce["billing"]["address"]) >= {"street1", "city", "postalCode", "country"}
    assert commerce["commerceScope"] == {
        "environmentID": "env-1",
        "websiteCode": "base",
        "storeCode": "main_website_store",
        "storeViewCode": "default",
    }
    assert event["personalEmail"]["address"] == raw["customer_email"]
    assert event["identityMap"] == {"Email": [{"id": raw["customer_email"], "primary": True}]}
    top = [i for i in order.draft.items if i["parent_item_id"] is None]
    assert [p["SKU"] for p in event["productListItems"]] == [i["sku"] for i in top]
    for line, item in zip(event["productListItems"], top, strict=True):
        assert line["lineItemId"] == str(item["item_id"])
        assert line["quantity"] == item["qty_ordered"]
        assert line["priceTotal"] == item["base_row_total"]
        assert line["currencyCode"] == "USD"
        if item["product_type"] == "configurable":
            assert {o["attribute"] for o in line["selectedOptions"]} == {"Color", "Size"}


def test_shipped_carries_tracking_ship_date_and_both_addresses() -> None:
    order = Order(seed=7).invoice().ship(hours=3)
    event = history(order.snapshot(), CTX)[2]
    assert event["eventType"] == ITEMS_SHIPPED
    shipping = event["commerce"]["shipping"]
    assert shipping["trackingNumber"] == order.rows["sales_shipment_track"][0]["track_number"]
    assert isinstance(shipping["trackingNumber"], str)
    assert shipping["shipDate"] == "2026-11-02T12:30:00.000Z"
    assert shipping["address"]["city"] and event["commerce"]["billing"]["address"]["city"]
    assert event["commerce"]["order"]["lastUpdatedDate"]
    quantities = {p["SKU"]: p["quantity"] for p in event["productListItems"]}
    top = [i for i in order.draft.items if i["parent_item_id"] is None]
    assert quantities == {i["sku"]: i["qty_ordered"] for i in top}


def test_invoiced_and_credit_memo_carry_their_documents_amounts() -> None:
    order = Order(seed=8).invoice().ship().refund()
    events = {e["eventType"]: e for e in history(order.snapshot(), CTX)}
    total = order.draft.order["base_grand_total"]
    invoice = events[INVOICED]["commerce"]["order"]
    assert invoice["priceTotal"] == total
    assert invoice["payments"][0]["paymentAmount"] == total
    assert "transactionID" not in invoice["payments"][0]
    memo = events[CREDIT_MEMO_ISSUED]["commerce"]["order"]
    refund = memo["refunds"][0]
    assert refund["refundAmount"] == total
    assert refund["currencyCode"] == "USD"
    assert refund["transactionID"] == order.rows["sales_creditmemo"][0]["increment_id"]
    assert events[CREDIT_MEMO_ISSUED]["productListItems"]


def test_shipment_completed_carries_tax_created_date_and_addresses() -> None:
    order = Order(seed=9).invoice().ship()
    event = {e["eventType"]: e for e in history(order.snapshot(), CTX)}[SHIPMENT_COMPLETED]
    assert event["commerce"]["order"]["taxAmount"] == order.draft.order["base_tax_amount"]
    assert event["commerce"]["order"]["createdDate"] == "2026-11-02T09:30:00.000Z"
    assert event["commerce"]["shipping"]["shipDate"] == "2026-11-02T11:30:00.000Z"
    assert event["commerce"]["shipping"]["address"]


@pytest.mark.parametrize("seed", range(20))
def test_every_event_of_every_life_validates_against_koppla_xdm(seed: int) -> None:
    order = Order(seed=seed)
    lives = [order.invoice().ship().refund()] if seed % 2 else [order.cancel()]
    for life in lives:
        for ctx in (CTX, EventContext("base", "env-1", redact=True)):
            assert_valid(history(life.snapshot(), ctx))


def test_event_ids_are_the_derived_uuids_they_always_were() -> None:
    from koppla.core.ids import derived_uuid

    for sub in ("", 17, "42"):
        for env, site in (("env-1", "base"), ("prod_eu", "second")):
            assert event_id(env, site, 1234, INVOICED, sub) == derived_uuid(
                "koppla-connector", env, site, "1234", INVOICED, str(sub)
            )


def test_keyed_events_builds_only_what_was_not_emitted() -> None:
    snap = Order(seed=12).invoice().ship().snapshot()
    keys = event_keys(snap)
    assert keys[0] == "P" and keys[-1] == "C" and len(keys) == 4
    assert types(unsent(frozenset(keys[:2]), snap)) == [
        ITEMS_SHIPPED,
        SHIPMENT_COMPLETED,
    ]
    assert unsent(frozenset(keys), snap) == []
    assert unpack_keys(pack_keys(keys)) == frozenset(keys)


def test_prune_drops_nones_and_empty_containers_but_keeps_list_lengths() -> None:
    raw = {"a": None, "b": {}, "c": [], "d": {"e": None}, "f": [{"g": None}, 1, [None]], "h": 0}
    assert prune(raw) == {"f": [{}, 1, [None]], "h": 0}


def with_attributes(order: Order) -> tuple[Any, int, int]:
    """The order's rows with custom attributes on the order and its first visible item; the
    rows, that item's id and another visible item's id (or 0)."""
    from dataclasses import replace

    rows = order.order_rows()
    visible = [i["item_id"] for i in rows.items if i["parent_item_id"] is None]
    first = visible[0]
    rows = replace(
        rows,
        order_attributes={"giftWrap": True, "deliveryDate": "2026-12-24", "rushPriority": 2},
        item_attributes={first: {"engraving": "For Ana", "layers": 3}},
    )
    return rows, first, visible[1] if len(visible) > 1 else 0


def test_custom_attributes_travel_in_the_tenant_namespace_of_every_event() -> None:
    from dataclasses import replace

    from koppla.connector.snapshot import build_snapshot

    order = Order(seed=5).invoice().ship().refund()
    rows, first, _other = with_attributes(order)
    events = history(build_snapshot(rows), replace(CTX, tenant="acme"))
    assert {e["eventType"] for e in events} >= {PLACED, INVOICED, ITEMS_SHIPPED, CREDIT_MEMO_ISSUED}
    for event in events:
        assert event["commerce"]["order"]["_acme"] == {
            "giftWrap": True,
            "deliveryDate": "2026-12-24",
            "rushPriority": 2,
        }
        lines = event.get("productListItems", [])
        tagged = [line for line in lines if "_acme" in line]
        assert all(line["_acme"] == {"engraving": "For Ana", "layers": 3} for line in tagged)
        if event["eventType"] in (PLACED, INVOICED):
            assert [line["lineItemId"] for line in tagged] == [str(first)]
        issues = validate(commerce_experience_event(), event).issues
        assert issues == (), issues


def test_without_attributes_or_without_a_tenant_the_events_are_as_before() -> None:
    from dataclasses import replace

    from koppla.connector.snapshot import build_snapshot

    order = Order(seed=6).invoice().ship()
    plain = history(order.snapshot(), CTX)
    assert history(order.snapshot(), replace(CTX, tenant="acme")) == plain
    assert "additionalInformation" not in order.snapshot()
    rows, _first, _other = with_attributes(order)
    assert history(build_snapshot(rows), CTX) == plain  # no tenant: nowhere to put them
    assert all("_acme" not in str(e) for e in plain)


def test_redaction_keeps_the_custom_attributes() -> None:
    from dataclasses import replace

    from koppla.connector.snapshot import build_snapshot

    rows, _first, _other = with_attributes(Order(seed=7))
    placed = history(build_snapshot(rows), replace(CTX, tenant="acme", redact=True))[0]
    assert "billing" not in placed["commerce"]
    assert placed["commerce"]["order"]["_acme"]["giftWrap"] is True


def test_redaction_hashes_emails_in_custom_attributes() -> None:
    from dataclasses import replace

    from koppla.connector.redaction import hash_email
    from koppla.connector.snapshot import build_snapshot

    rows, _first, _other = with_attributes(Order(seed=7))
    payer = {"paypal_payer_email": "Payer@Example.com", "method_title": "PayPal Express"}
    rows = replace(rows, order_attributes={**rows.order_attributes, **payer})
    plain = history(build_snapshot(rows), replace(CTX, tenant="acme"))[0]
    hidden = history(build_snapshot(rows), replace(CTX, tenant="acme", redact=True))[0]
    assert plain["commerce"]["order"]["_acme"]["paypal_payer_email"] == "Payer@Example.com"
    own = hidden["commerce"]["order"]["_acme"]
    assert own["paypal_payer_email"] == hash_email("payer@example.com")
    assert own["method_title"] == "PayPal Express" and own["giftWrap"] is True
