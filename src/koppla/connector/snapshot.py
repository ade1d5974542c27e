"""The orders feed item: one order's rows turned into a snapshot shaped like Magento's OrderV2.

Pure: takes the rows a store source read, returns a JSON-ready dict (domain.md §9.2) and its hash.
All amounts are base currency. A row that breaks Magento's own invariants raises `MalformedOrder`
naming the order and the field, so one bad order never stops the others.

Beyond OrderV2 the snapshot carries `statusHistory`: the order's status trail from
`sales_order_status_history` (and `sales_order_status_change_history` where Magento has it), as
`[{"status", "state", "createdAt"}]` sorted by time then id, each status mapped to its state by
`sales_order_status_state` or, for a status that table does not name, by `DEFAULT_STATUS_STATES`
(a status named like a state maps to that state). The events take the times an order became
complete or canceled from it.

Custom attributes (domain.md §8.1, read and typed by the store source, see
`koppla.connector.custom_attributes`) are the order's and each item's `additionalInformation`,
`[{"name", "value"}]` as in OrderV2 but with typed values; the key is there only when there are
attributes, so an order without any has the snapshot (and hash) it had before Koppla read them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from koppla.core import clock, codec
from koppla.core.errors import InvalidInput
from koppla.core.ids import derived_uuid_under

Row = Mapping[str, Any]

ORDER_STATES: dict[str, int] = {
    "new": 1,
    "pending_payment": 2,
    "processing": 3,
    "complete": 4,
    "closed": 5,
    "canceled": 6,
    "holded": 7,
    "payment_review": 8,
}
"""Magento's order states and the integers the orders feed encodes them as (`State.php`)."""

DEFAULT_STATUS_STATES: dict[str, str] = {
    "pending": "new",
    "fraud": "payment_review",
    "pending_paypal": "pending_payment",
    "paypal_reversed": "processing",
    "paypal_canceled_reversal": "processing",
}
"""The state of Magento's stock statuses not named like their state, for shops whose
`sales_order_status_state` is missing or does not name a status."""

EXCLUDED_FROM_HASH = frozenset({"updatedAt", "modifiedAt", "categories", "statusHistory"})
"""Keys the hash ignores, at the top level and in every element of the top-level lists.

`items[].categories` is left out on purpose: Adobe's feed has no categories, and re-categorising
a product in the catalog must not make every old order containing it look changed (nor make the
first run after an upgrade re-process every order). Events built after an order really changes
carry the categories the product has at that time. `statusHistory` is left out for the same
reasons: a comment changes nothing an event says (a state change changes `state`), and orders
hashed before Koppla read the status trail keep their hashes.
"""


class MalformedOrder(InvalidInput):
    """An order row breaks an invariant Magento always keeps (a NULL, an unknown state)."""

    def __init__(self, order_id: object, field: str, reason: str) -> None:
        super().__init__(f"order {order_id}: {field} {reason}", field=field)
        self.order_id = order_id


@dataclass(frozen=True, slots=True)
class Scope:
    """Where an order was placed: website, store (group) and store view codes."""

    website_code: str
    store_code: str
    store_view_code: str


@dataclass(frozen=True, slots=True)
class OrderRows:
    """Every row of one order the connector reads, as the store source returned them."""

    order: Row
    scope: Scope
    items: Sequence[Row] = ()
    addresses: Sequence[Row] = ()
    payment: Row | None = None
    invoices: Sequence[Row] = ()
    invoice_items: Sequence[Row] = ()
    shipments: Sequence[Row] = ()
    shipment_items: Sequence[Row] = ()
    tracks: Sequence[Row] = ()
    creditmemos: Sequence[Row] = ()
    creditmemo_items: Sequence[Row] = ()
    transactions: Sequence[Row] = field(default_factory=tuple)
    categories: Mapping[int, Sequence[Row]] = field(default_factory=dict)
    """Each product id's categories (`{id, name, path}`; `name` may be None), see `source`."""
    status_history: Sequence[Row] = ()
    """`sales_order_status_history` rows (`entity_id`, `status`, `created_at`, ...)."""
    status_changes: Sequence[Row] = ()
    """`sales_order_status_change_history` rows (`entity_id`, `status`, `created_at`)."""
    status_states: Mapping[str, str] = field(default_factory=dict)
    """The shop's status → state map (`resolve_status_states`); empty: the defaults only."""
    order_attributes: Mapping[str, Any] = field(default_factory=dict)
    """The order's custom attributes, typed (`koppla.connector.custom_attributes`)."""
    item_attributes: Mapping[int, Mapping[str, Any]] = field(default_factory=dict)
    """Each order item's custom attributes by `item_id` (items without any left out)."""


