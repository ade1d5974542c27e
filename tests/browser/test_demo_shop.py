"""A shopper clicks through the demo shop in Chromium; every event lands in `demo_events`.

The real `@adobe/alloy` bundle (from `npm ci`) talks to Koppla over TLS, so this checks the
whole path: the SDK's consent and identity handshake, the edge, the spool, the pipeline, SQL.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import sync_playwright

from tests.browser.shop import (
    CHROMIUM,
    EDGE_HOST,
    VISIT_EVENTS,
    ShopServer,
    chromium_args,
    missing_requirement,
    shop_server,
    visit,
    wait_for_rows,
)
from tests.require import require

pytestmark = pytest.mark.slow

EMAIL = "roni_cost@example.com"
CART_EVENTS = (
    "commerce.productListOpens",
    "commerce.productListAdds",
    "commerce.productListViews",
    "commerce.checkouts",
)
SQL = """
SELECT eventType, identityMap['ECID'][1].id AS ecid, identityMap['Email'] AS email,
       productListItems AS items, commerce.cart.cartID AS cart_id,
       commerce.order.purchaseID AS purchase_id, commerce.order.priceTotal AS order_total,
       commerce.commerceScope.storeViewCode AS store_view, web.webPageDetails.URL AS url
FROM demo_events
"""


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ShopServer]:
    require(missing_requirement())
    with shop_server(tmp_path) as running:
        yield running


def _walk(server: ShopServer, tmp_path: Path) -> tuple[list[dict[str, Any]], list[str]]:
    edge_requests: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=chromium_args(server.port)
        )
        try:
            context = browser.new_context(ignore_https_errors=True)
            page = context.new_page()
            page.set_default_timeout(30_000)
            page.on("request", lambda r: edge_requests.append(r.url) if "/ee/" in r.url else None)
            try:
                history = visit(page, server.shop_url, EMAIL)
            except Exception:
                page.screenshot(path=str(tmp_path / "failure.png"))
                raise
        finally:
            browser.close()
    return history, edge_requests


def _items(row: dict[str, Any]) -> list[tuple[Any, ...]]:
    return [(i["SKU"], i["quantity"], i["priceTotal"], i["currencyCode"]) for i in row["items"]]


def test_a_visit_lands_every_event_with_one_ecid(server: ShopServer, tmp_path: Path) -> None:
    history, edge_requests = _walk(server, tmp_path)

    assert [e["eventType"] for e in history] == list(VISIT_EVENTS)
    assert {e["status"] for e in history} == {"sent"}, history
    ecids = {e["ecid"] for e in history}
    assert len(ecids) == 1 and ecids != {"0" * 36}, ecids
    ecid = ecids.pop()
    assert {urlsplit(u).hostname for u in edge_requests} == {EDGE_HOST}
    sent = {e["eventType"]: e["xdm"] for e in history}
    cart_id = sent["commerce.productListAdds"]["commerce"]["cart"]["cartID"]
    purchase_id = sent["commerce.purchases"]["commerce"]["order"]["purchaseID"]

    rows = wait_for_rows(server, server.koppla.token(), SQL, len(VISIT_EVENTS))

    assert Counter(r["eventType"] for r in rows) == Counter(VISIT_EVENTS)
    assert {r["ecid"] for r in rows} == {ecid}
    by_type = {r["eventType"]: r for r in rows}
    bags = [("24-MB01", 2, 68.0, "USD")]
    assert _items(by_type["commerce.productViews"]) == [("24-MB01", None, 34.0, "USD")]
    for event_type in CART_EVENTS:
        assert _items(by_type[event_type]) == bags, event_type
        assert by_type[event_type]["cart_id"] == cart_id, event_type
    purchase = by_type["commerce.purchases"]
    assert _items(purchase) == bags
    assert purchase["purchase_id"] == purchase_id
    assert purchase["order_total"] == 73.0  # two bags and flat-rate shipping
    for event_type in ("commerce.purchases", "userAccount.login"):
        assert by_type[event_type]["email"] == [
            {"id": EMAIL, "authenticatedState": None, "primary": False}
        ], event_type
    assert all(r["email"] is None for r in rows if not _emailed(r))
    # commerceScope on every event but page views (domain.md §3.2)
    assert all((r["store_view"] is None) == _is_page_view(r) for r in rows)
    pages = sorted(urlsplit(r["url"]).path for r in rows if _is_page_view(r))
    assert pages == sorted(
        f"/demo/shop/{p}" for p in ("", "product/24-MB01", "cart", "checkout", "signin")
    )


def _is_page_view(row: dict[str, Any]) -> bool:
    return bool(row["eventType"] == "web.webpagedetails.pageViews")


def _emailed(row: dict[str, Any]) -> bool:
    return row["eventType"] in ("commerce.purchases", "userAccount.login")
