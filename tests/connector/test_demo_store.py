"""The demo store: generated orders in every state, a simulator that writes like Magento."""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path

from sqlalchemy import func, select

from koppla.connector import schema as t
from koppla.connector.demo_store import DemoShop, create_demo_schema
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
