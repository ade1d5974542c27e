"""`koppla up --demo` runs the demo shop: its orders arrive as back-office events by themselves."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.server import Koppla, free_port

pytestmark = pytest.mark.slow


@pytest.fixture
def koppla(tmp_path: Path) -> Iterator[Koppla]:
    server = Koppla(tmp_path / "home", free_port(), demo_shop=True)
    server.start()
    yield server
    server.stop()


def test_the_demo_shop_orders_land_as_back_office_events(koppla: Koppla) -> None:
    token = koppla.token()
    sql = (
        "SELECT eventType, count(*) FROM demo_events "
        "WHERE eventType LIKE 'commerce.backoffice%' GROUP BY 1"
    )
    counts: dict[str, int] = {}
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and not {
        "commerce.backofficeOrderPlaced",
        "commerce.backofficeOrderInvoiced",
    } <= set(counts):
        response = httpx.post(
            f"{koppla.url}/api/v1/query",
            json={"sql": sql},
            headers={"authorization": f"Bearer {token}"},
            timeout=30,
        )
        assert response.status_code == 200, response.text
        counts = {row[0]: row[1] for row in response.json()["rows"]}
        time.sleep(0.5)
    assert counts.get("commerce.backofficeOrderPlaced", 0) > 0
    assert counts.get("commerce.backofficeOrderInvoiced", 0) > 0
    quarantined = httpx.post(
        f"{koppla.url}/api/v1/query",
        json={"sql": "SELECT count(*) FROM quarantine"},
        headers={"authorization": f"Bearer {token}"},
        timeout=30,
    ).json()["rows"]
    assert quarantined == [[0]]
