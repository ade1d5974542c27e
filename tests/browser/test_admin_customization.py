"""The Data Customization tab in headless Chromium against a real `koppla up` and a connector on
a demo shop: custom order and item attributes the shop's orders carry show beside the custom
fields of the dataset's schema; a field added through the schema registry API shows as a match
after Refresh; a renamed attribute shows after the next order; live and historical datasets
show separately."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, Page, expect
from sqlalchemy import text

from koppla.connector.demo_store import DemoShop, create_demo_schema
from koppla.connector.runner import run_connector
from koppla.connector.settings import load_settings
from koppla.connector.source import connect
from koppla.core import codec
from koppla.platform.catalog.demo import DEMO_ORG_ID
from koppla.xdm.experience_event import SCHEMA_ID
from koppla.xdm.tenant import namespace, tenant_id
from tests.browser.admin import (
    AdminServer,
    admin_browser,
    admin_server,
    missing_requirement,
    save_screenshot,
    signed_in_page,
)
from tests.connector.conftest import wait_for
from tests.require import require

pytestmark = pytest.mark.slow

PAGE = "/admin/connection/customization"
REGISTRY = "/data/foundation/schemaregistry"
TENANT = namespace(tenant_id(DEMO_ORG_ID))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AdminServer]:
    require(missing_requirement())
    with admin_server(tmp_path_factory.mktemp("customization")) as running:
        yield running


@pytest.fixture
def context() -> Iterator[BrowserContext]:
    with admin_browser() as browser_context:
        yield browser_context


def field_group(title: str, order: dict[str, Any], item: dict[str, Any]) -> dict[str, Any]:
    """A field group adding `order` fields under `commerce.order._<tenant>` and `item` fields
    under `productListItems[]._<tenant>`, in AEP's shape."""

    def own(fields: dict[str, Any]) -> dict[str, Any]:
        return {"type": "object", "properties": {TENANT: {"type": "object", "properties": fields}}}

    return {
        "title": title,
        "type": "object",
        "meta:intendedToExtend": ["https://ns.adobe.com/xdm/context/experienceevent"],
        "definitions": {
            "custom": {
                "properties": {
                    "commerce": {
                        "type": "object",
                        "properties": {"order": own(order)},
                    },
                    "productListItems": {"type": "array", "items": own(item)},
                }
            }
        },
        "allOf": [{"$ref": "#/definitions/custom"}],
    }


def new_dataset(server: AdminServer, name: str, order: dict[str, Any]) -> tuple[str, str]:
    """A dataset on a tenant schema of its own whose field group defines `order` fields;
    its id and the field group's id."""
    with server.api() as api:
        group = api.post(f"{REGISTRY}/tenant/fieldgroups", json=field_group(name, order, {}))
        assert group.status_code == 201, group.text
        group_id = group.json()["$id"]
        body = {"title": name, "allOf": [{"$ref": SCHEMA_ID}, {"$ref": group_id}]}
        schema = api.post(f"{REGISTRY}/tenant/schemas", json=body)
        assert schema.status_code == 201, schema.text
        made = api.post("/api/v1/datasets", json={"name": name, "schemaId": schema.json()["$id"]})
        assert made.status_code == 201, made.text
        return str(made.json()["id"]), group_id


def place(shop: DemoShop, order: dict[str, Any], item: dict[str, Any]) -> int:
    """A new order in the demo shop carrying `order` and `item` custom attributes."""
    placed = shop.place()
    with shop.engine.begin() as conn:
        conn.execute(
            text("UPDATE sales_order_payment SET additional_information = :a WHERE parent_id = :o"),
            {"a": codec.dumps(order).decode(), "o": placed},
        )
        conn.execute(
            text("UPDATE sales_order_item SET additional_data = :a WHERE order_id = :o"),
            {"a": codec.dumps(item).decode(), "o": placed},
        )
    return placed


def sync(server: AdminServer, home: Path, dsn: str, until: Any) -> None:
    """Run the connector on the shop at `dsn` until `until()` holds."""
    settings = load_settings(
        home,
        token=server.token,
        source_dsn=dsn,
        platform_url=server.url,
        poll_interval_s=0.2,
        change_tracking="poll",
    )
    stop = threading.Event()
    runner = threading.Thread(target=run_connector, args=(settings.home, stop, settings))
    runner.start()
    try:
        wait_for(until, timeout=90, every=0.3)
    finally:
        stop.set()
        runner.join(timeout=30)


