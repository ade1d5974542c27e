"""The demo store: generated orders in every state, a simulator that writes like Magento."""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path

from sqlalchemy import func, select

from koppla.connector import schema as t
from koppla.connector.demo_store import CUSTOMERS, DemoShop, create_demo_schema
from koppla.connector.source import StoreSource, connect


def test_generated_orders_cover_every_state_with_their_documents(tmp_path: Path) -> None:
    engine = connect(f"sqlite:///{tmp_path / 'shop.sqlite'}")
    create_demo_schema(engine)
    create_demo_schema(engine)  # idempotent
    DemoShop(engine, seed=1).generate(300, chunk=70)
    with engine.connect() as conn:
        states = Counter(
            dict(
                conn.execute(
                    select(t.sales_order.c.state, func.count()).group_by(t.sales_order.c.state)
                ).all()
            )
        )
        counts = {
            table.name: conn.execute(select(func.count()).select_from(table)).scalar_one()
            for table in (
                t.sales_invoice,
                t.sales_shipment,
                t.sales_shipment_track,
                t.sales_creditmemo,
                t.sales_order_address,
                t.sales_order_payment,
            )
        }
    assert set(states) == {"new", "processing", "complete", "closed", "canceled", "holded"}
    assert sum(states.values()) == 300
    assert counts["sales_order_address"] == 600 and counts["sales_order_payment"] == 300
    assert counts["sales_shipment"] == counts["sales_shipment_track"] > 0
    assert counts["sales_invoice"] > counts["sales_shipment"] > counts["sales_creditmemo"] > 0
    source = StoreSource(engine)
    assert source.count_orders(["base"]) == 300
    assert source.scopes()[1].website_code == "base"
    engine.dispose()


def test_the_simulator_keeps_moving_orders(tmp_path: Path) -> None:
    engine = connect(f"sqlite:///{tmp_path / 'shop.sqlite'}")
    create_demo_schema(engine)
    shop = DemoShop(engine, seed=2)
    actions = Counter(shop.simulate_once()[0] for _ in range(200))
    assert {"place", "invoice", "ship"} <= set(actions)
    stop = threading.Event()
    stop.set()
    assert shop.simulate(stop, every_s=0.01) == 0
    with engine.connect() as conn:
        updated = conn.execute(
            select(func.count()).where(t.sales_order.c.updated_at > t.sales_order.c.created_at)
        ).scalar_one()
    assert actions["place"] > 0 and updated >= 0
    engine.dispose()


def test_registered_shoppers_orders_carry_their_customers_email(tmp_path: Path) -> None:
    engine = connect(f"sqlite:///{tmp_path / 'shop.sqlite'}")
    create_demo_schema(engine)
    DemoShop(engine, seed=3).generate(100)
    order, customer = t.sales_order, t.customer_entity
    with engine.connect() as conn:
        customers = conn.execute(select(func.count()).select_from(customer)).scalar_one()
        pairs = conn.execute(
            select(order.c.customer_email, customer.c.email, customer.c.website_id).join(
                customer, customer.c.entity_id == order.c.customer_id
            )
        ).all()
        registered = conn.execute(
            select(func.count()).where(order.c.customer_id.is_not(None))
        ).scalar_one()
        addresses = conn.execute(
            select(func.count()).where(
                customer.c.default_billing.in_(select(t.customer_address_entity.c.entity_id))
            )
        ).scalar_one()
    assert customers == CUSTOMERS
    assert len(pairs) == registered > 0
    assert all(placed == own and website == 1 for placed, own, website in pairs)
    assert addresses == CUSTOMERS  # every customer has a default billing address
    engine.dispose()


def test_generation_is_deterministic_with_the_seed(tmp_path: Path) -> None:
    def customers(name: str) -> list[tuple[object, ...]]:
        engine = connect(f"sqlite:///{tmp_path / name}")
        create_demo_schema(engine)
        DemoShop(engine, seed=4).generate(5)
        with engine.connect() as conn:
            rows = conn.execute(
                select(
                    t.customer_entity.c.email,
                    t.customer_entity.c.dob,
                    t.customer_address_entity.c.street,
                ).join(
                    t.customer_address_entity,
                    t.customer_address_entity.c.entity_id == t.customer_entity.c.default_billing,
                )
            ).all()
        engine.dispose()
        return [tuple(r) for r in rows]

    first = customers("a.sqlite")
    assert first == customers("b.sqlite")
    assert len(first) == CUSTOMERS


def test_the_simulator_also_registers_edits_and_deletes_customers(tmp_path: Path) -> None:
    engine = connect(f"sqlite:///{tmp_path / 'shop.sqlite'}")
    create_demo_schema(engine)
    shop = DemoShop(engine, seed=5)
    shop.generate_customers()
    actions = Counter(shop.simulate_once()[0] for _ in range(600))
    assert {"register", "edit_name", "edit_address", "delete_customer"} <= set(actions)
    assert actions["place"] > actions["register"] > actions["delete_customer"]
    with engine.connect() as conn:
        count = conn.execute(select(func.count()).select_from(t.customer_entity)).scalar_one()
    assert count == CUSTOMERS + actions["register"] - actions["delete_customer"]
    engine.dispose()


