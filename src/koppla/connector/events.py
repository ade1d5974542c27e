"""Back-office events: the XDM ExperienceEvents an order snapshot change stands for.

Pure. `derive_events(previous, current, context)` compares two feed snapshots of one order
(previous is None the first time) and builds every event of domain.md §5.1 the change implies,
with the fields of the §5.2 matrix, in the order they happened. Event `_id`s are derived from
the website, the order, the event type and the sub-entity, so a resync names events as before.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from koppla.connector.redaction import drop_addresses, identity
from koppla.core.ids import derived_uuid

Snapshot = Mapping[str, Any]
Event = dict[str, Any]

PLACED = "commerce.backofficeOrderPlaced"
INVOICED = "commerce.backofficeOrderInvoiced"
ITEMS_SHIPPED = "commerce.backofficeOrderItemsShipped"
SHIPMENT_COMPLETED = "commerce.backofficeOrderShipmentCompleted"
CANCELLED = "commerce.backofficeOrderCancelled"
CREDIT_MEMO_ISSUED = "commerce.backofficeCreditMemoIssued"

STATE_COMPLETE = 4
STATE_CANCELED = 6


@dataclass(frozen=True, slots=True)
class EventContext:
    """What an event needs beyond the snapshot: the website's settings that shape it.

    `environment_id` (the data space) is part of every event id, so two shops whose order ids
    overlap never collide in one dataset.
    """

    website_code: str
    environment_id: str
    redact: bool = False


def event_id(
    environment: str, website: str, order_id: int, event_type: str, sub_id: object = ""
) -> str:
    """The deterministic `_id` of one back-office event."""
    return derived_uuid(
        "koppla-connector", environment, website, str(order_id), event_type, str(sub_id)
    )


def derive_events(previous: Snapshot | None, current: Snapshot, ctx: EventContext) -> list[Event]:
    """Every back-office event between `previous` (None: never seen) and `current`."""
    before = previous or {}
    events: list[Event] = []
    if previous is None:
        events.append(placed(current, ctx))
    seen_invoices = {i["entityId"] for i in before.get("invoices", [])}
    events += [
        invoiced(current, i, ctx) for i in current["invoices"] if i["entityId"] not in seen_invoices
    ]
    seen_ships = {s["entityId"] for s in before.get("shipments", [])}
    events += [
        items_shipped(current, s, ctx)
        for s in current["shipments"]
        if s["entityId"] not in seen_ships
    ]
    if current["state"] == STATE_COMPLETE and before.get("state") != STATE_COMPLETE:
        events.append(shipment_completed(current, ctx))
    seen_memos = {m["entityId"] for m in before.get("creditMemos", [])}
    events += [
        credit_memo_issued(current, m, ctx)
        for m in current["creditMemos"]
        if m["entityId"] not in seen_memos
    ]
    if current["state"] == STATE_CANCELED and before.get("state") != STATE_CANCELED:
        events.append(cancelled(current, ctx))
    return events


def history(current: Snapshot, ctx: EventContext) -> list[Event]:
    """The whole life of an order so far, as if it had never been sent (for a resync)."""
    return derive_events(None, current, ctx)


def _base(snap: Snapshot, ctx: EventContext, event_type: str, sub_id: object, when: str) -> Event:
    namespace, shopper = identity(snap["customerEmail"], redact=ctx.redact)
    return {
        "_id": event_id(
            ctx.environment_id, ctx.website_code, snap["commerceOrderId"], event_type, sub_id
        ),
        "timestamp": when,
        "eventType": event_type,
        "identityMap": {namespace: [{"id": shopper, "primary": True}]},
        "personalEmail": {"address": shopper},
        "commerce": {
            "order": {"purchaseID": snap["commerceOrderNumber"]},
            "commerceScope": commerce_scope(snap, ctx),
        },
    }


def commerce_scope(snap: Snapshot, ctx: EventContext) -> dict[str, Any]:
    """`commerce.commerceScope` of an order's or a customer's snapshot."""
    return {
        "environmentID": ctx.environment_id,
        "websiteCode": snap.get("websiteCode"),
        "storeCode": snap.get("storeCode"),
        "storeViewCode": snap.get("storeViewCode"),
    }


def _finish(event: Event, ctx: EventContext) -> Event:
    pruned: Event = prune(event)
    return drop_addresses(pruned) if ctx.redact else pruned


def prune(value: Any) -> Any:
    """Drop None values and empty containers so every field present carries data."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if item is None:
                continue
            if isinstance(item, dict | list):
                item = prune(item)
                if not item:
                    continue
            out[key] = item
        return out
    if isinstance(value, list):
        return [prune(v) if isinstance(v, dict | list) else v for v in value]
    return value


