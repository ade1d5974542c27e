"""The HTTP API's public surface is pinned: a path added or removed fails here first."""

from __future__ import annotations

import httpx
import pytest

pytestmark = pytest.mark.anyio


PUBLIC_PATHS = {
    "/api/v1/health",
    "/api/v1/status",
    "/api/v1/query",
    "/api/v1/datasets",
    "/api/v1/datasets/{key}",
    "/api/v1/batches",
    "/api/v1/batches/{batch_id}",
    "/api/v1/batches/{batch_id}/failed",
    "/api/v1/datastreams",
    "/api/v1/datastreams/{datastream_id}/debug",
    "/api/v1/datastreams/{datastream_id}/stats",
    "/api/v1/datastreams/{datastream_id}/tag",
    "/collection/{connection_id}",
    "/collection/batch/{connection_id}",
    "/data/foundation/catalog/dataSets",
    "/data/foundation/catalog/dataSets/{dataset_id}",
    "/data/foundation/catalog/batches",
    "/data/foundation/catalog/batches/{batch_id}",
}


async def test_the_openapi_document_lists_exactly_the_public_api(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    documented = set(response.json()["paths"])
    assert documented - {p for p in documented if p.startswith("/demo/")} == PUBLIC_PATHS
