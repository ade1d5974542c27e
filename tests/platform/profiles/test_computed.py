"""Computed attributes: first and last seen, orders, lifetime value, last cart."""

from __future__ import annotations

from koppla.platform.profiles.computed import Computed, computed
from koppla.platform.profiles.stored import Activity, Fact


def test_times_and_cart_combine_over_every_identity() -> None:
    browsing = Activity(100, 500, 3, {"cartID": "a"}, 400)
    signed_in = Activity(50, 450, 2, {"cartID": "b"}, 450)

    result = computed([browsing, signed_in], [])

    assert result == Computed(50, 500, 0, 0.0, {"cartID": "b"})


def test_lifetime_value_counts_orders_kept_less_refunds() -> None:
    facts = [
        Fact("e1", 1, "A", "placed", 100.0, "USD", 1),
        Fact("e2", 1, "B", "placed", 50.0, "USD", 2),
        Fact("e3", 2, "A", "refund", 30.0, "USD", 3),
        Fact("e4", 1, "C", "placed", 70.0, "USD", 4),
        Fact("e5", 2, "C", "cancel", 0.0, None, 5),
    ]

    result = computed([], facts)

    assert (result.orders, result.lifetime_value) == (2, 120.0)
    assert result.first_seen_ms is None and result.last_cart is None
