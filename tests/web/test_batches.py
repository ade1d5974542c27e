"""Batches: status, counts and failed records, natively and in AEP Catalog shape."""

from __future__ import annotations

import httpx
import pytest

from koppla.core import codec
from koppla.platform.catalog.models import Datastream
from koppla.platform.pipeline.runner import Pipeline
from koppla.web.services import Services

pytestmark = pytest.mark.anyio


async def test_a_partly_failed_batch_shows_its_counts_and_failed_records(
    client: httpx.AsyncClient, demo: Datastream, pipeline: Pipeline, services: Services
) -> None:
    good = {"eventType": "web.webpagedetails.pageViews", "timestamp": "2026-12-01T10:00:00Z"}
    bad = {"eventType": "commerce.purchases", "timestamp": "yesterday"}
    body = {"events": [{"xdm": good}, {"xdm": bad}]}
    await client.post(f"/ee/v1/interact?configId={demo.id}", content=codec.dumps(body))
    pipeline.step()
    auth = {"authorization": f"Bearer {services.catalog.add_token('t')}"}

    (batch,) = (await client.get("/api/v1/batches", headers=auth)).json()
    assert (batch["status"], batch["records"], batch["failed_records"]) == ("success", 1, 1)

    failed = (await client.get(f"/api/v1/batches/{batch['id']}/failed", headers=auth)).json()
    (record,) = failed["records"]
    assert record["eventType"] == "commerce.purchases"
    assert record["record"]["timestamp"] == "yesterday"
    assert {(e["path"], e["code"]) for e in record["errors"]} == {
        ("timestamp", "format"),
        ("commerce.order.purchaseID", "required"),
    }

    aep = (await client.get(f"/data/foundation/catalog/batches/{batch['id']}", headers=auth)).json()
    shown = aep[batch["id"]]
    assert shown["metrics"] == {
        "recordsRead": 2,
        "recordsWritten": 1,
        "failedRecordCount": 1,
        "recordsSkipped": 0,
    }
    assert [(e["code"], e["recordCount"]) for e in shown["errors"]] == [("validation", 1)]
    assert f"/api/v1/batches/{batch['id']}/failed" in shown["errors"][0]["description"]
    assert shown["relatedObjects"] == [{"type": "dataSet", "id": demo.event_dataset_id}]
    datasets = (await client.get("/data/foundation/catalog/dataSets", headers=auth)).json()
    assert datasets[demo.event_dataset_id]["name"] == "demo_events"


async def test_an_unknown_batch_is_404(client: httpx.AsyncClient, services: Services) -> None:
    auth = {"authorization": f"Bearer {services.catalog.add_token('t')}"}
    for path in ("/api/v1/batches/abc/failed", "/data/foundation/catalog/batches/abc"):
        assert (await client.get(path, headers=auth)).status_code == 404
