"""Every API but the public edge needs a valid bearer token."""

from __future__ import annotations

import httpx
import pytest

from koppla.web.services import Services

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/datasets"),
        ("POST", "/api/v1/datasets"),
        ("GET", "/api/v1/datastreams"),
        ("GET", "/api/v1/batches"),
        ("POST", "/api/v1/query"),
        ("GET", "/api/v1/query?sql=select%201"),
    ],
)
async def test_apis_refuse_requests_without_a_valid_token(
    client: httpx.AsyncClient, method: str, path: str
) -> None:
    anonymous = await client.request(method, path, json={})
    forged = await client.request(method, path, json={}, headers={"authorization": "Bearer nope"})
    assert anonymous.status_code == 401
    assert forged.status_code == 401


async def test_health_needs_no_token(client: httpx.AsyncClient) -> None:
    assert (await client.get("/api/v1/health")).json()["status"] == "ok"


async def test_query_api_answers_json_and_refuses_writes(
    client: httpx.AsyncClient, services: Services
) -> None:
    auth = {"authorization": f"Bearer {services.catalog.add_token('t')}"}
    ok = await client.post("/api/v1/query", json={"sql": "SELECT 1 AS one"}, headers=auth)
    assert ok.status_code == 200
    assert ok.json()["rows"] == [[1]]
    for sql, needle in [
        ("INSERT INTO demo_events VALUES (1)", "INSERT"),
        ("COPY demo_events TO '/tmp/x.csv'", "COPY"),
        ("ATTACH '/tmp/x.db'", "ATTACH"),
        ("SELECT * FROM read_csv('/etc/passwd')", "file system access is disabled"),
    ]:
        refused = await client.post("/api/v1/query", json={"sql": sql}, headers=auth)
        assert refused.status_code == 400, sql
        assert needle in refused.json()["detail"]