def address(raw: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """An XDM postal address from a snapshot's address (`multiLineStreet`, `city`, ...)."""
    if not raw:
        return None
    lines = raw.get("multiLineStreet") or []
    return {
        "street1": lines[0] if lines else None,
        "street2": lines[1] if len(lines) > 1 else None,
        "city": raw.get("city"),
        "state": raw.get("region"),
        "postalCode": raw.get("postcode"),
        "country": raw.get("country"),
    }


def _positive(value: float | None) -> float | None:
    """Magento stores order discounts as negative numbers; XDM carries the amount."""
    return None if value is None else abs(value)


def _qty(value: Any) -> int:
    return round(float(value or 0))


def _payment(snap: Snapshot, amount: object, *, with_txn: bool) -> dict[str, Any]:
    pay = snap["payment"]
    txns = [t["txnId"] for t in snap.get("transactions", []) if t.get("txnId")]
    return {
        "transactionID": (txns[0] if txns else pay.get("lastTransactionId")) if with_txn else None,
        "paymentAmount": amount,
        "paymentType": pay.get("paymentMethodCode"),
        "currencyCode": snap["currency"],
    }


def _line(item: Mapping[str, Any], snap: Snapshot, **extra: Any) -> dict[str, Any]:
    return {
        "SKU": item.get("sku"),
        "name": item.get("name"),
        "quantity": _qty(item.get("qtyOrdered")),
        "priceTotal": item.get("itemPrice"),
        "discountAmount": item.get("discountAmount"),
        "currencyCode": snap["currency"],
        "selectedOptions": item.get("productOptions") or None,
        "productCategories": _categories(item),
        **extra,
    }


def _categories(item: Mapping[str, Any]) -> list[dict[str, Any]] | None:
    """The feed item's categories as XDM `productCategories` (None when it has none)."""
    return [
        {
            "categoryID": str(c["id"]),
            "categoryName": c.get("name"),
            "categoryPath": c.get("path"),
        }
        for c in item.get("categories") or ()
    ] or None


def _visible_items(snap: Snapshot) -> list[Mapping[str, Any]]:
    """Order lines without the child rows of configurable/bundle products."""
    return [i for i in snap["items"] if i.get("parentEntityId") is None]


def _doc_lines(snap: Snapshot, lines: list[Mapping[str, Any]], qty: str) -> list[dict[str, Any]]:
    by_id = {str(i["entityId"]): i for i in snap["items"]}
    out = []
    for line in lines:
        item = by_id.get(line["orderItemId"]["id"], {})
        if item.get("parentEntityId") is not None:
            continue
        out.append(
            {
                "SKU": line.get("sku") or item.get("sku"),
                "name": line.get("name") or item.get("name"),
                "quantity": _qty(line.get(qty)),
                "priceTotal": line.get("baseRowTotal"),
                "discountAmount": line.get("discountAmount"),
                "currencyCode": snap["currency"],
                "selectedOptions": item.get("productOptions") or None,
                "productCategories": _categories(item),
                "lineItemId": line["orderItemId"]["id"],
            }
        )
    return out


def placed(snap: Snapshot, ctx: EventContext) -> Event:
    """`commerce.backofficeOrderPlaced`, stamped with the order's created_at."""
    event = _base(snap, ctx, PLACED, "", snap["createdAt"])
    commerce = event["commerce"]
    commerce["order"].update(
        currencyCode=snap["currency"],
        priceTotal=snap["grandTotal"],
        taxAmount=snap.get("taxAmount"),
        discountAmount=_positive(snap.get("discountAmount")),
        createdDate=snap["createdAt"],
        payments=[_payment(snap, snap["grandTotal"], with_txn=True)],
    )
    commerce["shipping"] = _shipping(snap, currency=True)
    commerce["billing"] = {"address": address(snap["payment"].get("billingAddress"))}
    event["productListItems"] = [
        _line(i, snap, lineItemId=str(i["entityId"])) for i in _visible_items(snap)
    ]
    return _finish(event, ctx)


def _shipping(snap: Snapshot, *, currency: bool = False) -> dict[str, Any]:
    ship = snap["shipping"]
    return {
        "shippingMethod": ship.get("shippingMethodCode") or ship.get("shippingMethodName"),
        "shippingAmount": ship.get("shippingAmount"),
        "currencyCode": snap["currency"] if currency else None,
    }


def invoiced(snap: Snapshot, invoice: Mapping[str, Any], ctx: EventContext) -> Event:
    """`commerce.backofficeOrderInvoiced` for one invoice, stamped with its created_at."""
    event = _base(snap, ctx, INVOICED, invoice["entityId"], invoice["createdAt"])
    event["commerce"]["order"].update(
        purchaseOrderNumber=snap["payment"].get("purchaseOrderNumber"),
        priceTotal=invoice.get("grandTotal"),
        currencyCode=snap["currency"],
        payments=[_payment(snap, invoice.get("grandTotal"), with_txn=False)],
    )
    event["commerce"]["shipping"] = _shipping(snap)
    event["productListItems"] = _doc_lines(snap, invoice["invoiceItems"], "qtyInvoiced")
    return _finish(event, ctx)


def items_shipped(snap: Snapshot, shipment: Mapping[str, Any], ctx: EventContext) -> Event:
    """`commerce.backofficeOrderItemsShipped` for one shipment, with its tracking number."""
    event = _base(snap, ctx, ITEMS_SHIPPED, shipment["entityId"], shipment["createdAt"])
    event["commerce"]["order"].update(
        purchaseOrderNumber=snap["payment"].get("purchaseOrderNumber"),
        priceTotal=snap["grandTotal"],
        currencyCode=snap["currency"],
        lastUpdatedDate=snap.get("updatedAt"),
        payments=[_payment(snap, snap["grandTotal"], with_txn=True)],
    )
    tracks = shipment.get("trackingInfo") or []
    numbers = [str(t["trackingNumber"]) for t in tracks if t.get("trackingNumber")]
    shipping = _shipping(snap, currency=True)
    shipping.update(
        shipDate=shipment["createdAt"],
        trackingNumber=",".join(numbers) or None,
        address=address(snap["shipping"].get("shippingAddress")),
    )
    event["commerce"]["shipping"] = shipping
    event["commerce"]["billing"] = {"address": address(snap["payment"].get("billingAddress"))}
    event["productListItems"] = _doc_lines(snap, shipment["items"], "qtyShipped")
    return _finish(event, ctx)


def shipment_completed(snap: Snapshot, ctx: EventContext) -> Event:
    """`commerce.backofficeOrderShipmentCompleted`: the order reached state `complete`."""
    when = snap.get("updatedAt") or snap["createdAt"]
    event = _base(snap, ctx, SHIPMENT_COMPLETED, "", when)
    event["commerce"]["order"].update(
        taxAmount=snap.get("taxAmount"),
        createdDate=snap["createdAt"],
        payments=[_payment(snap, snap["grandTotal"], with_txn=True)],
    )
    last_ship = max((s["createdAt"] for s in snap["shipments"]), default=None)
    shipping = _shipping(snap)
    shipping.update(shipDate=last_ship, address=address(snap["shipping"].get("shippingAddress")))
    event["commerce"]["shipping"] = shipping
    event["commerce"]["billing"] = {"address": address(snap["payment"].get("billingAddress"))}
    event["productListItems"] = [_line(i, snap) for i in _visible_items(snap)]
    return _finish(event, ctx)


def cancelled(snap: Snapshot, ctx: EventContext) -> Event:
    """`commerce.backofficeOrderCancelled`: the order reached state `canceled`."""
    when = snap.get("updatedAt") or snap["createdAt"]
    event = _base(snap, ctx, CANCELLED, "", when)
    event["commerce"]["order"].update(
        purchaseOrderNumber=snap["payment"].get("purchaseOrderNumber"),
        lastUpdatedDate=when,
        cancelDate=when,
    )
    return _finish(event, ctx)


def credit_memo_issued(snap: Snapshot, memo: Mapping[str, Any], ctx: EventContext) -> Event:
    """`commerce.backofficeCreditMemoIssued` for one credit memo, with its refund."""
    event = _base(snap, ctx, CREDIT_MEMO_ISSUED, memo["entityId"], memo["createdAt"])
    event["commerce"]["order"].update(
        purchaseOrderNumber=snap["payment"].get("purchaseOrderNumber"),
        lastUpdatedDate=memo["createdAt"],
        refunds=[
            {
                "transactionID": memo.get("transactionId") or memo.get("commerceCreditMemoNumber"),
                "refundAmount": memo.get("grandTotal"),
                "refundPaymentType": snap["payment"].get("paymentMethodCode"),
                "currencyCode": memo.get("currency") or snap["currency"],
            }
        ],
    )
    event["productListItems"] = _doc_lines(snap, memo["refundItems"], "qtyRefunded")
    return _finish(event, ctx)
