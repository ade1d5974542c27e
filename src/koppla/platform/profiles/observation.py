"""Observations: one stored record or event, as the profile stage reads it.

Pure. A row of a profile-enabled dataset becomes an `Observation`: its identities (primary
first), its time, and what it contributes to a profile. A record's time is its
`extSourceSystemAudit.lastUpdatedDate` when it carries one, else the time its batch was stored;
an event's time is its `timestamp`. What an event adds to the computed attributes (an order
placed, refunded or cancelled; the cart; a deleted account) is read here too, so the stage only
moves values.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from koppla.platform.profiles.identity import Identity, identities_of

Kind = Literal["record", "event"]
FactKind = Literal["placed", "refund", "cancel"]

PLACED = "commerce.backofficeOrderPlaced"
CANCELLED = "commerce.backofficeOrderCancelled"
REFUNDED = "commerce.backofficeCreditMemoIssued"
DELETED = "userAccount.backofficeDeleteProfile"
CART_EVENTS = frozenset(
    {
        "commerce.productListAdds",
        "commerce.productListOpens",
        "commerce.productListRemovals",
        "commerce.productListViews",
        "commerce.checkouts",
    }
)


@dataclass(frozen=True, slots=True)
class OrderFact:
    """What one back-office event says about an order's value."""

    purchase_id: str
    kind: FactKind
    amount: float
    currency: str | None


@dataclass(frozen=True, slots=True)
class Observation:
    """One record or event of a profile-enabled dataset, ready for the profile stage."""

    dataset_id: str
    kind: Kind
    record_id: str
    identities: tuple[Identity, ...]
    at_ms: int
    body: Mapping[str, Any]
    event_type: str | None = None
    order: OrderFact | None = None
    cart: Mapping[str, Any] | None = None
    deletes: tuple[Identity, ...] = ()

    @property
    def primary(self) -> Identity:
        """The identity the observation is filed under (its primary)."""
        return self.identities[0]


def observe(
    dataset_id: str, kind: Kind, row: Mapping[str, Any], stored_ms: int
) -> Observation | None:
    """The observation of one stored row; None when it names no usable identity.

    `row` is the XDM document a stored row holds (`rows.document`); `stored_ms` is when its
    batch was committed.
    """
    body = {k: v for k, v in row.items() if v is not None}
    identities = tuple(identities_of(body))
    if not identities:
        return None
    record_id = _clean(str(body.get("_id") or ""))
    if kind == "record":
        audit = body.get("extSourceSystemAudit")
        updated = audit.get("lastUpdatedDate") if isinstance(audit, Mapping) else None
        at_ms = _ms(updated) or stored_ms
        return Observation(dataset_id, kind, record_id, identities, at_ms, body)
    raw_type = body.get("eventType")
    event_type = _clean(raw_type) if isinstance(raw_type, str) else None
    at_ms = _ms(body.get("timestamp")) or stored_ms
    return Observation(
        dataset_id,
        kind,
        record_id,
        identities,
        at_ms,
        body,
        event_type=event_type,
        order=order_fact(event_type, body),
        cart=cart_of(event_type, body, at_ms),
        deletes=_deleted(event_type, body, identities),
    )


def order_fact(event_type: str | None, body: Mapping[str, Any]) -> OrderFact | None:
    """The order value a back-office event carries (placed total, refund, cancellation)."""
    if event_type not in (PLACED, CANCELLED, REFUNDED):
        return None
    order = _get(body, "commerce", "order")
    purchase = order.get("purchaseID") if isinstance(order, Mapping) else None
    if not isinstance(purchase, str) or not _clean(purchase) or not isinstance(order, Mapping):
        return None
    purchase = _clean(purchase)
    if event_type == PLACED:
        return OrderFact(purchase, "placed", _number(order.get("priceTotal")), _text(order))
    if event_type == CANCELLED:
        return OrderFact(purchase, "cancel", 0.0, _text(order))
    refunds = order.get("refunds")
    amount = 0.0
    currency = None
    if isinstance(refunds, list):
        for refund in refunds:
            if isinstance(refund, Mapping):
                amount += _number(refund.get("refundAmount"))
                currency = currency or _text(refund)
    return OrderFact(purchase, "refund", amount, currency)


def cart_of(event_type: str | None, body: Mapping[str, Any], at_ms: int) -> dict[str, Any] | None:
    """The cart as a cart event shows it: its id, its items and when."""
    if event_type not in CART_EVENTS:
        return None
    cart = _get(body, "commerce", "cart")
    items = body.get("productListItems")
    kept = []
    if isinstance(items, list):
        for item in items[:50]:
            if isinstance(item, Mapping):
                kept.append(
                    {
                        k: item[k]
                        for k in ("SKU", "name", "quantity", "priceTotal", "currencyCode")
                        if k in item
                    }
                )
    return {
        "cartID": cart.get("cartID") if isinstance(cart, Mapping) else None,
        "eventType": event_type,
        "items": kept,
        "at_ms": at_ms,
    }


def _deleted(
    event_type: str | None, body: Mapping[str, Any], identities: tuple[Identity, ...]
) -> tuple[Identity, ...]:
    """The identities whose record data an account-deleted event removes (its CustomerIds)."""
    if event_type != DELETED:
        return ()
    customers = tuple(i for i in identities if i.namespace == "CustomerId")
    return customers or identities[:1]


def _get(body: Mapping[str, Any], *path: str) -> Any:
    node: Any = body
    for key in path:
        if not isinstance(node, Mapping):
            return None
        node = node.get(key)
    return node


def _number(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0.0
    return float(value)


def _text(node: Mapping[str, Any]) -> str | None:
    value = node.get("currencyCode")
    return _clean(value) if isinstance(value, str) else None


def _clean(text: str) -> str:
    """`text` without NUL characters, which PostgreSQL text columns cannot hold."""
    return text.replace("\x00", "")


def _ms(value: object) -> int | None:
    """Milliseconds since the epoch of a stored date-time (datetime or ISO text)."""
    if isinstance(value, datetime):
        return int(value.timestamp() * 1000)
    if isinstance(value, str) and value:
        try:
            return int(datetime.fromisoformat(value.upper()).timestamp() * 1000)
        except ValueError:
            return None
    return None
