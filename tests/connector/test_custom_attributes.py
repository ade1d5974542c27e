"""Custom order attributes: parsed from the shop's JSON columns and merchant-named columns, typed,
and carried in the tenant namespace of every back-office event (domain.md §8.1)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.dialects import mysql
from sqlalchemy.types import Boolean, Date, DateTime, Float, Integer, Numeric, String, Text

from koppla.connector.custom_attributes import (
    CustomColumns,
    ProblemLog,
    column_kind,
    from_json,
    typed,
)
from koppla.connector.demo_store import DemoShop
from koppla.connector.events import EventContext, history
from koppla.connector.snapshot import build_snapshot
from koppla.connector.source import StoreSource, connect

TENANT = "kopplademo"
NS = "_kopplademo"


def test_a_json_object_gives_one_attribute_per_key_typed_as_sent() -> None:
    attributes, problem = from_json(
        '{"giftWrap": true, "rushPriority": 2, "weight": 1.5, "deliveryDate": "2026-12-24",'
        ' "note": null, "extras": {"a": [1, 2]}, "tags": ["x", "y"], "": "no name"}'
    )
    assert problem is None
    assert attributes == {
        "giftWrap": True,
        "rushPriority": 2,
        "weight": 1.5,
        "deliveryDate": "2026-12-24",
        "extras": '{"a":[1,2]}',
        "tags": '["x","y"]',
    }
    assert attributes["giftWrap"] is True and type(attributes["rushPriority"]) is int


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        (None, None),
        ("", None),
        ("   ", None),
        ("{}", None),
        ('a:1:{s:12:"method_title";s:19:"Check / Money order";}', "php_serialized"),
        ('s:5:"hello";', "php_serialized"),
        ("{not json", "not_json"),
        ("hello world", "not_json"),
        ('["a", "b"]', "not_object"),
        ("42", "not_object"),
        ('"just text"', "not_object"),
    ],
)
def test_a_value_that_is_not_a_json_object_gives_no_attributes(
    raw: str | None, problem: str | None
) -> None:
    assert from_json(raw) == ({}, problem)


def test_each_kind_of_problem_is_logged_once_per_column(caplog: pytest.LogCaptureFixture) -> None:
    problems = ProblemLog()
    where = ("sales_order_payment", "additional_information")
    with caplog.at_level(logging.WARNING, logger="koppla.connector.custom_attributes"):
        for order in range(50):
            problems.note(where, "php_serialized", order)
            problems.note(where, "not_json", order)
        problems.note(("sales_order_item", "additional_data"), "not_json", 7)
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 3
    assert "sales_order_payment.additional_information holds PHP-serialized data" in lines[0]
    assert "e.g. order 0" in lines[0]
    assert "sales_order_item.additional_data is not JSON" in lines[2]


@pytest.mark.parametrize(
    ("sql_type", "kind"),
    [
        (Boolean(), "boolean"),
        (mysql.TINYINT(display_width=1), "boolean"),
        (mysql.TINYINT(display_width=4), "integer"),
        (Integer(), "integer"),
        (mysql.BIGINT(), "integer"),
        (Numeric(12, 4), "decimal"),
        (mysql.DECIMAL(12, 4), "decimal"),
        (Float(), "float"),
        (mysql.DOUBLE(), "float"),
        (Date(), "date"),
        (mysql.DATETIME(), "datetime"),
        (mysql.TIMESTAMP(), "datetime"),
        (DateTime(), "datetime"),
        (String(255), "string"),
        (Text(), "string"),
        (mysql.TIME(), "string"),
    ],
)
def test_a_column_is_typed_by_its_sql_type(sql_type: Any, kind: str) -> None:
    assert column_kind(sql_type) == kind


@pytest.mark.parametrize(
    ("value", "kind", "expected"),
    [
        (date(2026, 12, 24), "date", "2026-12-24"),
        ("2026-12-24", "date", "2026-12-24"),
        (datetime(2026, 12, 24, 9, 30), "date", "2026-12-24"),
        ("0000-00-00", "date", None),
        ("soon", "date", None),
        (datetime(2026, 12, 24, 9, 30, 5), "datetime", "2026-12-24T09:30:05.000Z"),
        ("2026-12-24 09:30:05", "datetime", "2026-12-24T09:30:05.000Z"),
        ("2026-12-24 09:30:05.000000", "datetime", "2026-12-24T09:30:05.000Z"),
        ("0000-00-00 00:00:00", "datetime", None),
        (Decimal("12.0000"), "decimal", 12),
        (12.0, "decimal", 12),
        (Decimal("12.5000"), "decimal", 12.5),
        (12.5, "decimal", 12.5),
        (3, "float", 3.0),
        (7, "integer", 7),
        (1, "boolean", True),
        (0, "boolean", False),
        ("1", "boolean", True),
        ("gift", "string", "gift"),
        (b"bytes", "string", "bytes"),
        (None, "string", None),
        (None, "boolean", None),
    ],
)
def test_a_column_value_becomes_an_attribute_of_its_kind(
    value: object, kind: Any, expected: object
) -> None:
    found = typed(value, kind)
    assert found == expected
    assert type(found) is type(expected)


# --- through the store source and the event builder, on MariaDB with Magento's tables ---

ORDER_JSON = (
    '{"method_title": "Check / Money order", "giftWrap": true, "rushPriority": 2,'
    ' "deliveryDate": "2026-12-24", "note": null}'
)
ITEM_JSON = '{"engraving": "For Ana", "layers": 3, "giftBox": false}'
ADDED = {
    "sales_order": [
        ("promised_on", "DATE"),
        ("vip", "BOOLEAN"),
        ("packed_at", "DATETIME"),
        ("rushPriority", "INT"),
        ("gift_note", "VARCHAR(255)"),
    ],
    "sales_order_item": [("warranty_years", "DECIMAL(5,2)"), ("surcharge", "DECIMAL(12,4)")],
}
NAMED = CustomColumns(
    order=("promised_on", "vip", "packed_at", "rushPriority", "gift_note", "no_such_column"),
    item=("warranty_years", "surcharge"),
)


@pytest.fixture
def merchant_columns(magento: str) -> Iterator[Engine]:
    """The Magento database with the merchant's own columns on `sales_order(_item)`."""
    engine = connect(magento)
    with engine.begin() as conn:
        for table, columns in ADDED.items():
            for name, kind in columns:
                conn.execute(text(f"ALTER TABLE `{table}` ADD COLUMN `{name}` {kind} NULL"))
    yield engine
    with engine.begin() as conn:
        for table, columns in ADDED.items():
            for name, _kind in columns:
                conn.execute(text(f"ALTER TABLE `{table}` DROP COLUMN `{name}`"))
    engine.dispose()


