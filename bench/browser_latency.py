"""Browser latency: from the Web SDK's send in a real browser to the event being queryable.

Starts `koppla up --demo` over TLS (temp home, free port), then walks `--visits` shoppers through
the demo shop in headless Chromium with the real `@adobe/alloy` bundle (the browser test's walk:
home, product, add to cart, cart, checkout, purchase, sign in; 12 events a visit). The page notes
`Date.now()` just before each `alloy("sendEvent")` and when the edge answered; a thread polls
the query API every `--poll-ms` for the visit's events and notes when each first shows up.
Prints, over all events: send → edge answer, and send → queryable (p50, p90, max, seconds).
Needs `npm ci` (node_modules/@adobe/alloy) and `/usr/bin/chromium`. Asserts nothing.

Run:  python bench/browser_latency.py [--visits 5] [--poll-ms 50]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests.browser.shop

import httpx
from playwright.sync_api import sync_playwright
from tests.browser.shop import (
    CHROMIUM,
    ShopServer,
    chromium_args,
    missing_requirement,
    shop_server,
    visit,
)

SQL = (
    "SELECT identityMap['ECID'][1].id AS ecid, eventType, web.webPageDetails.URL AS url "
    "FROM demo_events"
)
Key = tuple[str, str, str]


class Watcher(threading.Thread):
    """Polls the dataset and records when each (ECID, eventType, page URL) first appears."""

    def __init__(self, server: ShopServer, token: str, poll_s: float) -> None:
        super().__init__(daemon=True)
        self.server, self.token, self.poll_s = server, token, poll_s
        self.seen: dict[Key, float] = {}
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                rows = self.server.query(SQL, self.token)
            except httpx.HTTPStatusError:  # 400 until the dataset's first batch is written
                rows = []
            now = time.time()
            for row in rows:
                self.seen.setdefault((row["ecid"], row["eventType"], row["url"]), now)
            self.stop.wait(self.poll_s)


def percentile(values: list[float], share: float) -> float:
    """The nearest-rank percentile of `values`."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


def line(label: str, values: list[float]) -> str:
    """One printed figure line."""
    if not values:
        return f"{label}: no data"
    return (
        f"{label}: n={len(values)} p50={statistics.median(values):.3f}s "
        f"p90={percentile(values, 0.9):.3f}s max={max(values):.3f}s"
    )


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--visits", type=int, default=5)
    parser.add_argument("--poll-ms", type=int, default=50)
    args = parser.parse_args()
    reason = missing_requirement()
    if reason:
        sys.exit(reason)
    sent: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as work, shop_server(Path(work)) as server:
        watcher = Watcher(server, server.koppla.token(), args.poll_ms / 1000)
        watcher.start()
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=str(CHROMIUM), headless=True, args=chromium_args(server.port)
            )
            for number in range(args.visits):
                context = browser.new_context(ignore_https_errors=True)
                page = context.new_page()
                page.set_default_timeout(60_000)
                sent += visit(page, server.shop_url, f"shopper{number}@example.com")
                context.close()
            browser.close()
        deadline = time.monotonic() + 60
        keys = [(e["ecid"], e["eventType"], e["page"]) for e in sent]
        while time.monotonic() < deadline and not all(k in watcher.seen for k in keys):
            time.sleep(0.1)
        watcher.stop.set()
        watcher.join()
    answered = [(e["answeredAt"] - e["sentAt"]) / 1000 for e in sent if e["answeredAt"]]
    queryable = [
        watcher.seen[k] - e["sentAt"] / 1000
        for k, e in zip(keys, sent, strict=True)
        if k in watcher.seen
    ]
    print(f"visits={args.visits} events_sent={len(sent)} poll={args.poll_ms}ms")
    print(line("browser send -> edge answered", answered))
    print(line("browser send -> queryable     ", queryable))
    print(f"never queryable within 60 s: {len(sent) - len(queryable)}")


if __name__ == "__main__":
    main()
