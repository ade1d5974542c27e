"""Back-office events: the XDM ExperienceEvents an order's life stands for.

Pure. `history(snapshot, context)` builds the order's complete event set so far (domain.md §5.1),
with the fields of the §5.2 matrix, in the order they happened: Placed, one Invoiced per invoice,
one ItemsShipped per shipment, ShipmentCompleted if the order EVER reached state `complete`,
one CreditMemoIssued per credit memo, Cancelled if it ever reached `canceled`. Each is stamped
with the time the thing happened; for the two state events that is the first time the
snapshot's `statusHistory` shows the state, or an inference when the trail does not
(`completed_at`, `canceled_at`).

Each event has a short key (`event_keys`): `P`, `I<invoice id>`, `S<shipment id>`, `C`,
`M<memo id>`, `X`. `keyed_events(current, context, emitted)` is the part of `history` whose keys
were not emitted yet, so a state passed between two looks is still sent, once; only those events
are built. Event `_id`s are derived from the environment, the website, the order, the event type
and the sub-entity, so a resync names events as before.

Custom attributes (domain.md §8.1; the snapshot's `additionalInformation`) travel in every event
in the tenant namespace (`EventContext.tenant`): the order's at `commerce.order._<tenantId>`, an
order item's at `productListItems[i]._<tenantId>` of the entry built from that item. Without
attributes (or without a tenant) there is no `_<tenantId>` object.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from koppla.connector.redaction import drop_addresses, identity, redact_value
from koppla.core.ids import derived_uuid_under
from koppla.xdm.tenant import namespace as tenant_namespace

Snapshot = Mapping[str, Any]
Event = dict[str, Any]

PLACED = "commerce.backofficeOrderPlaced"
INVOICED = "commerce.backofficeOrderInvoiced"
ITEMS_SHIPPED = "commerce.backofficeOrderItemsShipped"
SHIPMENT_COMPLETED = "commerce.backofficeOrderShipmentCompleted"
CANCELLED = "commerce.backofficeOrderCancelled"
CREDIT_MEMO_ISSUED = "commerce.backofficeCreditMemoIssued"

STATE_COMPLETE = 4
STATE_CLOSED = 5
STATE_CANCELED = 6


@dataclass(frozen=True, slots=True)
class EventContext:
    """What an event needs beyond the snapshot: the website's settings that shape it.

    `environment_id` (the data space) is part of every event id, so two shops whose order ids
    overlap never collide in one dataset. `tenant` is the organization's tenant id, whose
    namespace (`_<tenant>`) carries the custom attributes; empty: they are left out.
    """

    website_code: str
    environment_id: str
    redact: bool = False
    tenant: str = ""


def custom_fields(attributes: Iterable[Mapping[str, Any]] | None) -> dict[str, Any]:
    """A snapshot's `additionalInformation` (`[{"name", "value"}]`) as `{name: value}`."""
    return {a["name"]: a["value"] for a in attributes or ()}


def _tenant_part(ctx: EventContext, source: Mapping[str, Any]) -> dict[str, Any]:
    """`{"_<tenant>": {name: value}}` of `source`'s custom attributes; `{}` when none."""
    attributes = source.get("additionalInformation")
    if not attributes or not ctx.tenant:
        return {}
    fields = custom_fields(attributes)
    if ctx.redact:  # payment data carries payers' emails (PayPal's `paypal_payer_email`, say)
        fields = {name: redact_value(value) for name, value in fields.items()}
    return {tenant_namespace(ctx.tenant): fields}


def event_id(
    environment: str, website: str, order_id: int, event_type: str, sub_id: object = ""
) -> str:
    """The deterministic `_id` of one back-office event.

    Equal to `koppla.core.ids.derived_uuid("koppla-connector", environment, website,
    str(order_id), event_type, str(sub_id))`.
    """
    return derived_uuid_under(
        ("koppla-connector", environment, website), str(order_id), event_type, str(sub_id)
    )


Builder = Callable[["Snapshot", "EventContext"], Event]