def order_uuid(entity_id: int) -> str:
    """The order's feed UUID (Magento's `data_exporter_uuid`), derived so it never changes."""
    return derived_uuid_under(("koppla-connector-order",), str(entity_id))


def stamp(value: object) -> str | None:
    """A database timestamp (UTC, naive or aware, or text) as RFC 3339 with a `Z`.

    MySQL's zero date (`0000-00-00 00:00:00`, which PyMySQL hands over as text) means "no
    date" and gives None.
    """
    if value is None:
        return None
    if isinstance(value, str):
        if is_zero_date(value):
            return None
        value = datetime.fromisoformat(value)
    if not isinstance(value, datetime):
        raise TypeError(f"not a timestamp: {value!r}")
    if value.tzinfo is None:  # UTC already: what `clock.iso` writes, without converting
        return value.isoformat(timespec="milliseconds") + "Z"
    return clock.iso(value)


def is_zero_date(value: object) -> bool:
    """True for MySQL's zero date or date-time as text (`0000-00-00`, `0000-00-00 00:00:00`)."""
    return isinstance(value, str) and value.startswith("0000-00-00")


def snapshot_hash(snapshot: Mapping[str, Any]) -> str:
    """SHA-1 (hex) of the canonical JSON of `snapshot` without the `EXCLUDED_FROM_HASH` keys.

    Those fields are dropped at the top level and in every element of the top-level lists
    (`items[].updatedAt`, `shipments[].updatedAt`, `items[].categories`), where the feed carries
    them.
    """
    return snapshot_digest(snapshot).hex()


def snapshot_digest(snapshot: Mapping[str, Any]) -> bytes:
    """`snapshot_hash` as its 20 raw bytes (what the connector's state stores)."""
    return hashlib.sha1(codec.dumps(_strip(snapshot), sort_keys=True)).digest()


def _strip(snapshot: Mapping[str, Any]) -> dict[str, Any]:
    excluded = EXCLUDED_FROM_HASH
    out: dict[str, Any] = {}
    for key, value in snapshot.items():
        if key in excluded:
            continue
        if isinstance(value, list):  # elements without excluded keys need no copy
            value = [
                {k: v for k, v in e.items() if k not in excluded}
                if isinstance(e, dict) and not excluded.isdisjoint(e)
                else e
                for e in value
            ]
        out[key] = value
    return out


def status_state(status: str, known: Mapping[str, str]) -> str | None:
    """The state `status` belongs to: the shop's map, else the defaults, else None."""
    state = known.get(status) or DEFAULT_STATUS_STATES.get(status)
    if state is None and status in ORDER_STATES:
        return status
    return state


def resolve_status_states(rows: Iterable[tuple[str, str, int]]) -> dict[str, str]:
    """One state per status from `sales_order_status_state` rows `(status, state, is_default)`.

    Magento may assign a status to several states (`fraud` is under `processing` and
    `payment_review`); then the state named like the status wins, else the state whose default
    it is, else the last in Magento's state order (`fraud` → `payment_review`).
    """
    options: dict[str, list[tuple[str, int]]] = {}
    for status, state, is_default in rows:
        if status and state:
            options.setdefault(str(status), []).append((str(state), int(is_default or 0)))
    resolved: dict[str, str] = {}
    for status, states in options.items():
        names = [name for name, _default in states]
        defaults = [name for name, default in states if default]
        if status in names:
            resolved[status] = status
        else:
            pool = defaults or names
            resolved[status] = max(pool, key=lambda name: (ORDER_STATES.get(name, 0), name))
    return resolved


