"""Product categories: catalog rows → feed item `categories` → XDM `productCategories`."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, delete, event

from koppla.connector import schema as t
from koppla.connector.demo_store import PRODUCT_IDS, DemoShop, create_demo_schema
from koppla.connector.events import (
    CREDIT_MEMO_ISSUED,
    INVOICED,
    ITEMS_SHIPPED,
    PLACED,
    SHIPMENT_COMPLETED,
    history,
)
from koppla.connector.snapshot import snapshot_hash
from koppla.connector.source import StoreSource, connect, product_categories
from tests.connector.samples import CTX, Order, demo_categories
from tests.connector.test_events import assert_valid, since


def link(product: int, category: int, path: str) -> dict[str, Any]:
    return {"product_id": product, "category_id": category, "path": path}


NAMES = {1: "Root Catalog", 2: "Default Category", 3: "Gear", 4: "Bags", 7: "Men", 8: "Tops"}


def test_named_paths_skip_the_root_levels_like_magento_breadcrumbs() -> None:
    links = [link(10, 4, "1/2/3/4"), link(10, 8, "1/2/7/8"), link(11, 3, "1/2/3")]
    assert product_categories(links, NAMES) == {
        10: [
            {"id": 4, "name": "Bags", "path": "Gear/Bags"},
            {"id": 8, "name": "Tops", "path": "Men/Tops"},
        ],
        11: [{"id": 3, "name": "Gear", "path": "Gear"}],
    }


def test_without_names_categories_carry_the_id_path_and_no_name() -> None:
    assert product_categories([link(10, 4, "1/2/3/4")]) == {
        10: [{"id": 4, "name": None, "path": "1/2/3/4"}]
    }


def test_a_missing_ancestor_name_falls_back_to_the_id_path() -> None:
    names = {4: "Bags"}
    assert product_categories([link(10, 4, "1/2/3/4")], names) == {
        10: [{"id": 4, "name": "Bags", "path": "1/2/3/4"}]
    }


def test_a_product_in_a_root_category_gets_that_categorys_name_as_path() -> None:
    assert product_categories([link(10, 2, "1/2")], NAMES) == {
        10: [{"id": 2, "name": "Default Category", "path": "Default Category"}]
    }


def lines_of(event: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {line["SKU"]: line for line in event["productListItems"]}


def test_every_event_with_product_lines_carries_their_categories() -> None:
    order = Order(seed=8).invoice().ship()
    shipped = order.snapshot(demo_categories())
    closed = order.refund().snapshot(demo_categories())
    life = history(shipped, CTX) + since(shipped, closed)
    events = {e["eventType"]: e for e in life}
    assert set(events) == {PLACED, INVOICED, ITEMS_SHIPPED, SHIPMENT_COMPLETED, CREDIT_MEMO_ISSUED}
    top = [i for i in order.draft.items if i["parent_item_id"] is None]
    expected = {i["sku"]: demo_categories()[i["product_id"]] for i in top}
    for built in events.values():
        for sku, line in lines_of(built).items():
            assert line["productCategories"] == [
                {"categoryID": str(c["id"]), "categoryName": c["name"], "categoryPath": c["path"]}
                for c in expected[sku]
            ], built["eventType"]
    assert_valid(list(events.values()))


def test_the_demo_catalog_names_paths_below_the_root() -> None:
    bag = demo_categories()[PRODUCT_IDS["24-MB01"]]
    assert bag == [{"id": 4, "name": "Bags", "path": "Gear/Bags"}]
    tank = demo_categories()[PRODUCT_IDS["WT09"]]
    assert [c["path"] for c in tank] == ["Women/Tops/Tanks", "Sale"]


def test_without_names_lines_carry_id_and_path_only() -> None:
    snap = Order(seed=6).snapshot(demo_categories(names=False))
    for line in history(snap, CTX)[0]["productListItems"]:
        for category in line["productCategories"]:
            assert set(category) == {"categoryID", "categoryPath"}
            assert category["categoryPath"].startswith("1/2/")
    assert_valid(history(snap, CTX))


def test_lines_whose_product_has_no_category_have_no_product_categories_key() -> None:
    order = Order(seed=6)
    snap = order.snapshot()
    assert all(item["categories"] == [] for item in snap["items"])
    for line in history(snap, CTX)[0]["productListItems"]:
        assert "productCategories" not in line


def test_categories_are_in_the_snapshot_but_not_in_its_hash() -> None:
    order = Order(seed=3).invoice()
    plain, categorised = order.snapshot(), order.snapshot(demo_categories())
    assert any(item["categories"] for item in categorised["items"])
    assert snapshot_hash(plain) == snapshot_hash(categorised)
    recategorised = copy.deepcopy(categorised)
    recategorised["items"][0]["categories"] = [{"id": 99, "name": "New", "path": "New"}]
    assert snapshot_hash(recategorised) == snapshot_hash(categorised)


@pytest.fixture
def demo_engine(tmp_path: Path) -> Iterator[Engine]:
    engine = connect(f"sqlite:///{tmp_path / 'shop.sqlite'}")
    create_demo_schema(engine)
    yield engine
    engine.dispose()


def read_items(engine: Engine, order_ids: list[int]) -> list[dict[str, Any]]:
    rows = StoreSource(engine).read(order_ids)
    return [
        {"product": item["product_id"], "categories": rows[oid].categories.get(item["product_id"])}
        for oid in order_ids
        for item in rows[oid].items
        if item["parent_item_id"] is None
    ]


def test_the_source_reads_admin_names_in_a_constant_number_of_queries(
    demo_engine: Engine,
) -> None:
    shop = DemoShop(demo_engine, seed=4)
    orders = [shop.place() for _ in range(30)]
    statements: list[str] = []

    def record(*args: Any) -> None:
        statements.append(str(args[2]))

    event.listen(demo_engine, "before_cursor_execute", record)
    try:
        items = read_items(demo_engine, orders)
    finally:
        event.remove(demo_engine, "before_cursor_execute", record)
    assert all(i["categories"] == demo_categories()[i["product"]] for i in items)
    assert any(i["categories"][0]["name"] == "Bags" for i in items if i["product"] == 5)
    catalog = [s for s in statements if "catalog_category" in s]
    assert len(catalog) == 2  # the links, then the names
    assert sum("eav_attribute" in s for s in statements) == 1  # probed once per source


@pytest.mark.parametrize("missing", ["tables", "attribute"])
def test_without_the_eav_name_attribute_categories_carry_ids_only(
    demo_engine: Engine, missing: str
) -> None:
    if missing == "tables":
        t.eav_metadata.drop_all(demo_engine)
    else:
        with demo_engine.begin() as conn:
            conn.execute(delete(t.eav_attribute).where(t.eav_attribute.c.attribute_code == "name"))
    order = DemoShop(demo_engine, seed=4).place()
    items = read_items(demo_engine, [order])
    assert items and all(
        i["categories"] == demo_categories(names=False)[i["product"]] for i in items
    )


def test_without_catalog_tables_orders_are_read_without_categories(demo_engine: Engine) -> None:
    order = DemoShop(demo_engine, seed=4).place()
    t.catalog_category_product.drop(demo_engine)
    items = read_items(demo_engine, [order])
    assert items and all(i["categories"] is None for i in items)
