"""Orders built in memory by the demo store's own actions, as `OrderRows` (no database)."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

from koppla.connector.demo_store import (
    CATEGORIES,
    PRODUCT_CATEGORIES,
    PRODUCT_IDS,
    Draft,
    Ids,
    cancel,
    invoice,
    new_order,
    refund,
    ship,
)
from koppla.connector.events import EventContext
from koppla.connector.snapshot import OrderRows, Scope, build_snapshot
from koppla.connector.source import product_categories

SCOPE = Scope("base", "main_website_store", "default")
CTX = EventContext("base", "env-1")
PLACED_AT = datetime(2026, 11, 2, 9, 30, 0)


def demo_categories(*, names: bool = True) -> dict[int, list[dict[str, Any]]]:
    """The demo catalog's product categories, as the store source reads them."""
    parents = {cid: parent for cid, parent, _name in CATEGORIES}

    def path(cid: int) -> str:
        return f"{path(parents[cid])}/{cid}" if parents[cid] else str(cid)

    links = [
        {"product_id": PRODUCT_IDS[sku], "category_id": cid, "path": path(cid)}
        for sku, ids in PRODUCT_CATEGORIES.items()
        for cid in ids
    ]
    known = {cid: name for cid, _parent, name in CATEGORIES} if names else None
    return product_categories(links, known)


class Order:
    """One in-memory order and its life so far."""

    def __init__(self, seed: int = 1) -> None:
        self.rng = random.Random(seed)
        self.ids = Ids()
        self.draft: Draft = new_order(self.rng, self.ids, PLACED_AT)
        self.rows: dict[str, list[dict[str, Any]]] = {}
        self._absorb()

    def _absorb(self) -> None:
        for name, rows in self.draft.new.items():
            self.rows.setdefault(name, []).extend(rows)
        self.draft.new = {}

    def at(self, hours: int) -> datetime:
        return PLACED_AT + timedelta(hours=hours)

    def invoice(self, hours: int = 1) -> Order:
        invoice(self.draft, self.ids, self.at(hours))
        self._absorb()
        return self

    def ship(self, hours: int = 2) -> Order:
        ship(self.draft, self.ids, self.at(hours), self.rng)
        self._absorb()
        return self

    def refund(self, hours: int = 3) -> Order:
        refund(self.draft, self.ids, self.at(hours))
        self._absorb()
        return self

    def cancel(self, hours: int = 1) -> Order:
        cancel(self.draft, self.at(hours))
        self._absorb()
        return self

    def order_rows(self, categories: dict[int, list[dict[str, Any]]] | None = None) -> OrderRows:
        get = self.rows.get
        return OrderRows(
            order=dict(self.draft.order),
            scope=SCOPE,
            items=[dict(i) for i in self.draft.items],
            addresses=get("sales_order_address", []),
            payment=dict(self.draft.payment),
            invoices=get("sales_invoice", []),
            invoice_items=get("sales_invoice_item", []),
            shipments=get("sales_shipment", []),
            shipment_items=get("sales_shipment_item", []),
            tracks=get("sales_shipment_track", []),
            creditmemos=get("sales_creditmemo", []),
            creditmemo_items=get("sales_creditmemo_item", []),
            transactions=get("sales_payment_transaction", []),
            categories=categories or {},
        )

    def snapshot(self, categories: dict[int, list[dict[str, Any]]] | None = None) -> dict[str, Any]:
        return build_snapshot(self.order_rows(categories))
