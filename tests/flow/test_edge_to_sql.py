"""One storefront event from the browser protocol to SQL, in process."""

from __future__ import annotations

import copy
from typing import Any

import httpx
import pytest

from koppla.core import codec
from koppla.platform.catalog.models import Datastream
from koppla.platform.edge import identity_cookie
from koppla.platform.pipeline.runner import Pipeline
from koppla.web.services import Services
from tests.reference import reference_dir

pytestmark = pytest.mark.anyio


def alloy_sample() -> dict[str, Any]:
    path = reference_dir() / "edge-captures" / "alloy-request-sample.json"
    body: dict[str, Any] = codec.loads(path.read_bytes())
    return body


async def post(
    client: httpx.AsyncClient, stream: Datastream, body: Any, **kw: Any
) -> httpx.Response:
    return await client.post(
        f"/ee/v1/interact?configId={stream.id}",
        content=codec.dumps(body) if not isinstance(body, bytes) else body,
        headers={"content-type": "text/plain; charset=UTF-8", "origin": "https://shop.test", **kw},
    )


async def test_the_captured_page_view_is_acknowledged_and_queryable(
    client: httpx.AsyncClient, demo: Datastream, pipeline: Pipeline, services: Services
) -> None:
    response = await post(client, demo, alloy_sample())
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "https://shop.test"
    assert response.headers["access-control-allow-credentials"] == "true"
    body = response.json()
    assert body["requestId"]
    stores = [h for h in body["handle"] if h["type"] == "state:store"]
    cookies = {c["key"]: c["value"] for h in stores for c in h["payload"]}
    name = identity_cookie.cookie_name(demo.org_id)
    ecid = identity_cookie.decode(cookies[name])
    assert ecid is not None and len(ecid) == 38

    assert pipeline.step() == 1
    result = services.query.run(
        "SELECT eventType, web.webPageDetails.name, identityMap['ECID'][1].id AS ecid "
        "FROM demo_events ORDER BY timestamp DESC"
    )
    assert result.rows == [("web.webpagedetails.pageViews", "home", ecid)]


async def test_the_identity_cookie_keeps_the_ecid_stable(
    client: httpx.AsyncClient, demo: Datastream
) -> None:
    first = (await post(client, demo, alloy_sample())).json()
    ecid = next(h for h in first["handle"] if h["type"] == "identity:result")["payload"][0]["id"]
    name = identity_cookie.cookie_name(demo.org_id)
    same_site = await post(
        client, demo, alloy_sample(), cookie=f"{name}={identity_cookie.encode(ecid)}"
    )
    cross_site_body = alloy_sample()
    cross_site_body["meta"]["state"]["entries"] = [
        {"key": name, "value": identity_cookie.encode(ecid)}
    ]
    cross_site = await post(client, demo, cross_site_body)
    for response in (same_site, cross_site):
        ids = [h for h in response.json()["handle"] if h["type"] == "identity:result"]
        assert ids[0]["payload"][0]["id"] == ecid


async def test_a_bad_event_is_quarantined_and_its_valid_neighbour_lands(
    client: httpx.AsyncClient, demo: Datastream, pipeline: Pipeline, services: Services
) -> None:
    body = alloy_sample()
    good = body["events"][0]
    bad = copy.deepcopy(good)
    del bad["xdm"]["timestamp"]
    bad["xdm"]["eventType"] = "commerce.productViews"
    bad["xdm"]["productListItems"] = [{"SKU": "24-MB01", "priceTotal": "34.00"}]
    body["events"] = [good, bad]
    assert (await post(client, demo, body)).status_code == 200
    pipeline.step()

    landed = services.query.run("SELECT eventType FROM demo_events")
    assert landed.rows == [("web.webpagedetails.pageViews",)]
    held = services.query.run("SELECT event_type, errors, dataset_id FROM quarantine")
    assert len(held.rows) == 1
    event_type, errors, dataset_id = held.rows[0]
    assert event_type == "commerce.productViews"
    assert dataset_id == services.catalog.dataset("demo_events").id
    found = {(e["path"], e["code"]) for e in errors}
    assert ("timestamp", "required") in found
    assert ("productListItems[0].priceTotal", "type") in found
    batch = services.catalog.batches()[0]
    assert (batch.records, batch.failed_records, batch.status) == (1, 1, "success")


