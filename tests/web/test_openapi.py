"""The HTTP API's public surface is pinned: a path added or removed fails here first."""

from __future__ import annotations

import httpx
import pytest

from koppla.web.openapi import ROUTE_STATUSES

pytestmark = pytest.mark.anyio


PUBLIC_PATHS = {
    "/api/v1/connector/custom-attributes",
    "/data/foundation/schemaregistry/stats",
    "/data/foundation/schemaregistry/tenant/fieldgroups",
    "/data/foundation/schemaregistry/tenant/fieldgroups/{key}",
    "/data/foundation/schemaregistry/tenant/schemas",
    "/data/foundation/schemaregistry/tenant/schemas/{key}",
    "/data/foundation/schemaregistry/global/schemas",
    "/data/foundation/schemaregistry/global/schemas/{key}",
    "/api/v1/reports",
    "/api/v1/reports/{name}",
    "/data/foundation/query/queries",
    "/data/foundation/query/queries/{queryid}",
    "/data/foundation/query/queries/{queryid}/results",
    "/data/foundation/query/query-templates",
    "/data/foundation/query/query-templates/count",
    "/data/foundation/query/query-templates/{queryTemplateId}",
    "/data/foundation/export/files/{file_id}",
    "/data/foundation/export/datasets/{dataset_id}/preview",
    "/ims/token/v3",
    "/ims/token/v2",
    "/api/v1/overview",
    "/api/v1/connector/settings",
    "/api/v1/connector/settings/websites/{code}",
    "/api/v1/connector/service-account",
    "/api/v1/connector/service-account/test",
    "/api/v1/queries/saved",
    "/api/v1/queries/saved/{query_id}",
    "/api/v1/queries/history",
    "/ims/exchange/jwt",
    "/data/foundation/import/batches",
    "/data/foundation/import/batches/{batch_id}",
    "/data/foundation/import/batches/{batch_id}/datasets/{dataset_id}/files/{file_path}",
    "/data/foundation/export/batches/{batch_id}/files",
    "/data/foundation/export/batches/{batch_id}/failed",
    "/data/foundation/export/batches/{batch_id}/meta",
    "/api/v1/connector/history",
    "/api/v1/connector/history/{sync_id}",
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
    "/data/core/ups/access/entities",
    "/data/core/ups/config/mergePolicies",
    "/data/core/ups/config/mergePolicies/{mergePolicyId}",
    "/data/core/identity/cluster/members",
    "/data/core/identity/v2/graph",
    "/api/v1/profiles/guardrails",
    "/api/v1/profiles/{identity}",
    "/ee/v1/interact",
    "/ee/v1/collect",
    "/ee/v1/privacy/set-consent",
    "/ee/v1/identity/acquire",
    "/ee/{locationHint}/v1/interact",
    "/ee/{locationHint}/v1/collect",
    "/ee/{locationHint}/v1/privacy/set-consent",
    "/ee/{locationHint}/v1/identity/acquire",
    "/ee/v2/interact",
    "/ee/v2/collect",
}


async def test_the_openapi_document_lists_exactly_the_public_api(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    documented = set(response.json()["paths"])
    assert documented - {p for p in documented if p.startswith("/demo/")} == PUBLIC_PATHS


EDGE_STATUSES = {"400", "403", "404", "405", "413", "429", "503"}


async def test_the_edge_paths_are_documented_with_every_status_they_answer(
    client: httpx.AsyncClient,
) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    interact = paths["/ee/v1/interact"]["post"]
    assert set(interact["responses"]) == {"200"} | EDGE_STATUSES
    assert set(paths["/ee/v1/collect"]["post"]["responses"]) == {"204"} | EDGE_STATUSES
    assert set(interact["requestBody"]["content"]) == {"text/plain", "application/json"}
    config_id = next(p for p in interact["parameters"] if p["name"] == "configId")
    assert (config_id["in"], config_id["required"]) == ("query", True)
    assert interact["security"] == []
    problem = interact["responses"]["400"]["content"]["application/json"]["schema"]
    assert problem == {"$ref": "#/components/schemas/EdgeProblem"}


async def test_every_api_operation_documents_401_413_and_404_where_they_apply(
    client: httpx.AsyncClient,
) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    for path, operations in paths.items():
        if path.startswith("/ee/"):
            continue
        for method, operation in operations.items():
            responses = set(operation["responses"])
            where = f"{method.upper()} {path}"
            assert ("401" in responses) == (path != "/api/v1/health"), where
            assert method != "post" or "413" in responses, where
            assert "{" not in path or "404" in responses, where


async def test_the_route_specific_statuses_name_documented_operations(
    client: httpx.AsyncClient,
) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    for (method, path), statuses in ROUTE_STATUSES.items():
        responses = paths[path][method]["responses"]
        assert {str(s) for s in statuses} <= set(responses), f"{method} {path}"


@pytest.mark.parametrize("path", ["/api/v1/datasets", "/api/v1/datastreams", "/api/v1/query"])
async def test_a_path_served_by_two_routes_advertises_both_methods(
    client: httpx.AsyncClient, path: str
) -> None:
    answer = await client.options(path)
    assert answer.status_code == 405
    assert answer.headers["allow"] == "GET, POST"
