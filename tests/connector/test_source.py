"""Reading orders from the shop: set-based, only the columns the snapshot reads, and on MariaDB
as one JSON object per row, giving exactly the rows the driver gives value by value."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text

from koppla.connector.demo_store import DemoShop
from koppla.connector.snapshot import OrderRows, build_snapshot, snapshot_hash
from koppla.connector.source import StoreSource, connect

pytestmark = pytest.mark.integration


def typed(value: Any) -> Any:
    """`value` with the type of every scalar in it, so 75 and 75.0 differ."""
    if isinstance(value, dict):
        return {k: typed(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [typed(v) for v in value]
    return (type(value).__name__, value)


def fields(rows: OrderRows) -> dict[str, Any]:
    return {name: typed(getattr(rows, name)) for name in OrderRows.__slots__}


def test_json_rows_on_mariadb_are_the_rows_the_driver_reads(magento: str) -> None:
    engine = connect(magento)
    DemoShop(engine, seed=41).generate(300)
    with engine.begin() as conn:  # a zero date, as shops running without strict mode hold
        conn.execute(text("SET SESSION sql_mode=''"))
        conn.execute(text("UPDATE sales_order SET updated_at='0000-00-00 00:00:00' LIMIT 1"))
    as_json, plain = StoreSource(engine), StoreSource(engine)
    plain._json = False
    ids = [i for page in as_json.order_ids(["base"]) for i in page]
    by_json, by_driver = as_json.read(ids), plain.read(ids)
    engine.dispose()
    assert as_json._json is True
    assert len(by_json) == len(ids) == 300
    assert by_json.keys() == by_driver.keys()
    for oid, rows in by_json.items():
        assert fields(rows) == fields(by_driver[oid]), oid
        assert snapshot_hash(build_snapshot(rows)) == snapshot_hash(build_snapshot(by_driver[oid]))
    zero = [r for r in by_json.values() if isinstance(r.order["updated_at"], str)]
    assert len(zero) == 1 and build_snapshot(zero[0])["updatedAt"] is None


def test_scattered_ids_and_missing_orders(shop_dsn: str) -> None:
    engine = connect(shop_dsn)
    shop = DemoShop(engine, seed=42)
    orders = [shop.place() for _ in range(30)]
    source = StoreSource(engine)
    asked = [orders[0], orders[17], orders[29], 999_999, orders[17]]
    found = source.read(asked)
    engine.dispose()
    assert sorted(found) == sorted({orders[0], orders[17], orders[29]})
    assert all(rows.items and rows.payment for rows in found.values())
    assert all(rows.status_history for rows in found.values())


HOSTILE = [
    "a \"quoted\" 'word'",
    "back\\slash \\u0041 \\\\",
    "control \x01\x07\x08\x0c\x1f\t\r\n end",
    "emoji 😀🛒 and 𝄞, zero-width \u200b",
    '</script>{"json": [1]}',
]


def test_hostile_strings_come_through_the_json_rows_as_stored(magento: str) -> None:
    engine = connect(magento)
    shop = DemoShop(engine, seed=43)
    orders = [shop.place() for _ in HOSTILE]
    with engine.begin() as conn:
        for oid, value in zip(orders, HOSTILE, strict=True):
            conn.execute(
                text(
                    "UPDATE sales_order SET shipping_description=:v, coupon_code=:v "
                    "WHERE entity_id=:o"
                ),
                {"v": value, "o": oid},
            )
            conn.execute(
                text("UPDATE sales_order_item SET name=:v, product_options=:v WHERE order_id=:o"),
                {"v": value, "o": oid},
            )
            conn.execute(
                text("UPDATE sales_order_address SET street=:v, city=:v WHERE parent_id=:o"),
                {"v": value, "o": oid},
            )
    as_json, plain = StoreSource(engine), StoreSource(engine)
    plain._json = False
    by_json, by_driver = as_json.read(orders), plain.read(orders)
    engine.dispose()
    assert as_json._json is True
    for oid, value in zip(orders, HOSTILE, strict=True):
        rows = by_json[oid]
        assert fields(rows) == fields(by_driver[oid]), oid
        assert rows.order["shipping_description"] == value
        assert {item["name"] for item in rows.items} == {value}
        assert {address["street"] for address in rows.addresses} == {value}
        snap = build_snapshot(rows)
        assert snap["shipping"]["shippingMethodName"] == value
        assert snap["payment"]["billingAddress"]["multiLineStreet"] == value.split("\n")