async def test_posting_the_same_request_twice_stores_each_event_once(
    client: httpx.AsyncClient, demo: Datastream, pipeline: Pipeline, services: Services
) -> None:
    body = alloy_sample()
    body["events"].append(copy.deepcopy(body["events"][0]))
    body["events"][1]["xdm"]["eventType"] = "commerce.productViews"
    body["events"][1]["xdm"]["productListItems"] = [{"SKU": "24-MB01"}]
    for _ in range(2):
        assert (await post(client, demo, body)).status_code == 200
        pipeline.step()
    assert (await post(client, demo, body)).status_code == 200
    pipeline.step()
    result = services.query.run("SELECT eventType, count(*) FROM demo_events GROUP BY 1 ORDER BY 1")
    assert result.rows == [("commerce.productViews", 1), ("web.webpagedetails.pageViews", 1)]


@pytest.mark.parametrize(
    ("path", "body", "status", "needle"),
    [
        ("/ee/v1/interact?configId=nope", b'{"events":[{"xdm":{}}]}', 400, "does not exist"),
        ("/ee/v1/interact", b'{"events":[{"xdm":{}}]}', 400, "configId"),
        ("/ee/v1/interact?configId={id}", b"{not json", 400, "not valid JSON"),
        ("/ee/v1/interact?configId={id}", b'{"events": []}', 400, "non-empty 'events'"),
        ("/ee/v1/interact?configId={id}", b'{"events": [{"xdm": 3}]}', 400, "events[0].xdm"),
    ],
)
async def test_bad_requests_get_edge_errors(
    client: httpx.AsyncClient, demo: Datastream, path: str, body: bytes, status: int, needle: str
) -> None:
    response = await client.post(path.format(id=demo.id), content=body)
    assert response.status_code == status
    problem = response.json()
    assert problem["type"].startswith("https://ns.adobe.com/aep/errors/EXEG-")
    assert needle in problem["detail"]


async def test_a_disallowed_origin_is_refused(
    client: httpx.AsyncClient, demo: Datastream, services: Services
) -> None:
    stream = services.catalog.create_datastream(
        org_id=demo.org_id, event_dataset="demo_events", allowed_origins=("https://*.shop.test",)
    )
    ok = await post(client, stream, alloy_sample(), origin="https://www.shop.test")
    refused = await post(client, stream, alloy_sample(), origin="https://evil.test")
    assert ok.status_code == 200
    assert refused.status_code == 403
    assert "evil.test" in refused.json()["detail"]


async def test_set_consent_answers_with_the_consent_cookie(
    client: httpx.AsyncClient, demo: Datastream
) -> None:
    body = {"consent": [{"standard": "Adobe", "version": "1.0", "value": {"general": "in"}}]}
    response = await client.post(
        f"/ee/v1/privacy/set-consent?configId={demo.id}", content=codec.dumps(body)
    )
    assert response.status_code == 200
    cookies = {
        c["key"]: c["value"]
        for h in response.json()["handle"]
        if h["type"] == "state:store"
        for c in h["payload"]
    }
    assert cookies[identity_cookie.cookie_name(demo.org_id, "consent")] == "general=in"


async def test_location_hint_collect_acquire_and_server_paths(
    client: httpx.AsyncClient, demo: Datastream, pipeline: Pipeline, services: Services
) -> None:
    body = codec.dumps(alloy_sample())
    hinted = await client.post(f"/ee/local/v1/interact?configId={demo.id}", content=body)
    assert hinted.status_code == 200
    collect = await client.post(f"/ee/v1/collect?configId={demo.id}", content=body)
    assert collect.status_code == 204
    acquire = await client.post(f"/ee/local/v1/identity/acquire?configId={demo.id}", content=b"{}")
    assert any(h["type"] == "identity:result" for h in acquire.json()["handle"])
    server_event = {
        "event": {
            "xdm": {
                "eventType": "commerce.productViews",
                "timestamp": "2026-12-01T10:00:00Z",
                "productListItems": [{"SKU": "24-MB01"}],
            }
        }
    }
    server = await client.post(
        f"/ee/v2/interact?datastreamId={demo.id}", content=codec.dumps(server_event)
    )
    assert server.status_code == 200
    assert server.json()["handle"] == []
    pipeline.step()
    rows = services.query.run("SELECT eventType, count(*) FROM demo_events GROUP BY 1 ORDER BY 1")
    assert rows.rows == [("commerce.productViews", 1), ("web.webpagedetails.pageViews", 1)]


async def test_a_new_dataset_is_queryable_and_empty(
    client: httpx.AsyncClient, demo: Datastream, services: Services
) -> None:
    token = services.catalog.add_token("t")
    auth = {"authorization": f"Bearer {token}"}
    created = await client.post("/api/v1/datasets", json={"name": "empty_events"}, headers=auth)
    assert created.status_code == 201
    result = services.query.run("SELECT count(*) FROM empty_events")
    assert result.rows == [(0,)]
    assert services.query.run("SELECT count(*) FROM demo_events").rows == [(0,)]