def build_snapshot(rows: OrderRows) -> dict[str, Any]:
    """The feed item (OrderV2 shape) of one order; raises `MalformedOrder` on a broken row."""
    order = rows.order
    oid = _required(order, order.get("entity_id"), "entity_id")
    state = _required(order, oid, "state")
    if state not in ORDER_STATES:
        raise MalformedOrder(oid, "sales_order.state", f"has unknown value {state!r}")
    snapshot: dict[str, Any] = {
        "orderId": {"id": order_uuid(int(oid))},
        "commerceOrderId": int(oid),
        "commerceOrderNumber": _required(order, oid, "increment_id"),
        "createdAt": stamp(_required(order, oid, "created_at")),
        "updatedAt": stamp(order.get("updated_at")),
        "state": ORDER_STATES[state],
        "stateCode": state,
        "status": order.get("status"),
        "isVirtual": bool(order.get("is_virtual")),
        "grandTotal": _required(order, oid, "base_grand_total"),
        "subtotal": order.get("base_subtotal"),
        "discountAmount": order.get("base_discount_amount"),
        "taxAmount": order.get("base_tax_amount"),
        "totalInvoiced": order.get("base_total_invoiced"),
        "amountPaid": order.get("base_total_paid"),
        "amountRefunded": order.get("base_total_refunded"),
        "amountCanceled": order.get("base_total_canceled"),
        "totalQtyOrdered": order.get("total_qty_ordered"),
        "currency": _required(order, oid, "base_currency_code"),
        "storeViewCode": rows.scope.store_view_code,
        "storeCode": rows.scope.store_code,
        "websiteCode": rows.scope.website_code,
        "storeId": order.get("store_id"),
        "customerId": order.get("customer_id"),
        "customerEmail": _required(order, oid, "customer_email"),
        "couponCode": order.get("coupon_code"),
        "payment": _payment(rows),
        "shipping": _shipping(rows),
        "items": [
            _item(_checked(item, oid, "sales_order_item", "sku"), rows.categories, rows)
            for item in rows.items
        ],
        "invoices": _invoices(rows),
        "shipments": _shipments(rows),
        "creditMemos": _creditmemos(rows),
        "transactions": [_transaction(txn) for txn in rows.transactions],
        "statusHistory": status_timeline(rows),
    }
    if rows.order_attributes:
        snapshot["additionalInformation"] = custom_attributes(rows.order_attributes)
    return snapshot


def custom_attributes(attributes: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Custom attributes as the feed lists them: `[{"name", "value"}]`, in the order given.

    Unlike Adobe's feed, whose values are strings, each value keeps its type (string,
    boolean, number; dates are `YYYY-MM-DD` strings), as the events carry it.
    """
    return [{"name": name, "value": value} for name, value in attributes.items()]


def status_timeline(rows: OrderRows) -> list[dict[str, Any]]:
    """The order's status trail: `{status, state, createdAt}` by time then id.

    Both history tables log the same change, so an entry with the status and time of one
    already taken is left out, as is an entry repeating the status before it (a comment).
    Rows without a status say nothing about the state and are left out too.
    """
    entries: list[tuple[str, int, int, str, str | None]] = []
    for rank, source in enumerate((rows.status_history, rows.status_changes)):
        for row in source:
            status = row.get("status")
            if status:
                when = stamp(row.get("created_at"))
                entries.append((when or "~", int(row.get("entity_id") or 0), rank, status, when))
    entries.sort()
    seen: set[tuple[str, str | None]] = set()
    out: list[dict[str, Any]] = []
    for _key, _id, _rank, status, when in entries:
        if (status, when) in seen or (out and out[-1]["status"] == status):
            continue
        seen.add((status, when))
        state = status_state(status, rows.status_states)
        out.append({"status": status, "state": state, "createdAt": when})
    return out


def _checked(row: Row, oid: object, table: str, *columns: str) -> Row:
    """`row`, after checking that Magento's always-set `columns` are set."""
    for column in columns:
        if row.get(column) is None or row.get(column) == "":
            raise MalformedOrder(oid, f"{table}.{column}", "is empty (Magento always sets it)")
    return row


