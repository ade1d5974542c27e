"""Feed snapshots: the OrderV2 shape, the hash that ignores updatedAt, malformed rows."""

from __future__ import annotations

import copy
from datetime import datetime

import pytest

from koppla.connector.snapshot import (
    MalformedOrder,
    OrderRows,
    build_snapshot,
    order_uuid,
    resolve_status_states,
    snapshot_digest,
    snapshot_hash,
    stamp,
    status_state,
)
from tests.connector.samples import Order


def test_the_snapshot_has_the_orderv2_shape_in_base_currency() -> None:
    order = Order(seed=2).invoice().ship()
    snap = order.snapshot()
    raw = order.draft.order
    assert snap["orderId"] == {"id": order_uuid(raw["entity_id"])}
    assert snap["commerceOrderNumber"] == raw["increment_id"]
    assert snap["state"] == 4 and snap["stateCode"] == "complete"
    assert snap["grandTotal"] == raw["base_grand_total"]
    assert snap["currency"] == "USD"
    assert (snap["websiteCode"], snap["storeCode"], snap["storeViewCode"]) == (
        "base",
        "main_website_store",
        "default",
    )
    assert snap["createdAt"] == "2026-11-02T09:30:00.000Z"
    assert len(snap["invoices"]) == 1 and len(snap["shipments"]) == 1
    track = snap["shipments"][0]["trackingInfo"][0]
    assert track["trackingNumber"] == order.rows["sales_shipment_track"][0]["track_number"]
    assert snap["payment"]["billingAddress"]["city"]
    assert snap["shipping"]["shippingAddress"]["multiLineStreet"][0].endswith("Main Street")


def test_the_hash_ignores_updated_at_of_order_and_lines_but_not_real_changes() -> None:
    snap = Order(seed=3).invoice().snapshot()
    touched = copy.deepcopy(snap)
    touched["updatedAt"] = "2030-01-01T00:00:00.000Z"
    touched["items"][0]["updatedAt"] = "2030-01-01T00:00:00.000Z"
    touched["modifiedAt"] = "2030-01-01T00:00:00.000Z"
    assert snapshot_hash(touched) == snapshot_hash(snap)
    changed = copy.deepcopy(snap)
    changed["status"] = "fraud"
    assert snapshot_hash(changed) != snapshot_hash(snap)


def test_the_hash_does_not_depend_on_key_order() -> None:
    snap = Order(seed=4).snapshot()
    reordered = dict(reversed(list(snap.items())))
    assert snapshot_hash(reordered) == snapshot_hash(snap)


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        ("increment_id", None, "sales_order.increment_id is empty"),
        ("created_at", None, "sales_order.created_at is empty"),
        ("base_currency_code", None, "sales_order.base_currency_code is empty"),
        ("customer_email", "", "sales_order.customer_email is empty"),
        ("state", "teleported", "sales_order.state has unknown value 'teleported'"),
        ("state", None, "sales_order.state is empty"),
    ],
)
def test_a_malformed_row_names_the_order_and_the_field(
    column: str, value: object, message: str
) -> None:
    rows = Order(seed=5).order_rows()
    broken = OrderRows(**{**_fields(rows), "order": {**rows.order, column: value}})
    with pytest.raises(MalformedOrder) as caught:
        build_snapshot(broken)
    assert str(caught.value) == f"order {rows.order['entity_id']}: {message}" + (
        " (Magento always sets it)" if "empty" in message else ""
    )
    assert caught.value.field == f"sales_order.{column}"


def _fields(rows: OrderRows) -> dict[str, object]:
    return {name: getattr(rows, name) for name in OrderRows.__slots__}


def test_timestamps_are_utc_rfc3339() -> None:
    assert stamp(datetime(2026, 1, 2, 3, 4, 5)) == "2026-01-02T03:04:05.000Z"
    assert stamp("2026-01-02 03:04:05") == "2026-01-02T03:04:05.000Z"
    assert stamp(None) is None
    assert stamp("0000-00-00 00:00:00") is None  # MySQL's zero date: no date


@pytest.mark.parametrize(
    ("table", "key", "column"),
    [
        ("items", "sales_order_item", "sku"),
        ("invoices", "sales_invoice", "created_at"),
        ("shipments", "sales_shipment", "created_at"),
        ("creditmemos", "sales_creditmemo", "created_at"),
    ],
)
def test_a_malformed_line_or_document_names_its_table(table: str, key: str, column: str) -> None:
    rows = Order(seed=6).invoice().ship().refund().order_rows()
    docs = [dict(d) for d in getattr(rows, table)]
    docs[0][column] = None
    broken = OrderRows(**{**_fields(rows), table: docs})
    with pytest.raises(MalformedOrder) as caught:
        build_snapshot(broken)
    assert caught.value.field == f"{key}.{column}"
    assert str(caught.value).startswith(f"order {rows.order['entity_id']}: {key}.{column} is empty")


def test_the_trail_is_left_out_of_the_hash_and_the_digest_is_its_bytes() -> None:
    snap = Order(seed=7).invoice().snapshot()
    trailed = {**snap, "statusHistory": [{"status": "x", "state": None, "createdAt": None}]}
    assert snapshot_hash(trailed) == snapshot_hash(snap)
    assert snapshot_digest(snap) == bytes.fromhex(snapshot_hash(snap))


def test_each_status_maps_to_one_state() -> None:
    rows = [
        ("pending", "new", 1),
        ("fraud", "processing", 0),
        ("fraud", "payment_review", 0),
        ("processing", "processing", 1),
        ("awaiting_pickup", "processing", 0),
        ("awaiting_pickup", "complete", 1),
        ("", "new", 0),
    ]
    states = resolve_status_states(rows)
    assert states == {
        "pending": "new",
        "fraud": "payment_review",
        "processing": "processing",
        "awaiting_pickup": "complete",
    }
    assert status_state("delivered", {"delivered": "complete"}) == "complete"
    assert status_state("pending", {}) == "new"
    assert status_state("pending_paypal", {}) == "pending_payment"
    assert status_state("holded", {}) == "holded"
    assert status_state("my_custom", {}) is None