def order_with_attributes(engine: Engine) -> tuple[int, int, str]:
    """A placed, invoiced and shipped order with custom attributes on the order and on its first
    item; its id, that item's id and its SKU."""
    shop = DemoShop(engine, seed=77)
    oid = shop.place()
    shop.act(oid, "invoice")
    shop.act(oid, "ship")
    with engine.begin() as conn:
        item, sku = conn.execute(
            text(
                "SELECT item_id, sku FROM sales_order_item WHERE order_id=:o "
                "AND parent_item_id IS NULL ORDER BY item_id LIMIT 1"
            ),
            {"o": oid},
        ).one()
        conn.execute(
            text("UPDATE sales_order_payment SET additional_information=:j WHERE parent_id=:o"),
            {"j": ORDER_JSON, "o": oid},
        )
        conn.execute(
            text("UPDATE sales_order_item SET additional_data=NULL WHERE order_id=:o"), {"o": oid}
        )
        conn.execute(
            text(
                "UPDATE sales_order_item SET additional_data=:j, warranty_years=2.00, "
                "surcharge=4.5 WHERE item_id=:i"
            ),
            {"j": ITEM_JSON, "i": item},
        )
        conn.execute(
            text(
                "UPDATE sales_order SET promised_on='2026-12-23', vip=1, "
                "packed_at='2026-12-20 08:15:00', rushPriority=5 WHERE entity_id=:o"
            ),
            {"o": oid},
        )
    return oid, int(item), str(sku)


ORDER_ATTRIBUTES = {
    "method_title": "Check / Money order",
    "giftWrap": True,
    "rushPriority": 5,  # the column wins over the JSON key
    "deliveryDate": "2026-12-24",
    "promised_on": "2026-12-23",
    "vip": True,
    "packed_at": "2026-12-20T08:15:00.000Z",
}
ITEM_ATTRIBUTES = {
    "engraving": "For Ana",
    "layers": 3,
    "giftBox": False,
    "warranty_years": 2,
    "surcharge": 4.5,
}


@pytest.mark.integration
@pytest.mark.parametrize("json_rows", [True, False], ids=["json-rows", "plain-rows"])
def test_an_orders_custom_attributes_land_typed_in_the_tenant_namespace(
    merchant_columns: Engine, json_rows: bool, caplog: pytest.LogCaptureFixture
) -> None:
    engine = merchant_columns
    oid, item_id, sku = order_with_attributes(engine)
    source = StoreSource(engine, NAMED)
    source._json = json_rows
    with caplog.at_level(logging.WARNING, logger="koppla.connector.source"):
        rows = source.read([oid])[oid]
    assert "no column 'no_such_column'" in caplog.text
    assert source.missing_custom_columns() == ["sales_order.no_such_column"]
    events = history(build_snapshot(rows), EventContext("base", "env", tenant=TENANT))
    kinds = [e["eventType"] for e in events]
    assert kinds[:3] == [
        "commerce.backofficeOrderPlaced",
        "commerce.backofficeOrderInvoiced",
        "commerce.backofficeOrderItemsShipped",
    ]
    for event in events:
        carried = event["commerce"]["order"][NS]
        assert carried == ORDER_ATTRIBUTES, event["eventType"]
        assert carried["giftWrap"] is True and carried["vip"] is True
        assert type(carried["rushPriority"]) is int
        for line in event.get("productListItems", ()):
            if line["SKU"] == sku:  # ShipmentCompleted's lines have no lineItemId
                assert line[NS] == ITEM_ATTRIBUTES, event["eventType"]
                assert line[NS]["giftBox"] is False and type(line[NS]["layers"]) is int
            else:
                assert NS not in line
    for placed_or_invoiced in events[:2]:
        lines = placed_or_invoiced["productListItems"]
        assert [line["lineItemId"] for line in lines if NS in line] == [str(item_id)]