def _moments(snap: Snapshot) -> list[tuple[str, Builder]]:
    """Every event of the order's life so far: its key and how to build it, in order."""
    out: list[tuple[str, Builder]] = [("P", placed)]
    for inv in snap["invoices"]:
        out.append((f"I{inv['entityId']}", _bind(invoiced, inv)))
    for ship in snap["shipments"]:
        out.append((f"S{ship['entityId']}", _bind(items_shipped, ship)))
    done = completed_at(snap)
    if done is not None:
        out.append(("C", _at(shipment_completed, done)))
    for memo in snap["creditMemos"]:
        out.append((f"M{memo['entityId']}", _bind(credit_memo_issued, memo)))
    stopped = canceled_at(snap)
    if stopped is not None:
        out.append(("X", _at(cancelled, stopped)))
    return out


def _bind(build: Callable[[Snapshot, Mapping[str, Any], EventContext], Event], doc: Any) -> Builder:
    return lambda snap, ctx: build(snap, doc, ctx)


def _at(build: Callable[..., Event], when: str) -> Builder:
    return lambda snap, ctx: build(snap, ctx, when=when)


def event_keys(snap: Snapshot) -> list[str]:
    """The keys of every event `history(snap)` holds, in its order (nothing is built)."""
    return [key for key, _build in _moments(snap)]


def keyed_events(
    snap: Snapshot, ctx: EventContext, emitted: Collection[str] = ()
) -> list[tuple[str, Event]]:
    """`(key, event)` of each event of the order's life whose key is not in `emitted`."""
    return [(key, build(snap, ctx)) for key, build in _moments(snap) if key not in emitted]


def history(current: Snapshot, ctx: EventContext) -> list[Event]:
    """The order's complete event set so far, each stamped with when it happened."""
    return [event for _key, event in keyed_events(current, ctx)]


def legacy_keys(seen: Snapshot) -> frozenset[str]:
    """The keys an older connector, which derived events from state changes between two looks,
    had emitted once it saw `seen`: Placed, each document, and the state event of the state
    `seen` was in (used to migrate its state).

    An order seen `closed` may or may not have had its ShipmentCompleted sent (a state passed
    between two looks was lost), so `C` is not in its keys.
    """
    keys = {"P"}
    keys.update(f"I{d['entityId']}" for d in seen.get("invoices", ()))
    keys.update(f"S{d['entityId']}" for d in seen.get("shipments", ()))
    keys.update(f"M{d['entityId']}" for d in seen.get("creditMemos", ()))
    if seen.get("state") == STATE_COMPLETE:
        keys.add("C")
    if seen.get("state") == STATE_CANCELED:
        keys.add("X")
    return frozenset(keys)


def pack_keys(keys: Iterable[str]) -> str:
    """Event keys as one compact string (what the state stores)."""
    return " ".join(sorted(set(keys)))


def unpack_keys(packed: str | None) -> frozenset[str]:
    """The keys of a `pack_keys` string."""
    return frozenset(packed.split()) if packed else frozenset()


def _first_in_trail(snap: Snapshot, state: str) -> tuple[bool, str | None]:
    """Whether the status trail shows `state`, and the first time it does (if stamped)."""
    shown = False
    for entry in snap.get("statusHistory") or ():
        if entry.get("state") == state:
            shown = True
            if entry.get("createdAt"):
                return True, entry["createdAt"]
    return shown, None


def completed_at(snap: Snapshot) -> str | None:
    """When the order first reached state `complete`; None if it never did.

    Two witnesses, the earlier wins: the first status trail entry showing `complete`, and the
    time the documents made the order complete (`_documents_complete_at`). The trail alone can
    be late: without `sales_order_status_change_history` (Magento before 2.4.7) the state handler
    writes no trail row when a shipment completes an order, and the first `complete` row is then
    a later comment. Without either, an order shown complete became so at its last update.
    """
    shown, trail = _first_in_trail(snap, "complete")
    docs = _documents_complete_at(snap) if shown or snap["state"] in _MAY_HAVE_COMPLETED else None
    if trail is not None and docs is not None:
        return min(trail, docs)
    if trail is not None or docs is not None:
        return trail or docs
    if shown or snap["state"] == STATE_COMPLETE:
        return _updated(snap)
    return None


