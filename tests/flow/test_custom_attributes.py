"""Custom order attributes from the wire to the Custom Order Attributes table, in process:
events streamed to the live dataset and a batch into the historical one, the table per dataset,
a field added through the schema registry API, a refused type change."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from koppla.core.layout import Layout
from koppla.core.settings import Settings
from koppla.platform.catalog.models import Datastream
from koppla.platform.catalog.store import Catalog
from koppla.platform.pipeline.runner import Pipeline
from koppla.platform.schemas.registry import home_registry
from koppla.web.services import Services
from koppla.xdm.experience_event import SCHEMA_ID
from koppla.xdm.tenant import namespace, tenant_id
from tests.web.test_batch_ingest import complete, create, ingest, lines, upload

pytestmark = pytest.mark.anyio

REGISTRY = "/data/foundation/schemaregistry"
ATTRIBUTES = "/api/v1/connector/custom-attributes"


@pytest.fixture
def home_pipeline(settings: Settings, catalog: Catalog) -> Iterator[Pipeline]:
    """A pipeline resolving schemas as `koppla up` does: through the home's registry."""
    registry = home_registry(Layout(settings.home))
    runner = Pipeline(Layout(settings.home), catalog, registry, flush_ms=10)
    yield runner
    runner.close()
    registry.close()


def order_event(n: int, tenant: str, order: dict[str, Any], item: dict[str, Any]) -> dict[str, Any]:
    return {
        "_id": f"order-{n}",
        "eventType": "commerce.backofficeOrderPlaced",
        "timestamp": f"2026-12-0{n}T10:00:00.000Z",
        "commerce": {"order": {"purchaseID": f"{1000 + n}", "priceTotal": 20.0, tenant: order}},
        "productListItems": [{"SKU": "watch", "quantity": 1, tenant: item}],
    }


def message(stream: Datastream, dataset: str, entity: dict[str, Any]) -> dict[str, Any]:
    ref = {"id": SCHEMA_ID, "contentType": "application/vnd.adobe.xed-full+json;version=1"}
    return {
        "header": {"schemaRef": ref, "imsOrgId": stream.org_id, "datasetId": dataset},
        "body": {"xdmMeta": {"schemaRef": ref}, "xdmEntity": entity},
    }


def field_group(tenant: str, order: dict[str, Any]) -> dict[str, Any]:
    own = {"type": "object", "properties": {tenant: {"type": "object", "properties": order}}}
    return {
        "title": "Shop attributes",
        "definitions": {
            "shop": {"properties": {"commerce": {"type": "object", "properties": {"order": own}}}}
        },
        "allOf": [{"$ref": "#/definitions/shop"}],
    }


def by_name(table: dict[str, Any], dataset: str) -> dict[str, dict[str, Any]]:
    rows = [r for r in table["attributes"] if r["datasetId"] == dataset]
    return {f"{r['level']}:{r['commerce'] or r['platform']}": r for r in rows}


