"""Every credentialed operation refuses a request without a valid token.

The operations come from `/openapi.json`, and every route the app serves must be in that
document, so a new route can neither escape this test nor hide from the document.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute, iter_route_contexts

from koppla.core.settings import Settings
from koppla.platform.catalog.demo import DEMO_DATASTREAM_ID
from koppla.platform.catalog.models import Datastream
from koppla.web.app import KopplaApp, create_app
from koppla.web.services import Services

pytestmark = pytest.mark.anyio

PUBLIC_PATHS = {"/api/v1/health"}
PUBLIC_PREFIXES = ("/ee/", "/demo/", "/ims/")
"""The edge, the demo shop, and the token endpoint (credentials travel in its body)."""
PLAUSIBLE = {
    "name": "funnel",
    "queryid": "00000000-0000-4000-8000-000000000000",
    "queryTemplateId": "00000000-0000-4000-8000-000000000000",
    "file_id": "0123456789abcdef01234567/data.json",
    "datastream_id": DEMO_DATASTREAM_ID,
    "connection_id": DEMO_DATASTREAM_ID,
    "key": "demo_events",
    "dataset_id": "0123456789abcdef01234567",
    "batch_id": "0123456789abcdef01234567",
    "mergePolicyId": "00000000-0000-4000-8000-000000000000",
    "identity": "email:ann@example.com",
    "file_path": "events.json",
    "sync_id": "0123456789abcdef",
    "query_id": "0123456789abcdef",
    "code": "base",
}
QUERY = {"sql": "SELECT 1"}
WRONG_CREDENTIALS: list[dict[str, str]] = [
    {},
    {"authorization": "Bearer kpl_not-a-token"},
    {"authorization": "Bearer "},
    {"authorization": "Basic YWRtaW46YWRtaW4="},
]

Operation = tuple[str, str, dict[str, Any]]


@pytest.fixture
async def app(settings: Settings, demo: Datastream) -> AsyncIterator[KopplaApp]:
    """The whole app over the test's home, started."""
    koppla = create_app(settings)
    async with koppla.api.router.lifespan_context(koppla.api):
        yield koppla


@pytest.fixture
async def http(app: KopplaApp) -> AsyncIterator[httpx.AsyncClient]:
    """A client for `app`."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as client:
        yield client


async def _operations(http: httpx.AsyncClient) -> list[Operation]:
    document = (await http.get("/openapi.json")).json()
    return [
        (method.upper(), path, operation)
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
    ]


def _is_public(path: str) -> bool:
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)


def _request(method: str, path: str, operation: dict[str, Any]) -> dict[str, Any]:
    """Arguments for `httpx.AsyncClient.request`: plausible path values, required query, body."""
    url = path.format(**PLAUSIBLE)
    query = {
        p["name"]: QUERY[p["name"]]
        for p in operation.get("parameters", [])
        if p["in"] == "query" and p.get("required")
    }
    body = {"json": {}} if "requestBody" in operation else {}
    return {"method": method, "url": url, "params": query, **body}


def _streams(operation: dict[str, Any]) -> bool:
    content = operation["responses"].get("200", {}).get("content", {})
    return "text/event-stream" in content


async def test_the_document_lists_credentialed_operations(http: httpx.AsyncClient) -> None:
    credentialed = [op for op in await _operations(http) if not _is_public(op[1])]
    assert len(credentialed) >= 20
    for method, path, operation in credentialed:
        assert operation["security"] == [{"bearer": []}], f"{method} {path}"
        assert "401" in operation["responses"], f"{method} {path}"


async def test_every_credentialed_operation_answers_401_without_a_valid_token(
    http: httpx.AsyncClient,
) -> None:
    refused: list[str] = []
    for method, path, operation in await _operations(http):
        if _is_public(path):
            continue
        for headers in WRONG_CREDENTIALS:
            response = await http.request(**_request(method, path, operation), headers=headers)
            if response.status_code != 401 or response.headers.get("www-authenticate") != "Bearer":
                refused.append(f"{method} {path} {headers}: {response.status_code}")
    assert refused == []


async def test_the_same_requests_with_a_valid_token_pass_the_gate(
    http: httpx.AsyncClient, services: Services
) -> None:
    auth = {"authorization": f"Bearer {services.catalog.add_token('test')}"}
    for method, path, operation in await _operations(http):
        if _is_public(path) or _streams(operation):
            continue
        response = await http.request(**_request(method, path, operation), headers=auth)
        assert response.status_code != 401, f"{method} {path}"


async def test_an_anonymous_request_changes_nothing(
    http: httpx.AsyncClient, services: Services
) -> None:
    refused = await http.post("/api/v1/datasets", json={"name": "sneaky"})
    assert refused.status_code == 401
    assert "sneaky" not in {d.name for d in services.catalog.datasets()}


async def test_every_route_the_app_serves_is_in_the_document(
    app: KopplaApp, http: httpx.AsyncClient
) -> None:
    documented = {(method, path) for method, path, _ in await _operations(http)}
    served = {
        (method, re.sub(r":\w+}", "}", str(context.path)))  # `{file_path:path}` is `{file_path}`
        for context in iter_route_contexts(app.api.routes)
        if isinstance(context.original_route, APIRoute)
        for method in context.methods or ()
    }
    assert served, "the app serves no API routes?"
    pages = ("/demo/", "/admin/")  # HTML pages: their JSON twins are the documented APIs
    assert {r for r in served if not r[1].startswith(pages)} <= documented