_MAY_HAVE_COMPLETED = (STATE_COMPLETE, STATE_CLOSED)
"""States an order can be in after it was complete without its trail showing it."""


def canceled_at(snap: Snapshot) -> str | None:
    """When the order reached state `canceled` (first in the status trail, else `updatedAt`);
    None if it never did."""
    shown, when = _first_in_trail(snap, "canceled")
    if when is not None:
        return when
    if shown or snap["state"] == STATE_CANCELED:
        return _updated(snap)
    return None


def _updated(snap: Snapshot) -> str:
    return str(snap.get("updatedAt") or snap["createdAt"])


def _documents_complete_at(snap: Snapshot) -> str | None:
    """The first time the order's documents made it complete (Magento's state handler), or None.

    Walks invoices, shipments and credit memos in time order. An order is complete once every
    line needing it (ordered less canceled) is fully invoiced, has nothing left to ship (Magento:
    `qty_to_ship = ordered - max(shipped, refunded) - canceled`; virtual lines ship nothing), and
    not everything is refunded (that closes it instead). So a partial refund of the unshipped
    rest completes an order too.
    """
    docs = [
        (str(doc["createdAt"]), kind, doc)
        for kind, key in (("invoice", "invoices"), ("ship", "shipments"), ("memo", "creditMemos"))
        for doc in snap[key]
        if doc.get("createdAt")
    ]
    lines = _lines_with_children(snap)
    if not lines or not docs:
        return None
    done: dict[str, dict[str, float]] = {"invoice": {}, "ship": {}, "memo": {}}
    docs.sort(key=lambda d: d[0])
    for index, (when, kind, doc) in enumerate(docs):
        lines_key, qty = _DOC_LINES[kind]
        _add_quantities(done[kind], doc, lines_key, qty)
        if index + 1 < len(docs) and docs[index + 1][0] == when:
            continue  # documents of one moment count together
        if _is_complete(lines, done, virtual=bool(snap.get("isVirtual"))):
            return when
    return None


_DOC_LINES = {
    "invoice": ("invoiceItems", "qtyInvoiced"),
    "ship": ("items", "qtyShipped"),
    "memo": ("refundItems", "qtyRefunded"),
}


def _lines_with_children(snap: Snapshot) -> list[list[Mapping[str, Any]]]:
    """Each visible line needing anything (ordered less canceled), followed by its children."""
    children: dict[str, list[Mapping[str, Any]]] = {}
    for item in snap["items"]:
        if item.get("parentEntityId") is not None:
            children.setdefault(str(item["parentEntityId"]), []).append(item)
    return [
        [item, *children.get(str(item["entityId"]), ())]
        for item in _visible_items(snap)
        if _need(item) > 0
    ]


def _is_complete(
    lines: list[list[Mapping[str, Any]]], done: Mapping[str, Mapping[str, float]], *, virtual: bool
) -> bool:
    """Whether the documents so far (`done`: quantities per kind and line) complete the order."""
    invoiced, shipped, refunded = done["invoice"], done["ship"], done["memo"]
    gone = {k: max(shipped.get(k, 0.0), refunded.get(k, 0.0)) for k in {*shipped, *refunded}}
    for group in lines:
        if not _covered(group, invoiced):
            return False
        if not virtual and not group[0].get("isVirtual") and not _covered(group, gone):
            return False
    return not all(_covered(group, refunded) for group in lines)


def _need(item: Mapping[str, Any]) -> float:
    return float(item.get("qtyOrdered") or 0) - float(item.get("qtyCanceled") or 0)


def _add_quantities(out: dict[str, float], doc: Mapping[str, Any], lines: str, qty: str) -> None:
    """Add one document's quantity per order line id to `out`."""
    for line in doc.get(lines) or ():
        key = str(line["orderItemId"]["id"])
        out[key] = out.get(key, 0.0) + float(line.get(qty) or 0)