def test_every_action_writes_the_status_trail_as_magento_does(tmp_path: Path) -> None:
    engine = connect(f"sqlite:///{tmp_path / 'shop.sqlite'}")
    create_demo_schema(engine)
    shop = DemoShop(engine, seed=6)
    order, other, held = shop.place(), shop.place(), shop.place()
    for action in ("invoice", "ship", "refund"):
        shop.act(order, action)
    shop.act(other, "cancel")
    shop.act(held, "hold")
    history, changes = t.sales_order_status_history, t.sales_order_status_change_history
    with engine.connect() as conn:

        def trail(oid: int) -> list[tuple[object, ...]]:
            query = (
                select(history.c.status, history.c.entity_name)
                .where(history.c.parent_id == oid)
                .order_by(history.c.entity_id)
            )
            return [tuple(r) for r in conn.execute(query)]

        def changed(oid: int) -> list[object]:
            query = (
                select(changes.c.status)
                .where(changes.c.order_id == oid)
                .order_by(changes.c.entity_id)
            )
            return list(conn.execute(query).scalars())

        assert trail(order) == [
            ("pending", "order"),
            ("processing", "invoice"),
            ("complete", "shipment"),
            ("closed", "creditmemo"),
        ]
        assert changed(order) == ["pending", "processing", "complete", "closed"]
        assert trail(other) == [("pending", "order"), ("canceled", "order")]
        assert changed(held) == ["pending", "holded"]
        states = dict(
            conn.execute(
                select(
                    t.sales_order_status_state.c.status, t.sales_order_status_state.c.state
                ).where(t.sales_order_status_state.c.is_default == 1)
            ).all()
        )
        labels = conn.execute(select(func.count()).select_from(t.sales_order_status)).scalar()
    assert states["pending"] == "new" and states["complete"] == "complete"
    assert labels == 9
    engine.dispose()


def test_generated_orders_carry_their_trail(tmp_path: Path) -> None:
    engine = connect(f"sqlite:///{tmp_path / 'shop.sqlite'}")
    create_demo_schema(engine)
    DemoShop(engine, seed=7).generate(60)
    history = t.sales_order_status_history
    with engine.connect() as conn:
        orders = conn.execute(select(func.count()).select_from(t.sales_order)).scalar()
        with_trail = conn.execute(select(func.count(func.distinct(history.c.parent_id)))).scalar()
        last = dict(conn.execute(select(t.sales_order.c.entity_id, t.sales_order.c.status)).all())
        latest = {
            oid: status
            for oid, status in conn.execute(
                select(history.c.parent_id, history.c.status).order_by(history.c.entity_id)
            )
        }
    assert with_trail == orders == 60
    assert latest == last  # each order's last trail entry is its current status
    engine.dispose()


def test_generated_orders_carry_custom_attributes_on_some_orders_and_items(
    tmp_path: Path,
) -> None:
    engine = connect(f"sqlite:///{tmp_path / 'shop.sqlite'}")
    create_demo_schema(engine)
    DemoShop(engine, seed=3).generate(200)
    source = StoreSource(engine)
    ids = [i for page in source.order_ids(["base"]) for i in page]
    rows = source.read(ids)
    engine.dispose()
    orders = [r.order_attributes for r in rows.values()]
    assert all(
        o["method_title"]
        in ("Check / Money order", "Bank Transfer Payment", "Credit Card (Braintree)")
        for o in orders
    )
    wrapped = [o for o in orders if "giftWrap" in o]
    dated = [o for o in orders if "deliveryDate" in o]
    assert 0 < len(wrapped) < len(orders) and 0 < len(dated) < len(orders)
    assert all(isinstance(o["giftWrap"], bool) for o in wrapped)
    assert all(len(str(o["deliveryDate"])) == 10 for o in dated)  # YYYY-MM-DD
    engraved = [a for r in rows.values() for a in r.item_attributes.values()]
    assert engraved and all(isinstance(a["engraving"], str) for a in engraved)
    items = sum(len(r.items) for r in rows.values())
    assert len(engraved) < items


def test_a_demo_store_made_by_an_older_koppla_gets_the_custom_attribute_columns(
    tmp_path: Path,
) -> None:
    from sqlalchemy import inspect, text

    engine = connect(f"sqlite:///{tmp_path / 'shop.sqlite'}")
    create_demo_schema(engine)
    old = DemoShop(engine, seed=4)
    first = old.place()
    with engine.begin() as conn:  # as an older Koppla made it: without the JSON columns
        conn.execute(text("ALTER TABLE sales_order_item DROP COLUMN additional_data"))
        conn.execute(text("ALTER TABLE sales_order_payment DROP COLUMN additional_information"))
    create_demo_schema(engine)
    with engine.connect() as conn:
        item_columns = {c["name"] for c in inspect(conn).get_columns("sales_order_item")}
        pay_columns = {c["name"] for c in inspect(conn).get_columns("sales_order_payment")}
    assert "additional_data" in item_columns and "additional_information" in pay_columns
    second = DemoShop(engine, seed=5).place()
    DemoShop(engine, seed=6).act(first, "invoice")
    found = StoreSource(engine).read([first, second])
    engine.dispose()
    assert found[first].order_attributes == {}  # written before: no attributes
    assert found[first].invoices
    assert "method_title" in found[second].order_attributes