def _required(order: Row, oid: object, column: str) -> Any:
    value = order.get(column)
    if value is None or value == "":
        raise MalformedOrder(oid, f"sales_order.{column}", "is empty (Magento always sets it)")
    return value


def _address(rows: OrderRows, kind: str) -> dict[str, Any] | None:
    for address in rows.addresses:
        if address.get("address_type") == kind:
            street = str(address.get("street") or "")
            return {
                "firstname": address.get("firstname"),
                "lastname": address.get("lastname"),
                "street": street,
                "multiLineStreet": street.split("\n") if street else [],
                "city": address.get("city"),
                "region": address.get("region"),
                "postcode": address.get("postcode"),
                "country": address.get("country_id"),
                "phone": address.get("telephone"),
            }
    return None


def _payment(rows: OrderRows) -> dict[str, Any]:
    payment = rows.payment or {}
    return {
        "billingAddress": _address(rows, "billing"),
        "paymentMethodCode": payment.get("method"),
        "purchaseOrderNumber": payment.get("po_number"),
        "lastTransactionId": payment.get("last_trans_id"),
        "totalAmount": rows.order.get("base_grand_total"),
        "amountPaid": payment.get("base_amount_paid"),
        "taxAmount": rows.order.get("base_tax_amount"),
        "currency": rows.order.get("base_currency_code"),
    }


def _shipping(rows: OrderRows) -> dict[str, Any]:
    order = rows.order
    return {
        "shippingAddress": _address(rows, "shipping"),
        "shippingMethodName": order.get("shipping_description"),
        "shippingMethodCode": order.get("shipping_method"),
        "shippingAmount": order.get("base_shipping_amount"),
        "shippingTax": order.get("base_shipping_tax_amount"),
    }


def _item(item: Row, categories: Mapping[int, Sequence[Row]], rows: OrderRows) -> dict[str, Any]:
    product = item.get("product_id")
    built: dict[str, Any] = {
        "itemId": {"id": str(item.get("item_id"))},
        "entityId": item.get("item_id"),
        "parentEntityId": item.get("parent_item_id"),
        "productType": item.get("product_type"),
        "productOptions": _options(item.get("product_options")),
        "sku": item.get("sku"),
        "name": item.get("name"),
        "isVirtual": bool(item.get("is_virtual")),
        "qtyOrdered": item.get("qty_ordered") or 0.0,
        "qtyInvoiced": item.get("qty_invoiced") or 0.0,
        "qtyShipped": item.get("qty_shipped") or 0.0,
        "qtyRefunded": item.get("qty_refunded") or 0.0,
        "qtyCanceled": item.get("qty_canceled") or 0.0,
        "unitPrice": item.get("base_price"),
        "itemPrice": item.get("base_row_total"),
        "discountAmount": item.get("base_discount_amount") or 0.0,
        "taxAmount": item.get("base_tax_amount") or 0.0,
        "updatedAt": stamp(item.get("updated_at")),
        "categories": [
            {"id": c["id"], "name": c.get("name"), "path": c["path"]}
            for c in (categories.get(int(product), ()) if product is not None else ())
        ],
    }
    attributes = rows.item_attributes.get(item["item_id"]) if rows.item_attributes else None
    if attributes:
        built["additionalInformation"] = custom_attributes(attributes)
    return built


def _options(raw: object) -> list[dict[str, str]]:
    """Selected options from `product_options` JSON (`attributes_info` of configurables)."""
    if not isinstance(raw, str) or not raw.startswith("{"):
        return []
    try:
        parsed = codec.loads(raw)
    except codec.JSONDecodeError:
        return []
    info = parsed.get("attributes_info") if isinstance(parsed, dict) else None
    if not isinstance(info, list):
        return []
    return [
        {"attribute": str(o.get("label")), "value": str(o.get("value"))}
        for o in info
        if isinstance(o, dict)
    ]


