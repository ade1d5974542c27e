"""The status trail: read from the shop, in the snapshot, and the times of the state events.

Orders complete, close or cancel between two looks of the connector (or before its first); the
events must still come, once, stamped with when the order became complete or canceled.
Runs on the SQLite demo store and on Magento's real schema in MariaDB (`shop_dsn`).
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, delete, insert, select, text, update

from koppla.connector import schema as t
from koppla.connector.demo_store import DemoShop, create_demo_schema
from koppla.connector.events import (
    CANCELLED,
    CREDIT_MEMO_ISSUED,
    INVOICED,
    ITEMS_SHIPPED,
    PLACED,
    SHIPMENT_COMPLETED,
    canceled_at,
    completed_at,
    event_keys,
    history,
)
from koppla.connector.runner import Connector
from koppla.connector.settings import ConnectorSettings, load_settings
from koppla.connector.snapshot import OrderRows, build_snapshot
from koppla.connector.source import StoreSource, connect
from tests.connector.samples import CTX, Order
from tests.connector.test_events import assert_valid, unsent

T0 = datetime(2026, 11, 2, 9, 30)


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def iso(hours: float) -> str:
    return at(hours).isoformat(timespec="milliseconds") + "Z"


def with_trail(order: Order) -> OrderRows:
    """The order's rows including the status history rows the demo store's actions wrote."""
    return dataclasses.replace(
        order.order_rows(),
        status_history=order.rows.get("sales_order_status_history", []),
        status_changes=order.rows.get("sales_order_status_change_history", []),
    )


def types(events: list[dict[str, Any]]) -> list[str]:
    return [e["eventType"] for e in events]


# --- pure: the snapshot's trail and the event times ------------------------------------------


def test_the_snapshot_carries_the_trail_with_states_once_per_change() -> None:
    order = Order(seed=1).invoice(hours=1).ship(hours=5).refund(hours=9)
    snap = build_snapshot(with_trail(order))
    assert snap["statusHistory"] == [
        {"status": "pending", "state": "new", "createdAt": "2026-11-02T09:30:00.000Z"},
        {"status": "processing", "state": "processing", "createdAt": "2026-11-02T10:30:00.000Z"},
        {"status": "complete", "state": "complete", "createdAt": "2026-11-02T14:30:00.000Z"},
        {"status": "closed", "state": "closed", "createdAt": "2026-11-02T18:30:00.000Z"},
    ]  # both history tables log each change: the trail holds it once


def test_completed_then_closed_yields_every_event_at_its_time() -> None:
    order = Order(seed=2).invoice(hours=1).ship(hours=5).refund(hours=240)
    events = history(build_snapshot(with_trail(order)), CTX)
    assert types(events) == [
        PLACED,
        INVOICED,
        ITEMS_SHIPPED,
        SHIPMENT_COMPLETED,
        CREDIT_MEMO_ISSUED,
    ]
    completed = events[3]
    assert completed["timestamp"] == iso(5)  # when it became complete, not its last update
    assert_valid(events)


def test_the_trail_wins_over_the_last_update() -> None:
    order = Order(seed=3).invoice(hours=1).ship(hours=5)
    order.draft.order["updated_at"] = at(200)  # a later save (an address fix, a comment)
    snap = build_snapshot(with_trail(order))
    assert completed_at(snap) == iso(5)
    cancelled = Order(seed=4).cancel(hours=2)
    cancelled.draft.order["updated_at"] = at(300)
    snap = build_snapshot(with_trail(cancelled))
    event = history(snap, CTX)[-1]
    assert event["eventType"] == CANCELLED and event["timestamp"] == iso(2)
    assert event["commerce"]["order"]["cancelDate"] == iso(2)


def test_without_a_trail_a_complete_order_became_complete_with_its_last_document() -> None:
    order = Order(seed=5).invoice(hours=1).ship(hours=5)
    order.draft.order["updated_at"] = at(200)
    snap = order.snapshot()  # no status rows: a shop whose trail was purged
    assert snap["statusHistory"] == []
    assert completed_at(snap) == iso(5)


def test_without_a_trail_a_closed_order_was_complete_if_shipped_before_its_refund() -> None:
    shipped = Order(seed=6).invoice(hours=1).ship(hours=5).refund(hours=9).snapshot()
    assert completed_at(shipped) == iso(5)
    never_shipped = Order(seed=7).invoice(hours=1).refund(hours=9).snapshot()
    assert never_shipped["stateCode"] == "closed"
    assert completed_at(never_shipped) is None
    assert SHIPMENT_COMPLETED not in types(history(never_shipped, CTX))


def test_a_trail_without_complete_on_a_closed_order_falls_back_to_inference() -> None:
    order = Order(seed=8).invoice(hours=1).ship(hours=5).refund(hours=9)
    rows = with_trail(order)
    trail = [r for r in rows.status_history if r["status"] != "complete"]
    snap = build_snapshot(dataclasses.replace(rows, status_history=trail, status_changes=()))
    assert [e["status"] for e in snap["statusHistory"]] == ["pending", "processing", "closed"]
    assert completed_at(snap) == iso(5)


def test_an_open_order_has_no_state_events() -> None:
    snap = build_snapshot(with_trail(Order(seed=9).invoice(hours=1)))
    assert completed_at(snap) is None and canceled_at(snap) is None
    assert event_keys(snap) == ["P", f"I{snap['invoices'][0]['entityId']}"]


def test_a_shop_status_mapped_to_complete_counts_as_complete() -> None:
    order = Order(seed=10).invoice(hours=1)
    rows = with_trail(order)
    delivered = {"entity_id": 999, "status": "delivered", "created_at": at(30)}
    rows = dataclasses.replace(
        rows,
        status_history=[*rows.status_history, delivered],
        status_states={"delivered": "complete"},
    )
    snap = build_snapshot(rows)
    assert snap["statusHistory"][-1] == {
        "status": "delivered",
        "state": "complete",
        "createdAt": iso(30),
    }
    assert completed_at(snap) == iso(30)
    unmapped = build_snapshot(dataclasses.replace(rows, status_states={}))
    assert unmapped["statusHistory"][-1]["state"] is None
    assert completed_at(unmapped) is None


def test_a_state_passed_between_two_looks_is_sent_once() -> None:
    order = Order(seed=11)
    first = build_snapshot(with_trail(order))
    seen = set(event_keys(first))
    assert types(unsent(seen, first)) == []
    order.invoice(hours=1).ship(hours=5).refund(hours=9)
    later = build_snapshot(with_trail(order))
    events = unsent(seen, later)
    assert types(events) == [INVOICED, ITEMS_SHIPPED, SHIPMENT_COMPLETED, CREDIT_MEMO_ISSUED]
    assert unsent(seen | set(event_keys(later)), later) == []
    assert [e["_id"] for e in events] == [e["_id"] for e in history(later, CTX)[1:]]


# --- against the shop database ---------------------------------------------------------------


def connector_settings(tmp_path: Path, dsn: str, **extra: Any) -> ConnectorSettings:
    site = {
        "website_code": "base",
        "org_id": "KOPPLADEMO00000000000000@AdobeOrg",
        "datastream_id": "ds",
        "dataset_id": "set",
        "environment_id": "env-1",
    }
    return load_settings(
        tmp_path, source_dsn=dsn, platform_url="http://127.0.0.1:9", websites=[site], **extra
    )


def queued(connector: Connector) -> list[tuple[int, str, str]]:
    return [
        (e.order_id, e.event_type, str(e.body["timestamp"])) for e in connector.state.pending(1000)
    ]


@pytest.mark.integration
def test_an_order_completed_then_closed_before_the_first_look(
    tmp_path: Path, shop_dsn: str, shop_engine: Engine
) -> None:
    shop = DemoShop(shop_engine, seed=21)
    order = shop.place(at(0))
    shop.act(order, "invoice", at(1))
    shop.act(order, "ship", at(5))
    shop.act(order, "refund", at(240))
    connector = Connector(connector_settings(tmp_path, shop_dsn))
    try:
        connector.step()
        assert queued(connector) == [
            (order, PLACED, iso(0)),
            (order, INVOICED, iso(1)),
            (order, ITEMS_SHIPPED, iso(5)),
            (order, SHIPMENT_COMPLETED, iso(5)),
            (order, CREDIT_MEMO_ISSUED, iso(240)),
        ]
        assert_valid([e.body for e in connector.state.pending(1000)])
        connector.step()
        connector.reindex()  # nothing new: every key is emitted
        assert len(queued(connector)) == 5
    finally:
        connector.close()


@pytest.mark.integration
def test_states_passed_between_two_looks_are_sent_once_at_their_times(
    tmp_path: Path, shop_dsn: str, shop_engine: Engine
) -> None:
    shop = DemoShop(shop_engine, seed=22)
    connector = Connector(connector_settings(tmp_path, shop_dsn))
    try:
        connector.step()  # the initial sync of an empty shop
        order, other = shop.place(at(0)), shop.place(at(0))
        connector.step()
        shop.act(order, "invoice", at(1))
        shop.act(order, "ship", at(5))
        shop.act(order, "refund", at(9))
        shop.act(other, "cancel", at(3))
        with shop_engine.begin() as conn:  # a later save of the cancelled order
            o = t.sales_order
            conn.execute(update(o).where(o.c.entity_id == other).values(updated_at=at(50)))
        connector.step()
        connector.step()
        assert queued(connector) == [
            (order, PLACED, iso(0)),
            (other, PLACED, iso(0)),
            (order, INVOICED, iso(1)),
            (order, ITEMS_SHIPPED, iso(5)),
            (order, SHIPMENT_COMPLETED, iso(5)),
            (order, CREDIT_MEMO_ISSUED, iso(9)),
            (other, CANCELLED, iso(3)),
        ]
        marks = connector.state.orders([order, other])
        assert marks[order].emitted >= {"P", "C"} and len(marks[order].digest) == 20
    finally:
        connector.close()


@pytest.mark.integration
def test_a_status_history_row_counts_as_an_order_change(shop_engine: Engine) -> None:
    from koppla.connector.changelog import TriggerChanges

    shop = DemoShop(shop_engine, seed=23)
    order, other = shop.place(at(0)), shop.place(at(0))
    tracker = TriggerChanges(shop_engine)
    tracker.ack(tracker.fetch(None))
    with shop_engine.begin() as conn:
        conn.execute(
            insert(t.sales_order_status_history).values(
                parent_id=order, status="pending", comment="Called the shopper", created_at=at(1)
            )
        )
        conn.execute(
            insert(t.sales_order_status_change_history).values(
                order_id=other, status="holded", created_at=at(2)
            )
        )
    assert sorted(tracker.fetch(None).order_ids) == sorted([order, other])


@pytest.mark.integration
def test_the_shop_status_map_is_read(shop_engine: Engine) -> None:
    with shop_engine.begin() as conn:
        conn.execute(insert(t.sales_order_status).values(status="delivered", label="Delivered"))
        conn.execute(
            insert(t.sales_order_status_state).values(
                status="delivered", state="complete", is_default=0, visible_on_front=1
            )
        )
    shop = DemoShop(shop_engine, seed=24)
    order = shop.place(at(0))
    shop.act(order, "invoice", at(1))
    with shop_engine.begin() as conn:
        conn.execute(
            insert(t.sales_order_status_history).values(
                parent_id=order, status="delivered", entity_name="order", created_at=at(40)
            )
        )
    rows = StoreSource(shop_engine).read([order])[order]
    assert rows.status_states["fraud"] == "payment_review"
    assert rows.status_states["pending"] == "new"
    snap = build_snapshot(rows)
    assert snap["statusHistory"][-1] == {
        "status": "delivered",
        "state": "complete",
        "createdAt": iso(40),
    }
    assert completed_at(snap) == iso(40)


def test_a_shop_without_the_optional_status_tables(tmp_path: Path) -> None:
    from koppla.connector.changelog import PollChanges, install_triggers

    engine = connect(f"sqlite:///{tmp_path / 'old-shop.sqlite'}")
    create_demo_schema(engine)
    shop = DemoShop(engine, seed=25)
    order = shop.place(at(0))
    shop.act(order, "invoice", at(1))
    shop.act(order, "ship", at(5))
    with engine.begin() as conn:  # an older Magento: no change history, no status map
        conn.execute(text("DROP TABLE sales_order_status_change_history"))
        conn.execute(text("DROP TABLE sales_order_status_state"))
    install_triggers(engine)  # no trigger on a table that is not there
    with engine.connect() as conn:
        triggers = {
            str(name)
            for (name,) in conn.execute(text("SELECT name FROM sqlite_master WHERE type='trigger'"))
        }
    assert "koppla_trg_sales_order_status_history_after_insert" in triggers
    assert not {name for name in triggers if "status_change_history" in name}
    rows = StoreSource(engine).read([order])[order]
    assert rows.status_changes == () and rows.status_states == {}
    snap = build_snapshot(rows)
    assert [e["state"] for e in snap["statusHistory"]] == ["new", "processing", "complete"]
    assert completed_at(snap) == iso(5)
    assert order in PollChanges(engine).fetch(None).order_ids
    engine.dispose()


def forget_complete(engine: Engine, order: int) -> None:
    """The trail of a Magento before 2.4.7: no change history table rows, and no history row
    where a document completed the order (its state handler writes none)."""
    h = t.sales_order_status_history
    with engine.begin() as conn:
        conn.execute(delete(t.sales_order_status_change_history))
        conn.execute(delete(h).where(h.c.parent_id == order, h.c.status == "complete"))


@pytest.mark.integration
def test_a_later_comment_on_a_complete_order_does_not_move_its_completion(
    tmp_path: Path, shop_dsn: str, shop_engine: Engine
) -> None:
    shop = DemoShop(shop_engine, seed=26)
    order = shop.place(at(0))
    shop.act(order, "invoice", at(1))
    shop.act(order, "ship", at(5))
    forget_complete(shop_engine, order)
    shop.act(order, "comment", at(100))  # the first trail row saying `complete`
    trail = build_snapshot(StoreSource(shop_engine).read([order])[order])["statusHistory"]
    assert trail[-1] == {"status": "complete", "state": "complete", "createdAt": iso(100)}
    connector = Connector(connector_settings(tmp_path, shop_dsn))
    try:
        connector.step()
        assert queued(connector) == [
            (order, PLACED, iso(0)),
            (order, INVOICED, iso(1)),
            (order, ITEMS_SHIPPED, iso(5)),
            (order, SHIPMENT_COMPLETED, iso(5)),  # when the shipment completed it
        ]
    finally:
        connector.close()


def visible_lines(engine: Engine, order: int) -> list[int]:
    i = t.sales_order_item
    query = select(i.c.item_id).where(i.c.order_id == order, i.c.parent_item_id.is_(None))
    with engine.connect() as conn:
        return [int(r[0]) for r in conn.execute(query.order_by(i.c.item_id))]


@pytest.mark.integration
@pytest.mark.parametrize("trail", ["kept", "without complete"])
def test_a_refund_of_the_unshipped_rest_completes_the_order(
    tmp_path: Path, shop_dsn: str, shop_engine: Engine, trail: str
) -> None:
    shop = DemoShop(shop_engine, seed=27)
    order = shop.place(at(0))
    while len(visible_lines(shop_engine, order)) < 2:
        order = shop.place(at(0))
    first, *rest = visible_lines(shop_engine, order)
    source = StoreSource(shop_engine)
    shop.act(order, "invoice", at(1))
    shop.act(order, "ship", at(5), only=[first])
    assert build_snapshot(source.read([order])[order])["stateCode"] == "processing"
    shop.act(order, "refund", at(9), only=rest)  # nothing is left to ship: complete
    assert build_snapshot(source.read([order])[order])["stateCode"] == "complete"
    shop.act(order, "refund", at(20))  # the shipped line too: closed
    if trail != "kept":
        forget_complete(shop_engine, order)
    snap = build_snapshot(source.read([order])[order])
    assert snap["stateCode"] == "closed"
    assert ("complete" in [e["state"] for e in snap["statusHistory"]]) == (trail == "kept")
    connector = Connector(connector_settings(tmp_path, shop_dsn))
    try:
        connector.step()
        assert queued(connector) == [
            (order, PLACED, iso(0)),
            (order, INVOICED, iso(1)),
            (order, ITEMS_SHIPPED, iso(5)),
            (order, SHIPMENT_COMPLETED, iso(9)),
            (order, CREDIT_MEMO_ISSUED, iso(9)),
            (order, CREDIT_MEMO_ISSUED, iso(20)),
        ]
        assert_valid([e.body for e in connector.state.pending(1000)])
    finally:
        connector.close()


def test_a_full_refund_before_shipping_never_completes_the_order() -> None:
    never_shipped = Order(seed=12).invoice(hours=1).refund(hours=9).snapshot()
    assert completed_at(never_shipped) is None
    shipped_then_refunded = Order(seed=13).invoice(hours=1).ship(hours=5).refund(hours=9)
    assert completed_at(shipped_then_refunded.snapshot()) == iso(5)