async def test_attributes_show_per_dataset_and_match_once_the_schema_has_them(
    client: httpx.AsyncClient,
    demo: Datastream,
    home_pipeline: Pipeline,
    services: Services,
) -> None:
    auth = {"authorization": f"Bearer {services.catalog.add_token('shop')}"}
    tenant = namespace(tenant_id(demo.org_id))
    made = await client.post(
        f"{REGISTRY}/tenant/fieldgroups",
        json=field_group(tenant, {"giftWrap": {"type": "boolean"}}),
        headers=auth,
    )
    assert made.status_code == 201, made.text
    group = made.json()["$id"]
    body = {"title": "Shop events", "allOf": [{"$ref": SCHEMA_ID}, {"$ref": group}]}
    schema = await client.post(f"{REGISTRY}/tenant/schemas", json=body, headers=auth)
    assert schema.status_code == 201, schema.text
    ids = {}
    for name in ("shop_live", "shop_history"):
        created = await client.post(
            "/api/v1/datasets", json={"name": name, "schemaId": schema.json()["$id"]}, headers=auth
        )
        assert created.status_code == 201, created.text
        ids[name] = created.json()["id"]
    live, history = ids["shop_live"], ids["shop_history"]
    website = {
        "website_code": "base",
        "datastream_id": demo.id,
        "dataset_id": live,
        "history_copy_dataset_id": False,
        "history_dataset_id": history,
    }
    saved = await client.put(
        "/api/v1/connector/settings",
        json={"org_id": demo.org_id, "websites": [website]},
        headers=auth,
    )
    assert saved.status_code == 200, saved.text

    empty = (await client.get(ATTRIBUTES, headers=auth)).json()
    assert set(by_name(empty, live)) == {"order:giftWrap"}  # the schema's own field, unseen

    # live: streamed through the collection API, as the connector sends back-office events
    streamed = order_event(
        1, tenant, {"giftWrap": True, "deliveryNote": "door"}, {"engraving": "A"}
    )
    batch = {"messages": [message(demo, live, streamed)]}
    sent = await client.post(f"/collection/batch/{demo.id}", json=batch, headers=auth)
    assert sent.status_code == 207, sent.text
    home_pipeline.step()
    # historical: a batch, as the history sync sends it, with another spelling
    history_batch = await create(client, auth, history)
    rows = lines(order_event(2, tenant, {"gift_wrap": True}, {}))
    assert (await upload(client, auth, history_batch, "orders.json", rows)).status_code == 200
    assert (await complete(client, auth, history_batch["id"])).status_code == 200
    assert (await ingest(client, auth, home_pipeline, history_batch["id"]))["status"] == "success"

    table = (await client.get(ATTRIBUTES, headers=auth)).json()
    assert table["tenantId"] == tenant_id(demo.org_id)
    shown_live, shown_history = by_name(table, live), by_name(table, history)
    assert {k: r["match"] for k, r in shown_live.items()} == {
        "order:giftWrap": True,
        "order:deliveryNote": False,
        "item:engraving": False,
    }
    assert shown_live["order:giftWrap"]["commerceTypes"] == ["boolean"]
    assert shown_live["order:deliveryNote"]["platform"] is None
    assert {r["roles"][0] for r in shown_live.values()} == {"live"}
    assert {k: r["match"] for k, r in shown_history.items()} == {
        "order:gift_wrap": False,
        "order:giftWrap": False,  # in the schema, never sent to this dataset
    }
    assert {r["roles"][0] for r in shown_history.values()} == {"historical"}

    # the unknown attribute was kept with the record, and the known one stored typed
    stored = services.query.run(
        f"SELECT commerce.order.{tenant}.giftWrap AS gift, _koppla.unknown AS unknown "
        "FROM shop_live"
    ).rows
    assert stored[0][0] is True and "deliveryNote" in stored[0][1]

    # the platform gains deliveryNote: the next read shows the match
    path = f"/definitions/shop/properties/commerce/properties/order/properties/{tenant}/properties"
    added = await client.patch(
        f"{REGISTRY}/tenant/fieldgroups/{group}",
        json=[{"op": "add", "path": f"{path}/deliveryNote", "value": {"type": "string"}}],
        headers=auth,
    )
    assert added.status_code == 200, added.text
    after = by_name((await client.get(ATTRIBUTES, headers=auth)).json(), live)
    assert after["order:deliveryNote"]["match"] is True
    assert after["order:deliveryNote"]["platformType"] == "string"

    # a type change is refused, naming the field; the stored rows are as they were
    changed = await client.patch(
        f"{REGISTRY}/tenant/fieldgroups/{group}",
        json=[{"op": "replace", "path": f"{path}/giftWrap", "value": {"type": "string"}}],
        headers=auth,
    )
    assert changed.status_code == 400, changed.text
    assert "giftWrap" in changed.text
    again = services.query.run(f"SELECT commerce.order.{tenant}.giftWrap FROM shop_live").rows
    assert again == [(True,)]
    home_pipeline.step()
    second = order_event(3, tenant, {"giftWrap": False, "deliveryNote": "porch"}, {})
    sent = await client.post(
        f"/collection/batch/{demo.id}",
        json={"messages": [message(demo, live, second)]},
        headers=auth,
    )
    assert sent.status_code == 207, sent.text
    home_pipeline.step()
    typed = services.query.run(
        f"SELECT commerce.order.{tenant}.deliveryNote FROM shop_live WHERE _id = 'order-3'"
    ).rows
    assert typed == [("porch",)]