def table_row(page: Page, level: str, name: str, side: str = "commerce") -> Any:
    return page.locator(f'#custom-attributes tr[data-level="{level}"][data-{side}="{name}"]')


def test_custom_attributes_match_after_the_schema_gains_them_and_show_renames(
    server: AdminServer, context: BrowserContext, tmp_path: Path
) -> None:
    live, group_id = new_dataset(server, "custom_live", {"giftWrap": {"type": "boolean"}})
    history, _ = new_dataset(server, "custom_history", {})
    with server.api() as api:
        stream = api.post(
            "/api/v1/datastreams",
            json={"orgId": DEMO_ORG_ID, "eventDataset": live, "name": "custom"},
        ).json()
        saved = api.put(
            "/api/v1/connector/settings",
            json={
                "org_id": DEMO_ORG_ID,
                "web_sdk_name": "",
                "websites": [
                    {
                        "website_code": "base",
                        "datastream_id": stream["id"],
                        "dataset_id": live,
                        "history_copy_dataset_id": False,
                        "history_dataset_id": history,
                    }
                ],
            },
        )
        assert saved.status_code == 200, saved.text

    page = signed_in_page(context, server)
    page.goto(f"{server.url}{PAGE}")
    # the schema's own field shows before any order carried it
    expect(table_row(page, "order", "giftWrap", "platform")).to_be_visible()
    expect(page.locator("#no-attributes")).to_have_count(0)

    dsn = f"sqlite:///{tmp_path / 'shop.sqlite'}"
    engine = connect(dsn)
    create_demo_schema(engine)
    shop = DemoShop(engine, seed=5)
    try:
        place(shop, {"giftWrap": True, "deliveryNote": "leave at the door"}, {"engraving": "A"})

        def seen(name: str) -> Any:
            def check() -> bool:
                with server.api() as api:
                    rows = api.get("/api/v1/connector/custom-attributes").json()["attributes"]
                return any(r["commerce"] == name and r["datasetId"] == live for r in rows)

            return check

        sync(server, tmp_path / "connector", dsn, seen("deliveryNote"))
        page.locator("#refresh").click()
        expect(table_row(page, "order", "giftWrap")).to_have_class("match")
        expect(table_row(page, "order", "deliveryNote")).to_have_class("mismatch")
        expect(table_row(page, "item", "engraving")).to_have_class("mismatch")
        save_screenshot(page, "connection-customization-mismatch")

        # the platform side gains deliveryNote: the match shows after Refresh
        with server.api() as api:
            path = (
                "/definitions/custom/properties/commerce/properties/order/properties/"
                f"{TENANT}/properties/deliveryNote"
            )
            added = api.patch(
                f"{REGISTRY}/tenant/fieldgroups/{group_id}",
                json=[{"op": "add", "path": path, "value": {"type": "string"}}],
            )
            assert added.status_code == 200, added.text
        expect(table_row(page, "order", "deliveryNote")).to_have_class("mismatch")
        page.locator("#refresh").click()
        expect(page.locator("#refreshed")).to_be_visible()
        expect(table_row(page, "order", "deliveryNote")).to_have_class("match")

        # the store renames deliveryNote: the new name shows after the next order
        place(shop, {"giftWrap": False, "deliveryInstructions": "ring twice"}, {})
        sync(server, tmp_path / "connector", dsn, seen("deliveryInstructions"))
        page.locator("#refresh").click()
        expect(table_row(page, "order", "deliveryInstructions")).to_have_class("mismatch")
        save_screenshot(page, "connection-customization-renamed")
    finally:
        engine.dispose()

    # the historical dataset, on its own schema, is listed apart: nothing seen there yet
    expect(page.locator("#consulted")).to_contain_text(
        "custom_history (historical) no custom attributes seen or defined"
    )
    expect(page.locator('#custom-attributes tr[data-dataset="' + history + '"]')).to_have_count(0)
