"""The demo shop in headless Chromium, served where the Web SDK cannot reach the edge.

Koppla runs as `koppla up --demo` on plain HTTP at 127.0.0.1 on a free port, as a newcomer
first starts it: the page must say at the top why its events will not arrive and what to do,
and its event log must point there instead of leaving events "queued" with no explanation.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import Page, sync_playwright

from tests.require import require
from tests.server import Koppla, free_port

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[3]
CHROMIUM = Path("/usr/bin/chromium")
TLS_ON_443 = "koppla up --tls-cert CERT --tls-key KEY --port 443"
PAGE_VIEW = "#event-list li[data-event-type='web.webpagedetails.pageViews']"
_HISTORY = "() => JSON.parse(sessionStorage.getItem('koppla-demo-sent') || '[]')"


@pytest.fixture
def start_koppla(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., Koppla]]:
    """Starts `koppla up --demo` over plain HTTP with the given `KOPPLA_*` environment."""
    require(None if CHROMIUM.is_file() else f"{CHROMIUM} is absent: apt-get install chromium")
    monkeypatch.delenv("KOPPLA_PUBLIC_EDGE_DOMAIN", raising=False)
    started: list[Koppla] = []

    def start(**environment: str) -> Koppla:
        for name, value in environment.items():
            monkeypatch.setenv(name, value)  # inherited by the child process
        server = Koppla(tmp_path / "home", free_port())
        server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@contextmanager
def shop_page(url: str, request: pytest.FixtureRequest) -> Iterator[tuple[Page, list[str]]]:
    """The shop's home page open in Chromium, and the edge requests it made so far.

    The page's screenshot is saved, named after the test, when the block ends.
    """
    edge_requests: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            page = browser.new_page()
            page.set_default_timeout(30_000)
            page.on("request", lambda r: edge_requests.append(r.url) if "/ee/" in r.url else None)
            # Not "load": without a local bundle the Web SDK comes from a CDN that may not answer.
            page.goto(url, wait_until="domcontentloaded")
            try:
                yield page, edge_requests
            finally:
                _screenshot(page, request.node.name)
        finally:
            browser.close()


def _screenshot(page: Page, name: str) -> None:
    folder = Path(os.environ.get("KOPPLA_ARTIFACTS") or REPO / "test-artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / f"{name}.png"), full_page=True)


def test_plain_http_on_a_port_says_what_to_do_above_the_shop(
    start_koppla: Callable[..., Koppla], request: pytest.FixtureRequest
) -> None:
    koppla = start_koppla()
    with shop_page(f"{koppla.url}/demo/shop/", request) as (page, _):
        banner = page.locator("#edge-warning")
        assert banner.is_visible()
        text = banner.inner_text()
        assert "Events from this shop will not reach Koppla" in text
        assert f"reached at {koppla.url}/, so events will not arrive" in text
        assert TLS_ON_443 in text and "set public_edge_domain" in text
        assert "127.0.0.1 (from the request's Host header) is an IP address" in text
        banner_box, main_box = banner.bounding_box(), page.locator("main").bounding_box()
        assert banner_box is not None and main_box is not None
        assert banner_box["y"] < main_box["y"]  # above the shop, not in a side panel
        why = page.locator(f"{PAGE_VIEW} .why")
        why.wait_for()
        assert "see the warning at the top" in why.inner_text()


def test_an_edge_domain_alloy_refuses_marks_events_not_sent(
    start_koppla: Callable[..., Koppla], request: pytest.FixtureRequest
) -> None:
    koppla = start_koppla(KOPPLA_PUBLIC_EDGE_DOMAIN="edge.shop.example:8443")
    with shop_page(f"{koppla.url}/demo/shop/", request) as (page, edge_requests):
        text = page.locator("#edge-warning").inner_text()
        assert "'edge.shop.example:8443' (from public_edge_domain) is not a host name" in text
        status = page.locator(f"{PAGE_VIEW} .status")
        status.wait_for()
        assert status.inner_text().strip().startswith("not sent:")
        history = page.evaluate(_HISTORY)
        assert [e["status"].split(":")[0] for e in history] == ["not sent"]
        assert edge_requests == []
