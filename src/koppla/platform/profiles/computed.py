"""Computed attributes: what a merchant asks of a profile first, from its identities' activity.

Pure. `computed(activity, facts)` combines the activity of every identity of one profile:
first and last seen (earliest and latest event), orders (orders placed and not cancelled),
lifetime value (their placed totals less refunds on them) and the last cart (the newest cart
event's cart). Every input is idempotent to replay: times combine by min and max, and order
facts are keyed by the event that carried them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from koppla.platform.profiles.stored import Activity, Fact


@dataclass(frozen=True, slots=True)
class Computed:
    """A profile's computed attributes."""

    first_seen_ms: int | None
    last_seen_ms: int | None
    orders: int
    lifetime_value: float
    last_cart: dict[str, Any] | None


def computed(activity: Iterable[Activity], facts: Iterable[Fact]) -> Computed:
    """The computed attributes of one profile from its identities' activity and order facts."""
    first: int | None = None
    last: int | None = None
    cart: dict[str, Any] | None = None
    cart_ms = -1
    for one in activity:
        first = one.first_ms if first is None else min(first, one.first_ms)
        last = one.last_ms if last is None else max(last, one.last_ms)
        if one.cart is not None and one.cart_ms is not None and one.cart_ms > cart_ms:
            cart, cart_ms = one.cart, one.cart_ms
    placed: dict[str, float] = {}
    refunded: dict[str, float] = {}
    cancelled: set[str] = set()
    for fact in facts:
        if fact.kind == "placed":
            placed[fact.purchase_id] = fact.amount
        elif fact.kind == "refund":
            refunded[fact.purchase_id] = refunded.get(fact.purchase_id, 0.0) + fact.amount
        elif fact.kind == "cancel":
            cancelled.add(fact.purchase_id)
    kept = [p for p in placed if p not in cancelled]
    value = sum(placed[p] - refunded.get(p, 0.0) for p in kept)
    return Computed(first, last, len(kept), round(value, 4), cart)