def _covered(lines: list[Mapping[str, Any]], done: Mapping[str, float]) -> bool:
    """Whether the documents cover a visible line: its own quantity, or each child's."""
    item, children = lines[0], lines[1:]
    if done.get(str(item["entityId"]), 0.0) >= _need(item):
        return True
    return bool(children) and all(done.get(str(c["entityId"]), 0.0) >= _need(c) for c in children)


def _base(
    snap: Snapshot,
    ctx: EventContext,
    event_type: str,
    sub_id: object,
    when: str,
    order: dict[str, Any],
) -> Event:
    """The fields of every event, with `commerce.order` = `order` (already pruned)."""
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
            "order": {
                "purchaseID": snap["commerceOrderNumber"],
                **order,
                **_tenant_part(ctx, snap),
            },
            "commerceScope": _nn(commerce_scope(snap, ctx)),
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


def _finish(
    event: Event,
    ctx: EventContext,
    *,
    shipping: dict[str, Any] | None = None,
    billing: dict[str, Any] | None = None,
    lines: list[dict[str, Any]] | None = None,
) -> Event:
    """`event` with its shipping, billing and lines where they carry data (the builders make
    every part pruned already: `prune(event) == event`), redacted if asked."""
    if shipping:
        event["commerce"]["shipping"] = shipping
    if billing:
        event["commerce"]["billing"] = {"address": billing}
    if lines:
        event["productListItems"] = lines
    return drop_addresses(event) if ctx.redact else event


def _nn(fields: Mapping[str, Any]) -> dict[str, Any]:
    """`fields` without its None values (one level)."""
    return {key: value for key, value in fields.items() if value is not None}


def prune(value: Any) -> Any:
    """Drop None values and empty containers so every field present carries data.

    A list keeps its length: its elements are pruned, but an element pruned to `{}` stays.
    """
    if isinstance(value, dict):
        return _prune_dict(value)
    if isinstance(value, list):
        return _prune_list(value)
    return value


def _prune_dict(value: Mapping[str, Any]) -> dict[str, Any]:
    out = {}
    for key, item in value.items():
        if item is None:
            continue
        if isinstance(item, dict):
            item = _prune_dict(item)
            if not item:
                continue
        elif isinstance(item, list):
            if not item:
                continue
            item = _prune_list(item)
        out[key] = item
    return out


def _prune_list(value: list[Any]) -> list[Any]:
    return [
        _prune_dict(v) if isinstance(v, dict) else _prune_list(v) if isinstance(v, list) else v
        for v in value
    ]


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


