"""Backpressure: with the pipeline stopped, the edge answers 503 with `Retry-After` once the spool
holds `spool_max_backlog_bytes`, and everything it acknowledged is stored once the pipeline runs
again; then it accepts again."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from koppla.core.settings import Settings
from koppla.platform.catalog.models import Datastream
from koppla.platform.pipeline.runner import Pipeline
from koppla.web.services import Services
from tests.flow.test_edge_to_sql import alloy_sample, post

pytestmark = pytest.mark.anyio

BOUND = 40_000


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings.load(home=tmp_path / "home", spool_max_backlog_bytes=BOUND)


async def test_a_full_spool_refuses_with_retry_after_and_loses_nothing_acknowledged(
    client: httpx.AsyncClient, demo: Datastream, pipeline: Pipeline, services: Services
) -> None:
    body = alloy_sample()
    acknowledged, refused = 0, None
    for n in range(5000):
        body["events"][0]["xdm"]["_id"] = f"held-{n}"
        answer = await post(client, demo, body)
        if answer.status_code == 200:
            acknowledged += 1
            continue
        refused = answer
        break
    assert refused is not None, "the edge never held back"
    assert refused.status_code == 503 and refused.headers["retry-after"] == "5"
    assert "spool_max_backlog_bytes" in refused.text
    health = (await client.get("/api/v1/health")).json()
    assert health["backlogBytes"] >= BOUND and health["lagS"] >= 0

    pipeline.step()
    stored = services.query.run("SELECT count(*) FROM demo_events").rows[0][0]
    assert stored == acknowledged * len(body["events"])
    await asyncio.sleep(0.6)  # the edge measures the backlog at most twice a second
    body["events"][0]["xdm"]["_id"] = "after"
    assert (await post(client, demo, body)).status_code == 200
    health = (await client.get("/api/v1/health")).json()
    assert health["backlogBytes"] > 0 and health["lagS"] < 60
