"""The Schema Registry API: field groups, tenant schemas, global schemas, datasets on them."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx
import pytest

from koppla.core.layout import Layout
from koppla.core.settings import Settings
from koppla.platform.catalog.models import Datastream
from koppla.platform.schemas.custom_fields import defined
from koppla.platform.schemas.registry import home_registry
from koppla.web.services import Services
from koppla.xdm.experience_event import SCHEMA_ID
from koppla.xdm.validation import validate

pytestmark = pytest.mark.anyio

BASE = "/data/foundation/schemaregistry"
OTHER_ORG = "ACME00000000000000000000@AdobeOrg"
NS = "_kopplademo"
ID_ONLY = {"accept": "application/vnd.adobe.xed-id+json"}
FULL = {"accept": "application/vnd.adobe.xed-full+json; version=1"}


def gift_group() -> dict[str, Any]:
    """An order-level flag and an item-level engraving, in AEP's field group form."""
    return {
        "type": "object",
        "title": "Custom order attributes",
        "description": "Gift wrapping and engravings.",
        "meta:intendedToExtend": ["https://ns.adobe.com/xdm/context/experienceevent"],
        "definitions": {
            "custom": {
                "properties": {
                    "commerce": {
                        "type": "object",
                        "properties": {
                            "order": {
                                "type": "object",
                                "properties": {
                                    NS: {
                                        "type": "object",
                                        "properties": {"giftWrap": {"type": "boolean"}},
                                    }
                                },
                            }
                        },
                    },
                    "productListItems": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {
                                NS: {
                                    "type": "object",
                                    "properties": {"engraving": {"type": "string"}},
                                }
                            },
                        },
                    },
                }
            }
        },
        "allOf": [{"$ref": "#/definitions/custom"}],
    }


@pytest.fixture
def auth(services: Services) -> dict[str, str]:
    return {"authorization": f"Bearer {services.catalog.add_token('schemas')}"}


@pytest.fixture
def other(services: Services) -> dict[str, str]:
    return {"authorization": f"Bearer {services.catalog.add_token('o', org_id=OTHER_ORG)}"}


async def make_schema(client: httpx.AsyncClient, auth: dict[str, str]) -> tuple[str, str]:
    """A field group and a schema that includes it (joined by PATCH); their ids."""
    made = await client.post(f"{BASE}/tenant/fieldgroups", json=gift_group(), headers=auth)
    assert made.status_code == 201, made.text
    group_id = made.json()["$id"]
    body = {"type": "object", "title": "Orders", "description": "", "allOf": [{"$ref": SCHEMA_ID}]}
    schema = await client.post(f"{BASE}/tenant/schemas", json=body, headers=auth)
    assert schema.status_code == 201, schema.text
    schema_id = schema.json()["$id"]
    joined = await client.patch(
        f"{BASE}/tenant/schemas/{quote(schema_id, safe='')}",
        json=[{"op": "add", "path": "/allOf/-", "value": {"$ref": group_id}}],
        headers=auth,
    )
    assert joined.status_code == 200, joined.text
    assert [r["$ref"] for r in joined.json()["allOf"]] == [SCHEMA_ID, group_id]
    return group_id, schema_id


async def test_a_field_group_joins_a_schema_and_the_composed_schema_types_its_fields(
    client: httpx.AsyncClient, demo: Datastream, auth: dict[str, str], settings: Settings
) -> None:
    group_id, schema_id = await make_schema(client, auth)
    assert group_id.startswith("https://ns.adobe.com/kopplademo/mixins/")
    full = await client.get(
        f"{BASE}/tenant/schemas/{quote(schema_id, safe='')}", headers={**auth, **FULL}
    )
    order = full.json()["properties"]["commerce"]["properties"]["order"]
    assert order["properties"][NS]["properties"]["giftWrap"] == {"type": "boolean"}
    registry = home_registry(Layout(settings.home))  # as the pipeline's process sees it
    try:
        schema = registry.get(schema_id)
        assert defined(schema, NS) == {
            "order": {"giftWrap": "boolean"},
            "item": {"engraving": "string"},
        }
        event = {
            "_id": "1",
            "timestamp": "2026-01-01T00:00:00.000Z",
            "commerce": {"order": {NS: {"giftWrap": "yes"}}},
            "productListItems": [{"SKU": "s", NS: {"engraving": 5}}],
        }
        paths = [i.path for i in validate(schema, event).issues]
        assert paths == [f"commerce.order.{NS}.giftWrap", f"productListItems[0].{NS}.engraving"]
    finally:
        registry.close()