def _address(raw: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """`address`, pruned; None when nothing is known."""
    found = address(raw)
    return (_nn(found) or None) if found is not None else None


def _positive(value: float | None) -> float | None:
    """Magento stores order discounts as negative numbers; XDM carries the amount."""
    return None if value is None else abs(value)


def _qty(value: Any) -> int:
    return round(float(value or 0))


def _payment(snap: Snapshot, amount: object, *, with_txn: bool) -> dict[str, Any]:
    pay = snap["payment"]
    txn = None
    if with_txn:
        txns = [t["txnId"] for t in snap.get("transactions", ()) if t.get("txnId")]
        txn = txns[0] if txns else pay.get("lastTransactionId")
    return _nn(
        {
            "transactionID": txn,
            "paymentAmount": amount,
            "paymentType": pay.get("paymentMethodCode"),
            "currencyCode": snap["currency"],
        }
    )


def _line(
    item: Mapping[str, Any], snap: Snapshot, ctx: EventContext, line_id: str | None = None
) -> dict[str, Any]:
    line = _nn(
        {
            "SKU": item.get("sku"),
            "name": item.get("name"),
            "quantity": _qty(item.get("qtyOrdered")),
            "priceTotal": item.get("itemPrice"),
            "discountAmount": item.get("discountAmount"),
            "currencyCode": snap["currency"],
            "selectedOptions": _options(item),
            "productCategories": _categories(item),
            "lineItemId": line_id,
        }
    )
    line.update(_tenant_part(ctx, item))
    return line


def _options(item: Mapping[str, Any]) -> list[Any] | None:
    """The line's selected options (pruned; None when it has none)."""
    options = item.get("productOptions")
    return prune(options) if options else None


def _categories(item: Mapping[str, Any]) -> list[dict[str, Any]] | None:
    """The feed item's categories as XDM `productCategories` (None when it has none)."""
    out = []
    for c in item.get("categories") or ():
        category = {"categoryID": str(c["id"])}
        name, path = c.get("name"), c.get("path")
        if name is not None:
            category["categoryName"] = name
        if path is not None:
            category["categoryPath"] = path
        out.append(category)
    return out or None


def _visible_items(snap: Snapshot) -> list[Mapping[str, Any]]:
    """Order lines without the child rows of configurable/bundle products."""
    return [i for i in snap["items"] if i.get("parentEntityId") is None]


def _doc_lines(
    snap: Snapshot, ctx: EventContext, lines: list[Mapping[str, Any]], qty: str
) -> list[dict[str, Any]]:
    by_id = {str(i["entityId"]): i for i in snap["items"]}
    out = []
    for line in lines:
        item = by_id.get(line["orderItemId"]["id"], {})
        if item.get("parentEntityId") is not None:
            continue
        out.append(
            _nn(
                {
                    "SKU": line.get("sku") or item.get("sku"),
                    "name": line.get("name") or item.get("name"),
                    "quantity": _qty(line.get(qty)),
                    "priceTotal": line.get("baseRowTotal"),
                    "discountAmount": line.get("discountAmount"),
                    "currencyCode": snap["currency"],
                    "selectedOptions": _options(item),
                    "productCategories": _categories(item),
                    "lineItemId": line["orderItemId"]["id"],
                }
            )
        )
        out[-1].update(_tenant_part(ctx, item))
    return out


def placed(snap: Snapshot, ctx: EventContext) -> Event:
    """`commerce.backofficeOrderPlaced`, stamped with the order's created_at."""
    order = _nn(
        {
            "currencyCode": snap["currency"],
            "priceTotal": snap["grandTotal"],
            "taxAmount": snap.get("taxAmount"),
            "discountAmount": _positive(snap.get("discountAmount")),
            "createdDate": snap["createdAt"],
            "payments": [_payment(snap, snap["grandTotal"], with_txn=True)],
        }
    )
    event = _base(snap, ctx, PLACED, "", snap["createdAt"], order)
    return _finish(
        event,
        ctx,
        shipping=_shipping(snap, currency=True),
        billing=_address(snap["payment"].get("billingAddress")),
        lines=[_line(i, snap, ctx, str(i["entityId"])) for i in _visible_items(snap)],
    )


def _shipping(snap: Snapshot, *, currency: bool = False, **more: Any) -> dict[str, Any]:
    ship = snap["shipping"]
    return _nn(
        {
            "shippingMethod": ship.get("shippingMethodCode") or ship.get("shippingMethodName"),
            "shippingAmount": ship.get("shippingAmount"),
            "currencyCode": snap["currency"] if currency else None,
            **more,
        }
    )


def invoiced(snap: Snapshot, invoice: Mapping[str, Any], ctx: EventContext) -> Event:
    """`commerce.backofficeOrderInvoiced` for one invoice, stamped with its created_at."""
    order = _nn(
        {
            "purchaseOrderNumber": snap["payment"].get("purchaseOrderNumber"),
            "priceTotal": invoice.get("grandTotal"),
            "currencyCode": snap["currency"],
            "payments": [_payment(snap, invoice.get("grandTotal"), with_txn=False)],
        }
    )
    event = _base(snap, ctx, INVOICED, invoice["entityId"], invoice["createdAt"], order)
    return _finish(
        event,
        ctx,
        shipping=_shipping(snap),
        lines=_doc_lines(snap, ctx, invoice["invoiceItems"], "qtyInvoiced"),
    )


def items_shipped(snap: Snapshot, shipment: Mapping[str, Any], ctx: EventContext) -> Event:
    """`commerce.backofficeOrderItemsShipped` for one shipment, with its tracking number."""
    order = _nn(
        {
            "purchaseOrderNumber": snap["payment"].get("purchaseOrderNumber"),
            "priceTotal": snap["grandTotal"],
            "currencyCode": snap["currency"],
            "lastUpdatedDate": snap.get("updatedAt"),
            "payments": [_payment(snap, snap["grandTotal"], with_txn=True)],
        }
    )
    event = _base(snap, ctx, ITEMS_SHIPPED, shipment["entityId"], shipment["createdAt"], order)
    tracks = shipment.get("trackingInfo") or []
    numbers = [str(t["trackingNumber"]) for t in tracks if t.get("trackingNumber")]
    shipping = _shipping(
        snap,
        currency=True,
        shipDate=shipment["createdAt"],
        trackingNumber=",".join(numbers) or None,
        address=_address(snap["shipping"].get("shippingAddress")),
    )
    return _finish(
        event,
        ctx,
        shipping=shipping,
        billing=_address(snap["payment"].get("billingAddress")),
        lines=_doc_lines(snap, ctx, shipment["items"], "qtyShipped"),
    )


def shipment_completed(snap: Snapshot, ctx: EventContext, *, when: str | None = None) -> Event:
    """`commerce.backofficeOrderShipmentCompleted`: the order reached state `complete`, at
    `when` (default: `completed_at`, else the order's last update)."""
    when = when or completed_at(snap) or _updated(snap)
    order = _nn(
        {
            "taxAmount": snap.get("taxAmount"),
            "createdDate": snap["createdAt"],
            "payments": [_payment(snap, snap["grandTotal"], with_txn=True)],
        }
    )
    event = _base(snap, ctx, SHIPMENT_COMPLETED, "", when, order)
    last_ship = max((s["createdAt"] for s in snap["shipments"]), default=None)
    shipping = _shipping(
        snap, shipDate=last_ship, address=_address(snap["shipping"].get("shippingAddress"))
    )
    return _finish(
        event,
        ctx,
        shipping=shipping,
        billing=_address(snap["payment"].get("billingAddress")),
        lines=[_line(i, snap, ctx) for i in _visible_items(snap)],
    )


def cancelled(snap: Snapshot, ctx: EventContext, *, when: str | None = None) -> Event:
    """`commerce.backofficeOrderCancelled`: the order reached state `canceled`, at `when`
    (default: `canceled_at`, else the order's last update)."""
    when = when or canceled_at(snap) or _updated(snap)
    order = _nn(
        {
            "purchaseOrderNumber": snap["payment"].get("purchaseOrderNumber"),
            "lastUpdatedDate": when,
            "cancelDate": when,
        }
    )
    return _finish(_base(snap, ctx, CANCELLED, "", when, order), ctx)


def credit_memo_issued(snap: Snapshot, memo: Mapping[str, Any], ctx: EventContext) -> Event:
    """`commerce.backofficeCreditMemoIssued` for one credit memo, with its refund."""
    refund = _nn(
        {
            "transactionID": memo.get("transactionId") or memo.get("commerceCreditMemoNumber"),
            "refundAmount": memo.get("grandTotal"),
            "refundPaymentType": snap["payment"].get("paymentMethodCode"),
            "currencyCode": memo.get("currency") or snap["currency"],
        }
    )
    order = _nn(
        {
            "purchaseOrderNumber": snap["payment"].get("purchaseOrderNumber"),
            "lastUpdatedDate": memo["createdAt"],
            "refunds": [refund],
        }
    )
    event = _base(snap, ctx, CREDIT_MEMO_ISSUED, memo["entityId"], memo["createdAt"], order)
    return _finish(event, ctx, lines=_doc_lines(snap, ctx, memo["refundItems"], "qtyRefunded"))
