"""Status: what is stored, what waits in the spool, what was refused or dropped."""

from __future__ import annotations

import httpx
import pytest

from koppla.core import codec
from koppla.platform.catalog.models import Datastream
from koppla.platform.pipeline.runner import Pipeline
from koppla.web.services import Services

pytestmark = pytest.mark.anyio


async def test_status_shows_the_backlog_until_the_pipeline_stores_it(
    client: httpx.AsyncClient, demo: Datastream, pipeline: Pipeline, services: Services
) -> None:
    auth = {"authorization": f"Bearer {services.catalog.add_token('t')}"}
    good = {"eventType": "web.webpagedetails.pageViews", "timestamp": "2026-12-01T10:00:00Z"}
    body = codec.dumps({"events": [{"xdm": good}, {"xdm": {"eventType": "x"}}]})
    await client.post(f"/ee/v1/interact?configId={demo.id}", content=body)

    before = (await client.get("/api/v1/status", headers=auth)).json()
    assert sum(s["backlogBytes"] for s in before["spool"]) > 0
    assert before["datasets"][0]["lastBatch"] is None

    pipeline.step()
    after = (await client.get("/api/v1/status", headers=auth)).json()
    assert sum(s["backlogBytes"] for s in after["spool"]) == 0
    (dataset,) = after["datasets"]
    assert (dataset["name"], dataset["rows"]) == ("demo_events", 1)
    assert dataset["lastBatch"]["status"] == "success"
    assert dataset["lastBatch"]["failedRecords"] == 1
    assert after["quarantinedRecords"] == 1
    assert (await client.get("/api/v1/status")).status_code == 401
