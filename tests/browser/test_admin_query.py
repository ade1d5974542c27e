"""The SQL editor and the live debugger in Chromium, against a real `koppla up`.

Sign in, send an event to the edge, run `SELECT * FROM demo_events ORDER BY timestamp DESC` in
the editor and see its row; a bad query shows its error in the console; save a query and load
it back; open the debugger, send an event, watch it arrive with its validation result.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import BrowserContext, Page, expect

from koppla.core import codec
from koppla.platform.catalog.demo import DEMO_DATASTREAM_ID
from tests.browser.admin import (
    PHONE_VIEWPORT,
    AdminServer,
    admin_browser,
    admin_server,
    missing_requirement,
    save_screenshot,
    signed_in_page,
)
from tests.require import require

pytestmark = pytest.mark.slow

SQL = "SELECT * FROM demo_events ORDER BY timestamp DESC"
PAGE_URL = "https://shop.example/admin-query-test"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[AdminServer]:
    require(missing_requirement())
    with admin_server(tmp_path) as running:
        yield running


@pytest.fixture
def browser(server: AdminServer) -> Iterator[BrowserContext]:
    with admin_browser() as context:
        yield context


def send_event(server: AdminServer, *xdm: dict[str, Any]) -> None:
    """Send events to the edge in one request, as the Web SDK does (one visitor, one ECID)."""
    body = codec.dumps({"events": [{"xdm": x} for x in xdm]})
    answer = httpx.post(
        f"{server.url}/ee/v1/interact?configId={DEMO_DATASTREAM_ID}",
        content=body,
        headers={"content-type": "text/plain"},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text


def page_view(url: str) -> dict[str, Any]:
    return {
        "eventType": "web.webpagedetails.pageViews",
        "timestamp": "2026-12-01T10:00:00Z",
        "web": {"webPageDetails": {"URL": url, "name": "admin test"}},
    }


def wait_until_stored(server: AdminServer, url: str, timeout_s: float = 60) -> None:
    """Poll the query API until the pipeline has written the event sent with `url`."""
    sql = f"SELECT count(*) AS n FROM demo_events WHERE web.webPageDetails.URL = '{url}'"
    deadline = time.monotonic() + timeout_s
    with server.api() as api:
        while time.monotonic() < deadline:
            answer = api.post("/api/v1/query", json={"sql": sql})
            if answer.status_code == 200 and answer.json()["rows"][0][0] >= 1:
                return
            time.sleep(0.2)
    raise AssertionError(f"the event with {url} was not stored within {timeout_s} s")


def run_in_editor(page: Page, sql: str) -> None:
    """Type `sql` into the editor and run it with Ctrl+Enter."""
    editor = page.locator("#sql")
    editor.fill(sql)
    editor.press("Control+Enter")


def test_the_editor_shows_the_rows_of_a_sent_event_and_the_error_of_a_bad_query(
    server: AdminServer, browser: BrowserContext
) -> None:
    send_event(server, page_view(PAGE_URL))
    wait_until_stored(server, PAGE_URL)
    page = signed_in_page(browser, server)

    page.get_by_role("link", name="Query").click()
    page.wait_for_url(f"{server.url}/admin/query")
    expect(page.locator("#sql")).to_have_value(SQL)
    run_in_editor(page, SQL)
    expect(page.locator("#results tbody tr")).to_have_count(1)
    expect(page.locator("#results tbody tr").first).to_contain_text(PAGE_URL)
    expect(page.locator("#console")).to_contain_text("1 row in")
    headers = page.locator("#results thead th").all_inner_texts()
    assert "eventType" in headers and "timestamp" in headers
    save_screenshot(page, "test_admin_query-rows")

    bad = "SELECT nothing FROM demo_events"
    with server.api() as api:
        detail = api.post("/api/v1/query", json={"sql": bad}).json()["detail"]
    run_in_editor(page, bad)
    expect(page.locator("#console.failed")).to_have_text(detail)
    expect(page.locator("#results")).to_have_count(0)
    history = page.locator("#history-list li")
    expect(history).to_have_count(2)
    expect(history.first).to_contain_text(bad)  # newest first
    expect(history.first.locator(".badge")).to_have_text("error")
    save_screenshot(page, "test_admin_query-error")

    history.nth(1).locator("a").click()  # loads the first query back
    expect(page.locator("#sql")).to_have_value(SQL)
    page.locator("#save-name").fill("Newest events")
    page.get_by_role("button", name="Save", exact=True).click()
    saved = page.locator("#saved-list li")
    expect(saved).to_have_count(1)
    expect(saved.first).to_contain_text("Newest events")
    page.locator("#sql").fill("SELECT 1")
    saved.first.locator("a").click()
    expect(page.locator("#sql")).to_have_value(SQL)
    page.reload()
    expect(page.locator("#saved-list li")).to_have_count(1)  # kept on the server
    page.get_by_role("button", name="Delete saved query Newest events").click()
    expect(page.locator("#saved-list li")).to_have_count(0)


def test_the_debugger_shows_an_event_as_it_arrives(
    server: AdminServer, browser: BrowserContext
) -> None:
    page = signed_in_page(browser, server)

    page.get_by_role("link", name="Debugger").click()
    page.wait_for_url(f"{server.url}/admin/debugger")
    expect(page.locator("#debug-status")).to_have_text("watching")
    send_event(server, page_view(PAGE_URL))
    bad = {"eventType": "commerce.purchases", "timestamp": "2026-12-01T10:00:01Z"}
    send_event(server, bad)

    events = page.locator("#events > li")
    expect(events).to_have_count(2)
    newest, older = events.nth(0), events.nth(1)
    expect(newest).to_contain_text("commerce.purchases")
    expect(newest.locator(".badge")).to_contain_text("problem")
    expect(newest.locator("ul.problems")).to_contain_text("commerce.order.purchaseID")
    expect(older).to_contain_text("web.webpagedetails.pageViews")
    expect(older.locator(".badge")).to_have_text("valid")
    older.locator("summary").click()
    expect(older.locator("pre")).to_contain_text(PAGE_URL)
    save_screenshot(page, "test_admin_query-debugger")

    page.get_by_role("button", name="Pause").click()
    send_event(server, page_view(PAGE_URL + "/paused"))
    expect(page.locator("#debug-count")).to_contain_text("1 held while paused")
    expect(events).to_have_count(2)
    page.get_by_role("button", name="Resume").click()
    expect(events).to_have_count(3)
    page.get_by_role("button", name="Clear").click()
    expect(events).to_have_count(0)


def test_the_editor_fits_a_phone(server: AdminServer) -> None:
    send_event(server, page_view(PAGE_URL))
    wait_until_stored(server, PAGE_URL)
    with admin_browser(viewport=PHONE_VIEWPORT) as phone:
        page = signed_in_page(phone, server)
        page.goto(f"{server.url}/admin/query")
        page.get_by_role("button", name="Run").click()
        expect(page.locator("#results tbody tr")).to_have_count(1)

        # wide results scroll inside their box; the page itself does not scroll sideways
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        assert page.evaluate(
            "(() => { const w = document.querySelector('#results').parentElement;"
            " return w.scrollWidth > w.clientWidth; })()"
        )
        save_screenshot(page, "test_admin_query-phone")


def test_a_profile_is_found_by_an_identity_its_events_carried(
    server: AdminServer, browser: BrowserContext
) -> None:
    email = "ann@example.com"
    purchase = {
        "eventType": "commerce.purchases",
        "timestamp": "2026-12-01T10:05:00Z",
        "identityMap": {"Email": [{"id": email}]},
        "commerce": {"order": {"purchaseID": "100000042", "priceTotal": 73.0}},
    }
    send_event(server, page_view(PAGE_URL), purchase)  # one visitor: one ECID, and an email
    wait_for_profile(server, f"email:{email}", events=2)
    page = signed_in_page(browser, server)

    page.get_by_role("link", name="Profiles").click()
    page.get_by_label("Identity").fill("email:ANN@example.com")
    page.get_by_role("button", name="Look up").click()

    identities = page.locator("#identities tbody tr")
    expect(identities.filter(has_text="Email")).to_contain_text(email)
    expect(identities.filter(has_text="ECID")).to_have_count(1)  # the visitor's, stitched
    timeline = page.locator("#timeline tbody tr")
    expect(timeline).to_have_count(2)
    expect(timeline.first).to_contain_text("commerce.purchases")  # newest first
    expect(timeline.first).to_contain_text("order 100000042")
    computed = page.locator("#computed")
    expect(computed).to_contain_text("First seen2026-12-01 10:00:00 UTC")
    expect(computed).to_contain_text("Last seen2026-12-01 10:05:00 UTC")
    save_screenshot(page, "test_admin_query-profile")

    page.get_by_label("Identity").fill("email:nobody@example.com")
    page.get_by_role("button", name="Look up").click()
    expect(page.locator("#no-profile")).to_contain_text("No profile for Email:nobody@example.com")


def wait_for_profile(
    server: AdminServer, identity: str, events: int, timeout_s: float = 60
) -> None:
    """Poll the profile API until the profile of `identity` has `events` events."""
    deadline = time.monotonic() + timeout_s
    with server.api() as api:
        while time.monotonic() < deadline:
            answer = api.get(f"/api/v1/profiles/{identity}")
            if answer.status_code == 200 and len(answer.json()["events"]) >= events:
                return
            time.sleep(0.2)
    raise AssertionError(f"no profile of {identity} with {events} events within {timeout_s} s")
