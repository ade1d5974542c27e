"""`POST /api/v1/query` under load and over time: 503 with Retry-After, 400 past the limit."""

from __future__ import annotations

import asyncio
import functools
from pathlib import Path

import httpx
import pytest

from koppla.core.settings import Settings
from koppla.platform.query.engine import QueryEngine
from koppla.web import services as services_module
from koppla.web.services import Services

pytestmark = pytest.mark.anyio

LONG = "SELECT count(*) FROM range(100000000000)"


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """One query at a time, a 1.5 s time limit, and a 0.05 s wait for a slot."""
    quick = functools.partial(QueryEngine, slot_wait_s=0.05)
    monkeypatch.setattr(services_module, "QueryEngine", quick)
    return Settings.load(home=tmp_path / "home", query_max_concurrent=1, query_timeout_s=1.5)


async def test_a_query_over_the_time_limit_is_a_400_naming_the_limit(
    client: httpx.AsyncClient, services: Services
) -> None:
    auth = {"authorization": f"Bearer {services.catalog.add_token('t')}"}
    response = await client.post("/api/v1/query", json={"sql": LONG}, headers=auth)
    assert response.status_code == 400
    assert response.json()["detail"].startswith(
        "query stopped: it ran longer than the 1.5 s time limit (query_timeout_s)"
    )


async def test_a_query_finding_no_free_slot_is_a_503_with_retry_after(
    client: httpx.AsyncClient, services: Services
) -> None:
    auth = {"authorization": f"Bearer {services.catalog.add_token('t')}"}

    def run_long() -> asyncio.Task[httpx.Response]:
        return asyncio.create_task(client.post("/api/v1/query", json={"sql": LONG}, headers=auth))

    long = run_long()
    busy = None
    while busy is None:
        if long.done():  # it ended before a probe met it running, or a probe took the slot first
            assert (await long).status_code in (400, 503)
            long = run_long()
        response = await client.post("/api/v1/query", json={"sql": "SELECT 1"}, headers=auth)
        if response.status_code == 503:
            busy = response
        await asyncio.sleep(0.01)
    assert (await long).status_code == 400
    assert busy is not None
    assert busy.headers["retry-after"] == "1"
    assert busy.json()["detail"].startswith("too many queries at once: all 1 query slots")
    after = await client.post("/api/v1/query", json={"sql": "SELECT 1"}, headers=auth)
    assert after.json()["rows"] == [[1]]
