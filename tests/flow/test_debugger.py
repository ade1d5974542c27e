"""The live debugger streams what the edge receives, each event with its validation result."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from koppla.core import codec
from koppla.platform.catalog.demo import DEMO_DATASTREAM_ID
from tests.server import Koppla, free_port

pytestmark = pytest.mark.slow


@pytest.fixture
def koppla(tmp_path: Path) -> Iterator[Koppla]:
    server = Koppla(tmp_path / "home", free_port())
    server.start()
    yield server
    server.stop()


def test_the_debugger_shows_each_event_with_its_validation(koppla: Koppla) -> None:
    token = koppla.token()
    seen: list[dict[str, Any]] = []
    ready, done = threading.Event(), threading.Event()

    def watch() -> None:
        url = f"{koppla.url}/api/v1/datastreams/{DEMO_DATASTREAM_ID}/debug"
        with httpx.stream(
            "GET", url, headers={"authorization": f"Bearer {token}"}, timeout=30
        ) as response:
            for line in response.iter_lines():
                if line.startswith(": watching"):
                    ready.set()
                if line.startswith("data: "):
                    seen.append(codec.loads(line[6:]))
                    if len(seen) == 2:
                        done.set()
                        return

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    assert ready.wait(10)
    good = {
        "eventType": "commerce.productViews",
        "timestamp": "2026-12-01T10:00:00Z",
        "productListItems": [{"SKU": "24-MB01", "quantity": 1}],
    }
    bad = {"eventType": "commerce.productViews", "productListItems": [{"quantity": "2"}]}
    response = httpx.post(
        f"{koppla.url}/ee/v1/interact?configId={DEMO_DATASTREAM_ID}",
        content=codec.dumps({"events": [{"xdm": good}, {"xdm": bad}]}),
    )
    assert response.status_code == 200
    assert done.wait(10), "the debugger did not show the events"
    first, second = seen
    assert (first["eventType"], first["valid"], first["outcome"]) == (
        "commerce.productViews",
        True,
        "spooled",
    )
    assert second["valid"] is False
    paths = {i["path"] for i in second["issues"]}
    assert {"timestamp", "productListItems[0].quantity"} <= paths
    assert first["ecid"] == second["ecid"]


def test_the_debugger_needs_a_token(koppla: Koppla) -> None:
    response = httpx.get(f"{koppla.url}/api/v1/datastreams/{DEMO_DATASTREAM_ID}/debug")
    assert response.status_code == 401