@pytest.mark.integration
def test_json_rows_and_plain_rows_give_the_same_attributes(merchant_columns: Engine) -> None:
    engine = merchant_columns
    oid, _item, _sku = order_with_attributes(engine)
    DemoShop(engine, seed=78).generate(40)
    as_json, plain = StoreSource(engine, NAMED), StoreSource(engine, NAMED)
    plain._json = False
    ids = [i for page in as_json.order_ids(["base"]) for i in page]
    by_json, by_driver = as_json.read(ids), plain.read(ids)
    assert as_json._json is True
    for order_id, rows in by_json.items():
        assert rows.order_attributes == by_driver[order_id].order_attributes
        assert rows.item_attributes == by_driver[order_id].item_attributes
    assert by_json[oid].order_attributes == ORDER_ATTRIBUTES
    generated = [r for r in by_json.values() if r.order_attributes.get("giftWrap") is not None]
    assert generated, "the demo store gives some orders gift wrap"


BROKEN = [
    'a:1:{s:12:"method_title";s:19:"Check / Money order";}',
    "{broken",
    '["not", "an", "object"]',
    "",
    None,
]


@pytest.mark.integration
def test_values_that_are_not_json_objects_give_no_attributes_and_the_orders_still_go(
    magento: str, caplog: pytest.LogCaptureFixture
) -> None:
    engine = connect(magento)
    shop = DemoShop(engine, seed=79)
    orders = [shop.place() for _ in BROKEN]
    for oid in orders:
        shop.act(oid, "invoice")
    with engine.begin() as conn:
        for oid, value in zip(orders, BROKEN, strict=True):
            conn.execute(
                text("UPDATE sales_order_payment SET additional_information=:v WHERE parent_id=:o"),
                {"v": value, "o": oid},
            )
            conn.execute(
                text("UPDATE sales_order_item SET additional_data=:v WHERE order_id=:o"),
                {"v": value, "o": oid},
            )
    with caplog.at_level(logging.WARNING, logger="koppla.connector.custom_attributes"):
        found = StoreSource(engine).read(orders)
    engine.dispose()
    ctx = EventContext("base", "env", tenant=TENANT)
    for oid in orders:
        rows = found[oid]
        assert rows.order_attributes == {} and rows.item_attributes == {}
        events = history(build_snapshot(rows), ctx)
        assert [e["eventType"] for e in events] == [
            "commerce.backofficeOrderPlaced",
            "commerce.backofficeOrderInvoiced",
        ]
        assert all(NS not in e["commerce"]["order"] for e in events)
        assert all(NS not in line for e in events for line in e.get("productListItems", ()))
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 6  # three kinds of problem, two columns: once each
    assert sum("PHP-serialized" in w for w in warnings) == 2


@pytest.mark.integration
def test_a_renamed_key_shows_with_its_new_name_in_the_next_event_built(magento: str) -> None:
    engine = connect(magento)
    shop = DemoShop(engine, seed=80)
    oid = shop.place()

    def info(value: str) -> None:
        with engine.begin() as conn:
            conn.execute(
                text("UPDATE sales_order_payment SET additional_information=:v WHERE parent_id=:o"),
                {"v": value, "o": oid},
            )

    source = StoreSource(engine)
    ctx = EventContext("base", "env", tenant=TENANT)
    info('{"giftWrap": true}')
    placed = history(build_snapshot(source.read([oid])[oid]), ctx)[0]
    info('{"gift_wrap": true}')
    shop.act(oid, "invoice")
    invoiced = history(build_snapshot(source.read([oid])[oid]), ctx)[1]
    engine.dispose()
    assert placed["commerce"]["order"][NS] == {"giftWrap": True}
    assert invoiced["eventType"] == "commerce.backofficeOrderInvoiced"
    assert invoiced["commerce"]["order"][NS] == {"gift_wrap": True}


def test_numbers_json_cannot_hold_exactly_travel_as_their_text() -> None:
    raw = '{"ref": 123456789012345678901234567890, "score": NaN, "n": 1e400, "ok": 7}'
    assert from_json(raw) == (
        {"ref": "123456789012345678901234567890", "score": "NaN", "n": "1e400", "ok": 7},
        None,
    )
    assert typed(Decimal("1" + "0" * 30), "decimal") == "1" + "0" * 30
    assert typed(2**64 - 1, "integer") == str(2**64 - 1)
    assert typed(2**63 - 1, "integer") == 2**63 - 1


def test_deeply_nested_json_gives_no_attributes() -> None:
    assert from_json('{"a": ' * 100_000 + "1" + "}" * 100_000) == ({}, "not_json")
