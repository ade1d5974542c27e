"""Change tracking: triggers fill the changelog with ORDER ids; polling finds the same orders."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, delete, insert, select

from koppla.connector import schema as t
from koppla.connector.changelog import (
    CUSTOMER_LOG,
    CUSTOMER_POLLED,
    PollChanges,
    TriggerChanges,
    drop_ddl,
    install_triggers,
    trigger_ddl,
    triggers_installed,
    uninstall_triggers,
)
from koppla.connector.demo_store import DemoShop, create_demo_schema
from koppla.connector.source import connect


def test_every_tracked_table_gets_insert_update_delete_triggers() -> None:
    for dialect in ("sqlite", "mysql"):
        ddl = "\n".join(trigger_ddl(dialect))
        for table in (
            "sales_order",
            "sales_invoice",
            "sales_shipment",
            "sales_shipment_track",
            "sales_creditmemo",
            "sales_payment_transaction",
        ):
            for op in ("INSERT", "UPDATE", "DELETE"):
                assert f"AFTER {op} ON {table} " in ddl
        assert "koppla_sales_order_cl" in ddl
    assert "AUTO_INCREMENT" in trigger_ddl("mysql")[0]
    drops = drop_ddl("sqlite")
    assert drops[-2:] == [
        "DROP TABLE IF EXISTS koppla_sales_order_cl",
        "DROP TABLE IF EXISTS koppla_customer_cl",
    ]  # tables only after every trigger that writes into them
    assert all(d.startswith("DROP TRIGGER") for d in drops[:-2])


@pytest.mark.integration
def test_triggers_record_the_affected_order_for_every_action(shop_engine: Engine) -> None:
    tracker = TriggerChanges(shop_engine)
    tracker.ack(tracker.fetch(None))
    shop = DemoShop(shop_engine, seed=1)
    first, second = shop.place(), shop.place()
    changes = tracker.fetch(None)
    assert changes.order_ids == [first, second]
    tracker.ack(changes)
    assert tracker.fetch(changes.cursor).order_ids == []
    for action in ("invoice", "ship", "refund"):
        shop.act(first, action)
        found = tracker.fetch(None)
        assert found.order_ids == [first], action
        tracker.ack(found)
    with shop_engine.begin() as conn:
        conn.execute(
            delete(t.sales_shipment_track).where(t.sales_shipment_track.c.order_id == first)
        )
    assert tracker.fetch(None).order_ids == [first]


@pytest.mark.integration
def test_triggers_can_be_removed_and_reinstalled(shop_engine: Engine) -> None:
    assert triggers_installed(shop_engine)
    uninstall_triggers(shop_engine)
    assert not triggers_installed(shop_engine)
    DemoShop(shop_engine, seed=2).place()  # no trigger, no error
    install_triggers(shop_engine)
    install_triggers(shop_engine)  # idempotent
    assert triggers_installed(shop_engine)


def test_polling_finds_changed_orders_without_writing(tmp_path: Path) -> None:
    engine = connect(f"sqlite:///{tmp_path / 'shop.sqlite'}")
    create_demo_schema(engine)
    shop = DemoShop(engine, seed=3)
    poll = PollChanges(engine)
    start = poll.now().isoformat()
    order = shop.place()
    changes = poll.fetch(start)
    assert changes.order_ids == [order]
    assert changes.cursor >= start
    shop.act(order, "invoice")
    assert order in poll.fetch(changes.cursor).order_ids
    with engine.connect() as conn:
        tables = set(engine.dialect.get_table_names(conn))
    assert "koppla_sales_order_cl" not in tables
    with engine.connect() as conn:
        assert conn.execute(select(t.sales_order.c.entity_id)).scalars().all() == [order]
    engine.dispose()


@pytest.mark.integration
def test_the_connector_follows_the_shop_in_poll_mode(tmp_path: Path, shop_dsn: str) -> None:
    from koppla.connector.runner import Connector
    from koppla.connector.settings import load_settings

    site = {
        "website_code": "base",
        "org_id": "KOPPLADEMO00000000000000@AdobeOrg",
        "datastream_id": "ds",
        "dataset_id": "set",
    }
    settings = load_settings(
        tmp_path,
        source_dsn=shop_dsn,
        change_tracking="poll",
        platform_url="http://127.0.0.1:9",
        websites=[site],
    )
    engine = connect(shop_dsn)
    uninstall_triggers(engine)  # poll mode needs no objects in the shop
    shop = DemoShop(engine, seed=9)
    connector = Connector(settings)
    try:
        connector.check()
        old = shop.place()
        connector.step()  # initial sync
        fresh = shop.place()
        connector.step()
        shop.act(old, "invoice")
        connector.step()
        connector.step()  # the overlap re-reads: hashes keep it quiet
        pending = [(e.order_id, e.event_type) for e in connector.state.pending(100)]
    finally:
        connector.close()
        engine.dispose()
    assert pending == [
        (old, "commerce.backofficeOrderPlaced"),
        (fresh, "commerce.backofficeOrderPlaced"),
        (old, "commerce.backofficeOrderInvoiced"),
    ]


def test_a_full_changelog_batch_asks_for_another_look(tmp_path: Path) -> None:
    engine = connect(f"sqlite:///{tmp_path / 'shop.sqlite'}")
    create_demo_schema(engine)
    install_triggers(engine)
    DemoShop(engine, seed=4).generate(3)
    tracker = TriggerChanges(engine, limit=2)
    first = tracker.fetch(None)
    assert first.more and len(first.versions) == 2
    tracker.ack(first)
    engine.dispose()


def test_customer_tables_get_triggers_into_their_own_changelog() -> None:
    for dialect in ("sqlite", "mysql"):
        statements = trigger_ddl(dialect)
        for table, column in (
            ("customer_entity", "entity_id"),
            ("customer_address_entity", "parent_id"),
        ):
            for op, row in (("INSERT", "NEW"), ("UPDATE", "NEW"), ("DELETE", "OLD")):
                trigger = next(s for s in statements if f"AFTER {op} ON {table} " in s)
                assert (
                    f"INSERT INTO koppla_customer_cl (entity_id) VALUES ({row}.{column})" in trigger
                )
    assert "DROP TABLE IF EXISTS koppla_customer_cl" in drop_ddl("mysql")


@pytest.mark.integration
def test_triggers_record_the_affected_customer_for_every_change(shop_engine: Engine) -> None:
    tracker = TriggerChanges(shop_engine, log=CUSTOMER_LOG, cursor_name="customer_cursor")
    orders = TriggerChanges(shop_engine)
    tracker.ack(tracker.fetch(None))
    orders.ack(orders.fetch(None))
    shop = DemoShop(shop_engine, seed=11)
    first, second = shop.create_customer(), shop.create_customer()
    changes = tracker.fetch(None)
    assert changes.order_ids == [first, second]
    tracker.ack(changes)
    for what in ("name", "address"):
        shop.edit_customer(first, what)
        found = tracker.fetch(None)
        assert found.order_ids == [first], what
        tracker.ack(found)
    shop.delete_customer(second)
    assert tracker.fetch(None).order_ids == [second]
    assert orders.fetch(None).order_ids == []  # the order changelog is not touched


def test_polling_finds_changed_customers(tmp_path: Path) -> None:
    engine = connect(f"sqlite:///{tmp_path / 'shop.sqlite'}")
    create_demo_schema(engine)
    shop = DemoShop(engine, seed=12)
    poll = PollChanges(engine, CUSTOMER_POLLED, "customer_poll")
    start = poll.now().isoformat()
    customer = shop.create_customer()
    changes = poll.fetch(start)
    assert changes.order_ids == [customer]
    shop.edit_customer(customer, "address")
    assert poll.fetch(changes.cursor).order_ids == [customer]
    engine.dispose()


def test_the_status_trail_tables_are_tracked_where_they_exist() -> None:
    for dialect in ("sqlite", "mysql"):
        ddl = "\n".join(trigger_ddl(dialect))
        assert "AFTER INSERT ON sales_order_status_history " in ddl
        assert "VALUES (NEW.parent_id)" in ddl
        assert "AFTER INSERT ON sales_order_status_change_history " in ddl
        older = "\n".join(trigger_ddl(dialect, {"sales_order", "sales_order_status_history"}))
        assert "sales_order_status_change_history" not in older
        assert "AFTER UPDATE ON sales_order " in older and "sales_invoice" not in older


def test_polling_sees_a_new_status_history_row(tmp_path: Path) -> None:
    engine = connect(f"sqlite:///{tmp_path / 'shop.sqlite'}")
    create_demo_schema(engine)
    shop = DemoShop(engine, seed=13)
    order = shop.place()
    poll = PollChanges(engine)
    later = poll.now() + timedelta(hours=1)
    with engine.begin() as conn:
        conn.execute(
            insert(t.sales_order_status_history).values(
                parent_id=order, status="pending", comment="Called", created_at=later
            )
        )
    assert poll.fetch((later - timedelta(minutes=1)).isoformat()).order_ids == [order]
    engine.dispose()