async def test_lookups_take_the_id_the_encoded_id_and_the_alt_id(
    client: httpx.AsyncClient, demo: Datastream, auth: dict[str, str]
) -> None:
    group_id, schema_id = await make_schema(client, auth)
    alt = "_kopplademo.mixins." + group_id.rsplit("/", 1)[1]
    for key in (alt, quote(group_id, safe="")):
        found = await client.get(f"{BASE}/tenant/fieldgroups/{key}", headers=auth)
        assert found.status_code == 200 and found.json()["$id"] == group_id
        assert found.json()["meta:altId"] == alt
    listed = await client.get(f"{BASE}/tenant/schemas", headers={**auth, **ID_ONLY})
    assert [r["$id"] for r in listed.json()["results"]] == [schema_id]
    assert set(listed.json()["results"][0]) == {"$id", "meta:altId", "version", "title"}
    stats = (await client.get(f"{BASE}/stats", headers=auth)).json()
    assert stats["tenantId"] == "kopplademo"
    assert (stats["counts"]["schemas"], stats["counts"]["mixins"]) == (1, 1)


async def test_a_type_change_is_refused_naming_the_path_and_nothing_changes(
    client: httpx.AsyncClient, demo: Datastream, auth: dict[str, str]
) -> None:
    group_id, _ = await make_schema(client, auth)
    url = f"{BASE}/tenant/fieldgroups/{quote(group_id, safe='')}"
    before = (await client.get(url, headers=auth)).json()
    path = f"/definitions/custom/properties/productListItems/items/properties/{NS}/properties"
    refused = await client.patch(
        url,
        headers=auth,
        json=[{"op": "replace", "path": f"{path}/engraving", "value": {"type": "boolean"}}],
    )
    assert refused.status_code == 400
    body = refused.json()
    assert body["field"] == f"productListItems[].{NS}.engraving"
    assert "is string in the schema; a field's type cannot change" in body["detail"]
    assert body["status"] == 400 and body["type"].startswith("http://ns.adobe.com/aep/errors/")
    assert (await client.get(url, headers=auth)).json() == before
    added = await client.patch(
        url,
        headers=auth,
        json=[{"op": "add", "path": f"{path}/giftMessage", "value": {"type": "string"}}],
    )
    assert added.status_code == 200 and added.json()["version"] == "1.1"


async def test_a_field_outside_the_tenant_namespace_is_refused(
    client: httpx.AsyncClient, demo: Datastream, auth: dict[str, str]
) -> None:
    group = gift_group()
    order = group["definitions"]["custom"]["properties"]["commerce"]["properties"]["order"]
    order["properties"]["giftWrap"] = {"type": "boolean"}
    refused = await client.post(f"{BASE}/tenant/fieldgroups", json=group, headers=auth)
    assert refused.status_code == 400
    assert refused.json()["field"] == "commerce.order.giftWrap"
    assert "outside the tenant namespace" in refused.json()["detail"]
    listed = await client.get(f"{BASE}/tenant/fieldgroups", headers=auth)
    assert listed.json()["results"] == []


async def test_another_organization_can_neither_see_nor_use_the_field_group(
    client: httpx.AsyncClient, demo: Datastream, auth: dict[str, str], other: dict[str, str]
) -> None:
    group_id, schema_id = await make_schema(client, auth)
    key = quote(group_id, safe="")
    assert (await client.get(f"{BASE}/tenant/fieldgroups/{key}", headers=other)).status_code == 404
    listed = await client.get(f"{BASE}/tenant/fieldgroups", headers=other)
    assert listed.json()["results"] == []
    body = {"title": "Mine", "allOf": [{"$ref": SCHEMA_ID}, {"$ref": group_id}]}
    refused = await client.post(f"{BASE}/tenant/schemas", json=body, headers=other)
    assert refused.status_code == 400 and "no field group" in refused.json()["detail"]
    dataset = {"name": "acme_orders", "schemaId": schema_id}
    assert (await client.post("/api/v1/datasets", json=dataset, headers=other)).status_code == 400
    gone = await client.delete(f"{BASE}/tenant/fieldgroups/{key}", headers=other)
    assert gone.status_code == 404


async def test_a_field_group_in_use_cannot_be_deleted(
    client: httpx.AsyncClient, demo: Datastream, auth: dict[str, str]
) -> None:
    group_id, _ = await make_schema(client, auth)
    refused = await client.delete(
        f"{BASE}/tenant/fieldgroups/{quote(group_id, safe='')}", headers=auth
    )
    assert refused.status_code == 409 and "in use" in refused.json()["detail"]


async def test_a_schema_needs_exactly_one_built_in_base(
    client: httpx.AsyncClient, demo: Datastream, auth: dict[str, str]
) -> None:
    for all_of in (
        [],
        [{"$ref": "https://ns.example/nothing"}],
        [{"$ref": SCHEMA_ID}, {"$ref": "https://ns.koppla.dev/xdm/commerce-profile"}],
    ):
        body = {"title": "T", "allOf": all_of}
        refused = await client.post(f"{BASE}/tenant/schemas", json=body, headers=auth)
        assert refused.status_code == 400, all_of
        assert refused.json()["field"].startswith("allOf")


