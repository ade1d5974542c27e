"""An admin signs in and checks that data arrives: overview, a dataset, a failed batch, the
quarantine, in headless Chromium against a real `koppla up`. Screenshots go to the artifacts."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import BrowserContext, Page, expect

from koppla.core import clock, codec, ids
from koppla.platform.catalog.demo import DEMO_DATASET, DEMO_DATASTREAM_ID
from tests.browser.admin import (
    PHONE_VIEWPORT,
    AdminServer,
    admin_browser,
    admin_server,
    missing_requirement,
    save_screenshot,
    sign_in,
    signed_in_page,
)
from tests.require import require

pytestmark = pytest.mark.slow

IMPORT = "/data/foundation/import/batches"
PAGE_VIEW = "web.webpagedetails.pageViews"
CHECKOUT = "commerce.checkouts"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AdminServer]:
    require(missing_requirement())
    with admin_server(tmp_path_factory.mktemp("admin")) as running:
        yield running


@pytest.fixture
def context() -> Iterator[BrowserContext]:
    with admin_browser() as browser_context:
        yield browser_context


def _events(server: AdminServer) -> None:
    """Page views and checkouts of the last minutes, and one event the pipeline refuses."""
    events: list[dict[str, Any]] = []
    for minutes_ago, event_type in ((12, PAGE_VIEW), (7, PAGE_VIEW), (7, CHECKOUT), (2, PAGE_VIEW)):
        moment = clock.iso(clock.now() - timedelta(minutes=minutes_ago))
        xdm = {"_id": ids.new_uuid(), "eventType": event_type, "timestamp": moment}
        events.append({"xdm": xdm})
    events.append({"xdm": {"eventType": PAGE_VIEW}})  # no timestamp: quarantined
    answer = httpx.post(
        f"{server.url}/ee/v1/interact?configId={DEMO_DATASTREAM_ID}",
        content=codec.dumps({"events": events}),
        timeout=30,
    )
    answer.raise_for_status()


def _failed_batch(server: AdminServer) -> str:
    """A batch-ingestion batch with more bad rows than good ones; its id once it has failed."""
    good = {
        "_id": "order-1-placed",
        "eventType": "commerce.backofficeOrderPlaced",
        "timestamp": "2026-03-01T10:00:00.000Z",
        "commerce": {"order": {"purchaseID": "100001", "priceTotal": 12.5}},
    }
    bad = {**good, "_id": "order-2-placed", "timestamp": "next tuesday"}
    data = b"".join(codec.dumps(row) + b"\n" for row in (good, bad, {**bad, "_id": "order-3"}))
    with server.api() as api:
        dataset = api.get(f"/api/v1/datasets/{DEMO_DATASET}").json()["id"]
        body = {"datasetId": dataset, "inputFormat": {"format": "json"}}
        batch = str(api.post(IMPORT, json=body).json()["id"])
        api.put(f"{IMPORT}/{batch}/datasets/{dataset}/files/orders.json", content=data)
        api.post(f"{IMPORT}/{batch}", params={"action": "COMPLETE"}).raise_for_status()
        _wait(lambda: api.get(f"/api/v1/batches/{batch}").json()["status"] == "failed")
    return batch


def _wait(done: Any, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the platform")
        time.sleep(0.2)


def _stored(server: AdminServer) -> bool:
    with server.api() as api:
        status = api.get("/api/v1/status").json()
    rows = {d["name"]: d["rows"] for d in status["datasets"]}
    return bool(rows.get(DEMO_DATASET)) and bool(status["quarantinedRecords"])


def _shot(page: Page, name: str) -> Path:
    return save_screenshot(page, f"test_admin_pages-{name}")


def test_a_wrong_password_is_refused_on_the_page(
    server: AdminServer, context: BrowserContext
) -> None:
    page = context.new_page()
    page.goto(f"{server.url}/admin/datasets")
    expect(page).to_have_url(f"{server.url}/admin/login?next=%2Fadmin%2Fdatasets")

    sign_in(page, server, password="not the password")

    expect(page.get_by_role("alert")).to_have_text("wrong email or password")
    expect(page.get_by_label("Email")).to_have_value(server.email)
    _shot(page, "wrong-password")
    sign_in(page, server)
    expect(page).to_have_url(f"{server.url}/admin/datasets")


def test_an_admin_follows_data_from_the_overview_to_a_failed_batch(
    server: AdminServer, context: BrowserContext
) -> None:
    _events(server)
    _wait(lambda: _stored(server))
    batch = _failed_batch(server)
    page = signed_in_page(context, server)

    # The overview: the chart has one line per event type, the health and the quarantine.
    page.reload()
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    expect(page.locator("#events-chart canvas")).to_have_count(1)
    expect(page.locator("#events-chart")).to_have_attribute("data-series", "2")
    expect(page.locator("#event-types")).to_contain_text(PAGE_VIEW)
    expect(page.locator("#events-total .value")).to_have_text("4")
    expect(page.locator("#health")).to_contain_text("healthy")
    expect(page.locator("#quarantined .value")).to_have_text("1")
    _shot(page, "overview")

    # A dataset: its schema, rows and batches.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Datasets").click()
    expect(page.get_by_role("heading", name="Datasets", exact=True)).to_be_visible()
    _shot(page, "datasets")
    page.locator("#datasets").get_by_role("link", name=DEMO_DATASET).click()
    expect(page.get_by_role("heading", name=DEMO_DATASET)).to_be_visible()
    expect(page.locator("#row-count")).to_have_text("4")
    expect(page.locator("#fields")).to_contain_text("eventType")
    expect(page.locator("#batches")).to_contain_text("failed")
    _shot(page, "dataset")

    # The failed batch: its row errors, each with the row as it was sent.
    page.locator("#batches").get_by_role("link", name=batch).click()
    expect(page.locator("#batch-status")).to_have_text("failed")
    errors = page.locator("#row-errors")
    expect(errors.locator("tbody tr")).to_have_count(2)
    expect(errors).to_contain_text("orders.json, row 2")
    expect(errors).to_contain_text("timestamp")
    errors.locator("summary").first.click()
    expect(errors.locator("pre").first).to_contain_text('"timestamp": "next tuesday"')
    _shot(page, "failed-batch")

    # The quarantine: the refused event with its problem, filtered by problem text.
    page.goto(f"{server.url}/admin/quarantine")
    page.get_by_label("Problem contains").fill("timestamp")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("#quarantine tbody tr")).to_have_count(1)
    expect(page.locator("#quarantine")).to_contain_text("required field is missing")
    _shot(page, "quarantine")

    # Signing out ends the session: the pages send back to the login form.
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(f"{server.url}/admin/login")
    page.goto(f"{server.url}/admin/")
    expect(page).to_have_url(f"{server.url}/admin/login?next=%2Fadmin%2F")


def test_the_pages_fit_a_phone(server: AdminServer) -> None:
    with admin_browser(viewport=PHONE_VIEWPORT, is_mobile=True, has_touch=True) as phone:
        page = signed_in_page(phone, server)
        expect(page.get_by_role("navigation", name="Main")).to_be_visible()
        no_sideways_scroll = "document.documentElement.scrollWidth <= window.innerWidth"
        assert page.evaluate(no_sideways_scroll)
        _shot(page, "phone-overview")
        page.goto(f"{server.url}/admin/datasets")
        assert page.evaluate(no_sideways_scroll)  # wide tables scroll inside their box
        _shot(page, "phone-datasets")
