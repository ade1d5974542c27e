"""AEP streaming ingestion: authenticated, durable, validated downstream, idempotent by `_id`."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from koppla.core import codec
from koppla.platform.catalog.models import Datastream
from koppla.platform.pipeline.runner import Pipeline
from koppla.web.services import Services

pytestmark = pytest.mark.anyio

OTHER_ORG = "OTHER000000000000000000@AdobeOrg"
SCHEMA_REF = {
    "id": "https://ns.koppla.dev/xdm/commerce-experienceevent",
    "contentType": "application/vnd.adobe.xed-full+json;version=1",
}


def message(stream: Datastream, dataset_id: str, entity: dict[str, Any]) -> dict[str, Any]:
    return {
        "header": {
            "schemaRef": SCHEMA_REF,
            "imsOrgId": stream.org_id,
            "datasetId": dataset_id,
            "flowId": "f1",
            "source": {"name": "test"},
        },
        "body": {"xdmMeta": {"schemaRef": SCHEMA_REF}, "xdmEntity": entity},
    }


def order_placed(n: int) -> dict[str, Any]:
    return {
        "_id": f"order-placed-{n}",
        "eventType": "commerce.backofficeOrderPlaced",
        "timestamp": "2026-12-01T10:00:00Z",
        "commerce": {
            "order": {"purchaseID": f"00000{n}", "priceTotal": 10.5, "currencyCode": "USD"}
        },
        "identityMap": {"Email": [{"id": "a@example.com", "primary": True}]},
    }


async def test_batch_messages_land_once_and_bad_ones_are_quarantined(
    client: httpx.AsyncClient, demo: Datastream, services: Services, pipeline: Pipeline
) -> None:
    token = services.catalog.add_token("connector")
    dataset_id = services.catalog.dataset("demo_events").id
    bad = order_placed(3)
    bad["commerce"]["order"]["priceTotal"] = "ten"
    body = {
        "messages": [message(demo, dataset_id, order_placed(n)) for n in (1, 2)]
        + [message(demo, dataset_id, bad)]
    }
    for _ in range(2):  # a resend must not double anything
        response = await client.post(
            f"/collection/batch/{demo.id}", json=body, headers={"authorization": f"Bearer {token}"}
        )
        assert response.status_code == 207
        assert len(response.json()["responses"]) == 3
        pipeline.step()
    rows = services.query.run("SELECT commerce.order.purchaseID FROM demo_events ORDER BY 1").rows
    assert rows == [("000001",), ("000002",)]
    held = services.query.run("SELECT event_id, errors[1].path FROM quarantine").rows
    assert ("order-placed-3", "commerce.order.priceTotal") in held
    identity = services.query.run(
        "SELECT identityMap['Email'][1].id, identityMap['ECID'] FROM demo_events LIMIT 1"
    ).rows
    assert identity == [("a@example.com", None)]


async def test_streaming_needs_a_token(client: httpx.AsyncClient, demo: Datastream) -> None:
    response = await client.post(f"/collection/batch/{demo.id}", json={"messages": []})
    assert response.status_code == 401
    assert "Bearer" in response.json()["detail"]


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        ({"messages": []}, 400, "non-empty 'messages'"),
        ({"messages": [{"header": {}, "body": {}}]}, 400, "messages[0].header.datasetId"),
        (
            {
                "messages": [
                    {
                        "header": {
                            "datasetId": "x",
                            "imsOrgId": "OTHER000000000000000000@AdobeOrg",
                        },
                        "body": {"xdmEntity": {}},
                    }
                ]
            },
            403,
            "imsOrgId",
        ),
    ],
)
async def test_malformed_batches_are_refused_with_the_field_named(
    client: httpx.AsyncClient,
    demo: Datastream,
    services: Services,
    body: dict[str, Any],
    status: int,
    needle: str,
) -> None:
    token = services.catalog.add_token("t")
    response = await client.post(
        f"/collection/batch/{demo.id}", json=body, headers={"authorization": f"Bearer {token}"}
    )
    assert response.status_code == status
    assert needle in response.json()["detail"]


async def test_sync_validation_names_every_issue(
    client: httpx.AsyncClient, demo: Datastream, services: Services
) -> None:
    token = services.catalog.add_token("t")
    entity = order_placed(1)
    del entity["timestamp"]
    entity["commerce"]["order"]["currencyCode"] = "usd"
    response = await client.post(
        f"/collection/{demo.id}?syncValidation=true",
        json=message(demo, services.catalog.dataset("demo_events").id, entity),
        headers={"authorization": f"Bearer {token}"},
    )
    assert response.status_code == 400
    issues = {(i["path"], i["code"]) for i in response.json()["detail"]["issues"]}
    assert issues == {("timestamp", "required"), ("commerce.order.currencyCode", "pattern")}


def nested(levels: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(levels):
        value = {"a": value}
    return value


async def test_deeply_nested_messages_are_refused_before_anything_is_spooled(
    client: httpx.AsyncClient, demo: Datastream, services: Services, pipeline: Pipeline
) -> None:
    token = services.catalog.add_token("t")
    entity = {**order_placed(1), "custom": nested(40)}
    one = message(demo, services.catalog.dataset("demo_events").id, entity)
    auth = {"authorization": f"Bearer {token}"}
    for path, body in (
        (f"/collection/{demo.id}", one),
        (f"/collection/batch/{demo.id}", {"messages": [one]}),
    ):
        response = await client.post(path, content=codec.dumps(body), headers=auth)
        assert response.status_code == 400
        detail = response.json()["detail"]
        assert "deeper than 32 levels" in detail and "edge_max_depth" in detail
    assert pipeline.step() == 0


async def test_a_batch_of_more_messages_than_the_cap_is_refused_with_413(
    client: httpx.AsyncClient, demo: Datastream, services: Services
) -> None:
    token = services.catalog.add_token("t")
    entity = order_placed(1)
    body = {"messages": [message(demo, services.catalog.dataset("demo_events").id, entity)] * 1001}
    response = await client.post(
        f"/collection/batch/{demo.id}",
        content=codec.dumps(body),
        headers={"authorization": f"Bearer {token}"},
    )
    assert response.status_code == 413
    assert "1001 messages" in response.json()["detail"]
    assert "at most 1000" in response.json()["detail"]
