"""Drive the demo shop in headless Chromium with the real Web SDK; shared by the test and bench.

Koppla runs as a child process serving TLS for `shop.test` and `edge.shop.test`; Chromium maps
both names to the local port (alloy always speaks https:// to port 443, so a name is needed).
"""

from __future__ import annotations

import os
import ssl
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import trustme

from tests.server import Koppla, free_port

REPO = Path(__file__).resolve().parents[2]
ALLOY = REPO / "node_modules/@adobe/alloy/dist/alloy.min.js"
CHROMIUM = Path("/usr/bin/chromium")
SHOP_HOST = "shop.test"
EDGE_HOST = "edge.shop.test"

# What one visit sends, in order (page views interleaved with the shopper's actions).
VISIT_EVENTS = (
    "web.webpagedetails.pageViews",  # home
    "web.webpagedetails.pageViews",  # product page
    "commerce.productViews",
    "commerce.productListOpens",  # first add to an empty cart
    "commerce.productListAdds",
    "web.webpagedetails.pageViews",  # cart
    "commerce.productListViews",
    "commerce.checkouts",
    "web.webpagedetails.pageViews",  # checkout
    "commerce.purchases",
    "web.webpagedetails.pageViews",  # sign-in
    "userAccount.login",
)


def missing_requirement() -> str | None:
    """Why the browser flow cannot run here, or None when it can."""
    if not ALLOY.is_file():
        return f"{ALLOY.relative_to(REPO)} is absent: run `npm ci` at the repository root"
    if not CHROMIUM.is_file():
        return f"{CHROMIUM} is absent: run `apt-get install -y chromium`"
    return None


@dataclass(frozen=True)
class ShopServer:
    """A running Koppla over TLS, and how to reach it."""

    koppla: Koppla
    port: int
    ca_file: Path

    @property
    def shop_url(self) -> str:
        """The demo shop's home page, as the browser addresses it."""
        return f"https://{SHOP_HOST}/demo/shop/"

    def query(self, sql: str, token: str) -> list[dict[str, Any]]:
        """Rows of `sql` as dicts, through the query API."""
        response = httpx.post(
            f"{self.koppla.url}/api/v1/query",
            json={"sql": sql},
            headers={"authorization": f"Bearer {token}"},
            verify=ssl.create_default_context(cafile=str(self.ca_file)),
            timeout=30,
        )
        response.raise_for_status()
        body = response.json()
        names = [c["name"] for c in body["columns"]]
        return [dict(zip(names, row, strict=True)) for row in body["rows"]]


@contextmanager
def shop_server(workdir: Path) -> Iterator[ShopServer]:
    """`koppla up --demo` over HTTPS with a certificate for the shop and edge host names."""
    authority = trustme.CA()
    cert = authority.issue_cert(SHOP_HOST, EDGE_HOST, "127.0.0.1")
    cert_file, key_file, ca_file = (workdir / n for n in ("cert.pem", "key.pem", "ca.pem"))
    cert.cert_chain_pems[0].write_to_path(str(cert_file))
    cert.private_key_pem.write_to_path(str(key_file))
    authority.cert_pem.write_to_path(str(ca_file))
    port = free_port()
    koppla = Koppla(
        workdir / "home",
        port,
        "--tls-cert",
        str(cert_file),
        "--tls-key",
        str(key_file),
        scheme="https",
        verify=ssl.create_default_context(cafile=str(ca_file)),
    )
    previous = os.environ.get("KOPPLA_PUBLIC_EDGE_DOMAIN")
    os.environ["KOPPLA_PUBLIC_EDGE_DOMAIN"] = EDGE_HOST  # inherited by the child process
    try:
        koppla.start()
    finally:
        if previous is None:
            del os.environ["KOPPLA_PUBLIC_EDGE_DOMAIN"]
        else:
            os.environ["KOPPLA_PUBLIC_EDGE_DOMAIN"] = previous
    try:
        yield ShopServer(koppla, port, ca_file)
    finally:
        koppla.stop()


def chromium_args(port: int) -> list[str]:
    """Launch flags that work as root with no network, mapping both host names to `port`."""
    rules = f"MAP {EDGE_HOST} 127.0.0.1:{port}, MAP {SHOP_HOST} 127.0.0.1:{port}"
    return [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--host-resolver-rules={rules}",
        "--ignore-certificate-errors",
    ]


# The page keeps every finished event of the visit in sessionStorage (see shop.js).
_HISTORY = "() => JSON.parse(sessionStorage.getItem('koppla-demo-sent') || '[]')"
_SETTLED = "() => window.kopplaShop.settled()"


def _arrive(page: Any, url_glob: str) -> None:
    page.wait_for_url(url_glob)
    page.wait_for_function("() => window.kopplaShop !== undefined")
    page.evaluate(_SETTLED)


def visit(page: Any, shop_url: str, email: str) -> list[dict[str, Any]]:
    """Walk one shopper through the shop; returns what the page logged for each event sent.

    home → product page → add 2 duffle bags → cart → checkout → place order → sign in.
    """
    page.goto(shop_url)
    _arrive(page, "**/demo/shop/")
    page.click("a.product-link[data-sku='24-MB01']")
    _arrive(page, "**/demo/shop/product/24-MB01")
    page.fill("#qty", "2")
    page.click("#add-to-cart-button")
    _arrive(page, "**/demo/shop/cart")
    page.click("#checkout-button")
    _arrive(page, "**/demo/shop/checkout")
    page.fill("#email", email)
    page.click("#place-order-button")
    page.wait_for_selector("#order-confirmation:not([hidden])")
    page.click("#nav-signin")
    _arrive(page, "**/demo/shop/signin")
    page.fill("#signin-email", email)
    page.fill("#signin-password", "demo-password")
    page.click("#sign-in-button")
    page.wait_for_selector("#signed-in:not([hidden])")
    history: list[dict[str, Any]] = page.evaluate(_HISTORY)
    return history


def wait_for_rows(
    server: ShopServer, token: str, sql: str, count: int, timeout_s: float = 120
) -> list[dict[str, Any]]:
    """Poll `sql` until it returns at least `count` rows (or the timeout passes).

    Until the pipeline writes the dataset's first batch, its table does not exist and the query
    API answers 400; that is retried like too few rows.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            rows = server.query(sql, token)
        except httpx.HTTPStatusError as error:
            if error.response.status_code != 400 or time.monotonic() > deadline:
                raise
            rows = []
        if len(rows) >= count or time.monotonic() > deadline:
            return rows
        time.sleep(0.2)