def _children(rows: Sequence[Row], parent_id: object) -> list[Row]:
    return [row for row in rows if row.get("parent_id") == parent_id]


def _invoices(rows: OrderRows) -> list[dict[str, Any]]:
    return [
        {
            "entityId": inv["entity_id"],
            "commerceInvoiceNumber": inv.get("increment_id"),
            "state": inv.get("state"),
            "grandTotal": inv.get("base_grand_total"),
            "taxAmount": inv.get("base_tax_amount"),
            "shippingAmount": inv.get("base_shipping_amount"),
            "createdAt": stamp(inv.get("created_at")),
            "invoiceItems": [
                _doc_item(line, "qtyInvoiced")
                for line in _children(rows.invoice_items, inv["entity_id"])
            ],
        }
        for inv in _sorted_checked(rows.invoices, rows.order, "sales_invoice")
    ]


def _sorted_checked(docs: Sequence[Row], order: Row, table: str) -> list[Row]:
    """Documents (invoices, shipments, memos) by id, each with its `created_at` checked."""
    oid = order.get("entity_id")
    return [
        _checked(d, oid, table, "created_at") for d in sorted(docs, key=lambda r: r["entity_id"])
    ]


def _doc_item(line: Row, qty_name: str) -> dict[str, Any]:
    return {
        "orderItemId": {"id": str(line.get("order_item_id"))},
        "sku": line.get("sku"),
        "name": line.get("name"),
        qty_name: line.get("qty") or 0.0,
        "basePrice": line.get("base_price", line.get("price")),
        "baseRowTotal": line.get("base_row_total"),
        "discountAmount": line.get("base_discount_amount"),
    }


def _shipments(rows: OrderRows) -> list[dict[str, Any]]:
    return [
        {
            "shipmentId": {
                "id": derived_uuid_under(("koppla-connector-shipment",), str(ship["entity_id"]))
            },
            "entityId": ship["entity_id"],
            "commerceShipmentNumber": ship.get("increment_id"),
            "createdAt": stamp(ship.get("created_at")),
            "updatedAt": stamp(ship.get("updated_at")),
            "trackingInfo": [
                {
                    "shippingCarrier": track.get("carrier_code"),
                    "shippingMethod": track.get("title"),
                    "trackingNumber": track.get("track_number"),
                }
                for track in sorted(
                    _children(rows.tracks, ship["entity_id"]), key=lambda r: r["entity_id"]
                )
            ],
            "items": [
                _doc_item(line, "qtyShipped")
                for line in _children(rows.shipment_items, ship["entity_id"])
            ],
        }
        for ship in _sorted_checked(rows.shipments, rows.order, "sales_shipment")
    ]


def _creditmemos(rows: OrderRows) -> list[dict[str, Any]]:
    return [
        {
            "creditMemoId": {
                "id": derived_uuid_under(("koppla-connector-creditmemo",), str(memo["entity_id"]))
            },
            "entityId": memo["entity_id"],
            "commerceCreditMemoNumber": memo.get("increment_id"),
            "state": memo.get("state"),
            "createdAt": stamp(memo.get("created_at")),
            "grandTotal": memo.get("base_grand_total"),
            "shippingAmount": memo.get("base_shipping_amount"),
            "adjustment": memo.get("base_adjustment"),
            "taxAmount": memo.get("base_tax_amount"),
            "transactionId": memo.get("transaction_id"),
            "currency": memo.get("base_currency_code") or rows.order.get("base_currency_code"),
            "refundItems": [
                _doc_item(line, "qtyRefunded")
                for line in _children(rows.creditmemo_items, memo["entity_id"])
            ],
        }
        for memo in _sorted_checked(rows.creditmemos, rows.order, "sales_creditmemo")
    ]


def _transaction(txn: Row) -> dict[str, Any]:
    return {
        "entityId": txn.get("transaction_id"),
        "txnId": txn.get("txn_id"),
        "type": txn.get("txn_type"),
        "createdAt": stamp(txn.get("created_at")),
    }
