"""The demo's tenant schema: the demo event dataset on a schema of its own that defines some of
the custom order attributes the demo shop's orders carry, so the Data Customization tab shows
matches and mismatches out of the box."""

from __future__ import annotations

from typing import Any

from koppla.core.errors import Conflict
from koppla.platform.catalog.models import Dataset
from koppla.platform.catalog.store import Catalog
from koppla.platform.schemas.registry import HomeRegistry
from koppla.platform.schemas.rules import field_group_check, schema_check
from koppla.xdm.experience_event import EXPERIENCE_EVENT_CLASS, SCHEMA_ID
from koppla.xdm.tenant import namespace, tenant_id

FIELD_GROUP_TITLE = "Koppla demo: custom order attributes"
SCHEMA_TITLE = "Koppla demo events"
ORDER_FIELDS = {
    "giftWrap": {"type": "boolean"},
    "deliveryDate": {"type": "string", "format": "date"},
    "giftMessage": {"type": "string"},
}
"""What the demo schema defines at order level (the demo shop also sends `method_title` and
`rushPriority`, which it lacks)."""
ITEM_FIELDS = {"engraving": {"type": "string"}}
"""What it defines at item level (the shop also sends `engravingFont`)."""


def field_group_document(org_id: str) -> dict[str, Any]:
    """The demo field group in AEP's shape."""
    own = namespace(tenant_id(org_id))

    def tenant(fields: dict[str, Any]) -> dict[str, Any]:
        return {"type": "object", "properties": {own: {"type": "object", "properties": fields}}}

    return {
        "meta:intendedToExtend": [EXPERIENCE_EVENT_CLASS],
        "definitions": {
            "customOrderAttributes": {
                "properties": {
                    "commerce": {"type": "object", "properties": {"order": tenant(ORDER_FIELDS)}},
                    "productListItems": {"type": "array", "items": tenant(ITEM_FIELDS)},
                }
            }
        },
        "allOf": [{"$ref": "#/definitions/customOrderAttributes"}],
    }


def ensure_demo_schema(catalog: Catalog, registry: HomeRegistry, dataset: Dataset) -> Dataset:
    """`dataset` (the demo event dataset) on the demo tenant schema: made on first use, and a
    demo dataset of an older Koppla still on the built-in schema is moved onto it (the tenant
    schema keeps every built-in field, so its stored rows stay as they are)."""
    if dataset.schema_id != SCHEMA_ID:
        return dataset
    store = registry.store
    org, sandbox = dataset.org_id, dataset.sandbox
    tenant = store.tenant(org, sandbox)
    group = next((g for g in tenant.field_groups.values() if g.title == FIELD_GROUP_TITLE), None)
    if group is None:
        try:
            group = store.create_field_group(
                org,
                sandbox,
                title=FIELD_GROUP_TITLE,
                description="Custom order attributes the demo shop's orders carry.",
                definition=field_group_document(org),
                check=field_group_check(registry.builtins),
            )
        except Conflict:  # made a moment ago by another process
            group = next(
                g
                for g in store.tenant(org, sandbox).field_groups.values()
                if g.title == FIELD_GROUP_TITLE
            )
    schema = next((s for s in tenant.schemas.values() if s.title == SCHEMA_TITLE), None)
    if schema is None:
        try:
            schema = store.create_schema(
                org,
                sandbox,
                title=SCHEMA_TITLE,
                description="Commerce events of the demo, with the demo's custom attributes.",
                base=SCHEMA_ID,
                field_groups=[group.id],
                check=schema_check(registry.builtins),
            )
        except Conflict:  # made a moment ago by another process
            schema = next(
                s for s in store.tenant(org, sandbox).schemas.values() if s.title == SCHEMA_TITLE
            )
    registry.refresh()
    return catalog.set_dataset_schema(dataset.id, schema.id)
