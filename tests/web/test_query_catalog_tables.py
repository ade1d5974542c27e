"""SQL sees the catalog's `datasets` and `batches` of the caller's organization only."""

from __future__ import annotations

import httpx
import pytest

from koppla.platform.catalog.models import Datastream
from koppla.web.services import Services

pytestmark = pytest.mark.anyio


async def _rows(client: httpx.AsyncClient, token: str, sql: str) -> list[list[object]]:
    auth = {"authorization": f"Bearer {token}"}
    response = await client.post("/api/v1/query", json={"sql": sql}, headers=auth)
    assert response.status_code == 200, response.text
    rows: list[list[object]] = response.json()["rows"]
    return rows


async def test_each_organization_sees_its_own_datasets_and_batches(
    client: httpx.AsyncClient, demo: Datastream, services: Services
) -> None:
    home = services.catalog.add_token("home")
    other = services.catalog.add_token("other", org_id="OTHERORG0000000000000000@AdobeOrg")
    other_auth = {"authorization": f"Bearer {other}"}
    made = await client.post("/api/v1/datasets", json={"name": "their_events"}, headers=other_auth)
    assert made.status_code == 201
    names = await _rows(client, home, "SELECT name FROM datasets ORDER BY name")
    assert ["demo_events"] in names and ["their_events"] not in names
    assert await _rows(client, other, "SELECT name FROM datasets") == [["their_events"]]
    assert await _rows(client, other, "SELECT count(*) FROM batches") == [[0]]
    columns = await _rows(client, home, "SELECT status, records FROM batches LIMIT 0")
    assert columns == []