async def test_global_schemas_are_the_built_ins(
    client: httpx.AsyncClient, demo: Datastream, auth: dict[str, str]
) -> None:
    listed = await client.get(f"{BASE}/global/schemas", headers={**auth, **ID_ONLY})
    assert SCHEMA_ID in {r["$id"] for r in listed.json()["results"]}
    one = await client.get(f"{BASE}/global/schemas/{quote(SCHEMA_ID, safe='')}", headers=auth)
    assert one.status_code == 200 and "productListItems" in one.json()["properties"]
    bad = await client.get(
        f"{BASE}/global/schemas", headers={**auth, "accept": "application/vnd.adobe.xdm-nope+json"}
    )
    assert bad.status_code == 400 and bad.json()["title"] == "Accept header invalid"


async def test_a_dataset_is_made_on_a_tenant_schema_or_moved_onto_one(
    client: httpx.AsyncClient, demo: Datastream, auth: dict[str, str], services: Services
) -> None:
    _, schema_id = await make_schema(client, auth)
    made = await client.post(
        "/api/v1/datasets", headers=auth, json={"name": "custom_orders", "schemaId": schema_id}
    )
    assert made.status_code == 201 and made.json()["schema_id"] == schema_id
    by_ref = await client.post(
        "/api/v1/datasets",
        headers=auth,
        json={"name": "ref_orders", "schemaRef": {"id": schema_id}},
    )
    assert by_ref.status_code == 201 and by_ref.json()["schema_id"] == schema_id
    plain = await client.post("/api/v1/datasets", json={"name": "plain_orders"}, headers=auth)
    assert plain.status_code == 201
    moved = await client.patch(
        "/api/v1/datasets/plain_orders", headers=auth, json={"schemaRef": {"id": schema_id}}
    )
    assert moved.status_code == 200, moved.text
    assert services.catalog.dataset("plain_orders").schema_id == schema_id
    back = await client.patch(
        "/api/v1/datasets/plain_orders", headers=auth, json={"schemaId": SCHEMA_ID}
    )
    assert back.status_code == 400 and "does not keep the dataset's fields" in back.text
    profile = "https://ns.koppla.dev/xdm/commerce-profile"
    other_class = await client.patch(
        "/api/v1/datasets/custom_orders", headers=auth, json={"schemaId": profile}
    )
    assert other_class.status_code == 400
    assert services.catalog.dataset("custom_orders").schema_id == schema_id


async def test_a_patch_of_something_koppla_does_not_keep_is_refused(
    client: httpx.AsyncClient, demo: Datastream, auth: dict[str, str]
) -> None:
    group_id, schema_id = await make_schema(client, auth)
    tags = [{"op": "add", "path": "/meta:immutableTags", "value": ["union"]}]
    refused = await client.patch(
        f"{BASE}/tenant/schemas/{quote(schema_id, safe='')}", json=tags, headers=auth
    )
    assert refused.status_code == 400 and "meta:immutableTags" in refused.text
    shown = await client.get(f"{BASE}/tenant/schemas/{quote(schema_id, safe='')}", headers=auth)
    assert shown.json()["version"] == "1.1"  # made, then joined by its field group: no more
    retitled = await client.patch(
        f"{BASE}/tenant/fieldgroups/{quote(group_id, safe='')}",
        json=[{"op": "replace", "path": "/title", "value": "Gift options"}],
        headers=auth,
    )
    assert retitled.status_code == 200 and retitled.json()["title"] == "Gift options"


async def test_a_schema_is_rewritten_with_put_and_deleted_only_when_no_dataset_follows_it(
    client: httpx.AsyncClient, demo: Datastream, auth: dict[str, str]
) -> None:
    group_id, schema_id = await make_schema(client, auth)
    url = f"{BASE}/tenant/schemas/{quote(schema_id, safe='')}"
    body = {"title": "Orders, renamed", "allOf": [{"$ref": SCHEMA_ID}, {"$ref": group_id}]}
    put = await client.put(url, json=body, headers=auth)
    assert put.status_code == 200, put.text
    assert put.json()["title"] == "Orders, renamed" and put.json()["version"] == "1.2"
    dropped = await client.put(
        url, json={"title": "x", "allOf": [{"$ref": SCHEMA_ID}]}, headers=auth
    )
    assert dropped.status_code == 400  # it would lose the field group's fields
    profile = "https://ns.koppla.dev/xdm/commerce-profile"
    rebased = await client.put(url, json={"title": "x", "allOf": [{"$ref": profile}]}, headers=auth)
    assert rebased.status_code == 400 and "base cannot change" in rebased.text
    made = await client.post(
        "/api/v1/datasets", headers=auth, json={"name": "kept_orders", "schemaId": schema_id}
    )
    assert made.status_code == 201
    in_use = await client.delete(url, headers=auth)
    assert in_use.status_code == 409 and "in use" in in_use.text
    spare = await client.post(
        f"{BASE}/tenant/schemas",
        json={"title": "Spare", "allOf": [{"$ref": SCHEMA_ID}]},
        headers=auth,
    )
    spare_url = f"{BASE}/tenant/schemas/{quote(spare.json()['$id'], safe='')}"
    assert (await client.delete(spare_url, headers=auth)).status_code == 204
    assert (await client.get(spare_url, headers=auth)).status_code == 404
    assert (await client.get(url, headers=auth)).status_code == 200
