"""End to end: orders written into the shop the way Magento does land in the platform, once.

Runs on the SQLite demo store and on Magento's real schema in MariaDB (`shop_dsn`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, update
from sqlalchemy.exc import OperationalError
from typer.testing import CliRunner

from koppla.connector import schema as t
from koppla.connector.changelog import Changes
from koppla.connector.commands import connector_app
from koppla.connector.demo_store import DemoShop
from koppla.connector.runner import Connector, run_connector
from koppla.connector.settings import ConnectorSettings
from tests.connector.conftest import Platform, free_port, settings_for, wait_for
from tests.connector.samples import demo_categories

pytestmark = [pytest.mark.slow, pytest.mark.integration]


@pytest.fixture
def running(tmp_path: Path, shop_dsn: str, platform: Platform) -> Iterator[ConnectorSettings]:
    """The connector loop running in a thread against the shop and the platform."""
    settings = settings_for(tmp_path / "home", shop_dsn, platform)
    stop = threading.Event()
    thread = threading.Thread(target=run_connector, args=(settings.home, stop, settings))
    thread.start()
    yield settings
    stop.set()
    thread.join(timeout=30)
    assert not thread.is_alive()


def landed(platform: Platform, purchase_id: str) -> list[list[object]]:
    return platform.query(
        "SELECT eventType, _id, commerce.order.priceTotal, commerce.shipping.trackingNumber, "
        "commerce.order.refunds, productListItems, commerce.shipping.address.city, "
        "commerce.billing.address.city, identityMap, commerce.commerceScope.environmentID "
        f"FROM demo_events WHERE commerce.order.purchaseID = '{purchase_id}' ORDER BY timestamp"
    )


def types_of(platform: Platform, purchase_id: str) -> list[str]:
    return sorted(str(row[0]) for row in landed(platform, purchase_id))


def order_value(engine: Engine, order_id: int, column: str) -> object:
    with engine.connect() as conn:
        return conn.execute(
            select(t.sales_order.c[column]).where(t.sales_order.c.entity_id == order_id)
        ).scalar_one()


def test_order_life_lands_once_with_its_fields(
    running: ConnectorSettings, shop_engine: Engine, platform: Platform
) -> None:
    shop = DemoShop(shop_engine, seed=7)
    order = shop.place()
    purchase = str(order_value(shop_engine, order, "increment_id"))
    wait_for(lambda: types_of(platform, purchase) == ["commerce.backofficeOrderPlaced"])
    shop.act(order, "invoice")
    wait_for(lambda: len(landed(platform, purchase)) == 2)
    shop.act(order, "ship")
    wait_for(lambda: len(landed(platform, purchase)) == 4)
    shop.act(order, "refund")
    other = shop.place()
    shop.act(other, "cancel")
    other_purchase = str(order_value(shop_engine, other, "increment_id"))

    wait_for(lambda: len(landed(platform, purchase)) == 5)
    wait_for(lambda: len(landed(platform, other_purchase)) == 2)
    assert types_of(platform, purchase) == sorted(
        [
            "commerce.backofficeOrderPlaced",
            "commerce.backofficeOrderInvoiced",
            "commerce.backofficeOrderItemsShipped",
            "commerce.backofficeOrderShipmentCompleted",
            "commerce.backofficeCreditMemoIssued",
        ]
    )
    assert types_of(platform, other_purchase) == [
        "commerce.backofficeOrderCancelled",
        "commerce.backofficeOrderPlaced",
    ]
    rows = {str(r[0]): r for r in landed(platform, purchase)}
    grand = float(order_value(shop_engine, order, "base_grand_total"))  # type: ignore[arg-type]
    email = str(order_value(shop_engine, order, "customer_email"))
    with shop_engine.connect() as conn:
        track = conn.execute(
            select(t.sales_shipment_track.c.track_number).where(
                t.sales_shipment_track.c.order_id == order
            )
        ).scalar_one()
        products = dict(
            conn.execute(
                select(t.sales_order_item.c.sku, t.sales_order_item.c.product_id).where(
                    t.sales_order_item.c.order_id == order,
                    t.sales_order_item.c.parent_item_id.is_(None),
                )
            ).all()
        )
    skus = set(products)
    placed = rows["commerce.backofficeOrderPlaced"]
    assert placed[2] == pytest.approx(grand)
    assert {item["SKU"] for item in placed[5]} == skus  # type: ignore[union-attr]
    for item in placed[5]:  # type: ignore[union-attr]
        categories = [
            (c["categoryID"], c["categoryName"], c["categoryPath"])
            for c in item["productCategories"]
        ]
        expected = demo_categories()[products[item["SKU"]]]
        assert categories == [(str(c["id"]), c["name"], c["path"]) for c in expected]
    first = placed[5][0]  # type: ignore[index]
    first_category = demo_categories()[products[first["SKU"]]][0]
    assert platform.query(
        "SELECT productListItems[1].productCategories[1].categoryName, "
        "productListItems[1].productCategories[1].categoryPath FROM demo_events "
        f"WHERE eventType = 'commerce.backofficeOrderPlaced' "
        f"AND commerce.order.purchaseID = '{purchase}'"
    ) == [[first_category["name"], first_category["path"]]]
    assert placed[7]  # billing city
    assert "Email" in str(placed[8]) and email in str(placed[8])
    assert placed[9] == "test-env"
    assert rows["commerce.backofficeOrderInvoiced"][2] == pytest.approx(grand)
    shipped = rows["commerce.backofficeOrderItemsShipped"]
    assert shipped[3] == track
    assert shipped[6]  # shipping city
    refunds = rows["commerce.backofficeCreditMemoIssued"][4]
    assert refunds[0]["refundAmount"] == pytest.approx(grand)  # type: ignore[index]
    every = platform.query("SELECT _id FROM demo_events")
    assert len(every) == len({r[0] for r in every}) == 7
    assert platform.query("SELECT count(*) FROM quarantine") == [[0]]


def test_reindex_then_resync_adds_nothing(
    running: ConnectorSettings,
    shop_engine: Engine,
    platform: Platform,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    shop = DemoShop(shop_engine, seed=11)
    shop.generate(40)
    connector = Connector(running)
    try:
        expected = connector.state.backlog
        wait_for(lambda: expected().sent > 40 and expected().pending == 0)
        sent = expected().sent
    finally:
        connector.close()
    wait_for(lambda: platform.query("SELECT count(*) FROM demo_events") == [[sent]])

    (running.home / "connector.toml").write_text(
        f'source_dsn = "{running.source_dsn}"\nplatform_url = "{running.platform_url}"\n'
        "[[websites]]\n"
        f'website_code = "base"\norg_id = "{running.websites[0].org_id}"\n'
        f'datastream_id = "{running.websites[0].datastream_id}"\n'
        f'dataset_id = "{running.websites[0].dataset_id}"\nenvironment_id = "test-env"\n'
    )
    assert running.token is not None
    monkeypatch.setenv("KOPPLA_CONNECTOR_TOKEN", running.token.get_secret_value())
    runner = CliRunner()
    home = ["--home", str(running.home)]
    result = runner.invoke(connector_app, ["index:reindex", "sales_order_data_exporter_v2", *home])
    assert result.exit_code == 0, result.output
    assert "0 events queued" in result.output
    result = runner.invoke(connector_app, ["saas:resync", "--feed", "orders", *home])
    assert result.exit_code == 0, result.output
    assert f"{sent} events sent" in result.output

    marker = shop.place()  # lands after the resent events: the pipeline keeps order
    purchase = str(order_value(shop_engine, marker, "increment_id"))
    wait_for(lambda: len(landed(platform, purchase)) == 1)
    assert platform.query("SELECT count(*) FROM demo_events") == [[sent + 1]]


def test_events_wait_while_the_platform_is_down(
    tmp_path: Path, shop_dsn: str, shop_engine: Engine
) -> None:
    platform = Platform(tmp_path / "platform", free_port())
    platform.start()
    settings = settings_for(tmp_path / "home", shop_dsn, platform)
    platform.stop()
    shop = DemoShop(shop_engine, seed=3)
    orders = [shop.place() for _ in range(5)]
    for order in orders[:3]:
        shop.act(order, "invoice")
    shop.act(orders[4], "cancel")
    connector = Connector(settings)
    try:
        for _ in range(3):
            connector.step()
            connector.sender.backoff.not_before = 0.0
        assert connector.state.backlog().pending == 9
        assert connector.state.backlog().sent == 0
        platform.start()
        wait_for(lambda: connector.step() and connector.state.backlog().pending == 0)
        assert connector.state.backlog().sent == 9
    finally:
        connector.close()
    try:
        rows = wait_for(
            lambda: (r := platform.query("SELECT _id FROM demo_events")) and len(r) >= 9 and r
        )
        assert len(rows) == len({r[0] for r in rows}) == 9
    finally:
        platform.stop()


def test_a_malformed_order_is_logged_and_skipped(
    tmp_path: Path, shop_dsn: str, shop_engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    platform = Platform(tmp_path / "platform", free_port())  # never started: nothing is sent
    platform._token, platform._dataset = "unused", "dataset"
    settings = settings_for(tmp_path / "home", shop_dsn, platform)
    shop = DemoShop(shop_engine, seed=5)
    good, no_number, weird = shop.place(), shop.place(), shop.place()
    with shop_engine.begin() as conn:
        o = t.sales_order
        conn.execute(update(o).where(o.c.entity_id == no_number).values(increment_id=None))
        conn.execute(update(o).where(o.c.entity_id == weird).values(state="teleported"))
    connector = Connector(settings)
    caplog.set_level(logging.ERROR, logger="koppla.connector.feed")
    try:
        connector.step()
        pending = connector.state.pending(100)
        errors = connector.state.order_errors()
    finally:
        connector.close()
    assert [e.order_id for e in pending] == [good]
    assert [(oid, fld) for oid, fld, _ in errors] == [
        (no_number, "sales_order.increment_id"),
        (weird, "sales_order.state"),
    ]
    text = caplog.text
    assert f"order {no_number}: sales_order.increment_id" in text
    assert f"order {weird}: sales_order.state has unknown value 'teleported'" in text


def test_the_loop_survives_a_shop_database_outage(tmp_path: Path, sqlite_shop: str) -> None:
    platform = Platform(tmp_path / "platform", free_port())  # never started
    platform._token, platform._dataset = "unused", "dataset"
    settings = settings_for(tmp_path / "home", sqlite_shop, platform)
    connector = Connector(settings)
    fetch = connector.tracker.fetch
    outage = {"left": 3}

    def flaky(cursor: str | None) -> Changes:
        if outage["left"]:
            outage["left"] -= 1
            raise OperationalError("SELECT 1", {}, ConnectionRefusedError("shop DB down"))
        return fetch(cursor)

    connector.tracker.fetch = flaky  # type: ignore[method-assign]
    stop = threading.Event()
    thread = threading.Thread(target=connector.loop, args=(stop,))
    try:
        connector.step()  # the initial sync
        thread.start()
        DemoShop(connector.engine, seed=1).place()
        wait_for(lambda: connector.state.backlog().pending == 1)
        assert outage["left"] == 0 and thread.is_alive()
    finally:
        stop.set()
        thread.join(timeout=30)
        connector.close()
