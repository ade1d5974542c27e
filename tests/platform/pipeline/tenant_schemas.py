"""Dataset schemas whose custom order attributes a test can grow.

`StoredTenantSchema` is a real tenant schema of the demo organization in the home's schema
store, read through the home's registry. `GrowingRegistry` stands in for that registry where
a test needs no store: after `grow`, `get` returns a new `Schema` object with the attributes
added at `commerce.order._kopplademo`, as the real registry does after a field group changed.
"""

from __future__ import annotations

from typing import Any

from koppla.core.layout import Layout
from koppla.platform.catalog.access import DEFAULT_SANDBOX
from koppla.platform.catalog.models import DEFAULT_ORG_ID
from koppla.platform.schemas.registry import HomeRegistry
from koppla.platform.schemas.rules import field_group_check, schema_check
from koppla.xdm.experience_event import commerce_experience_event
from koppla.xdm.profile import commerce_profile
from koppla.xdm.registry import SchemaRegistry
from koppla.xdm.types import BOOLEAN, DATE, NUMBER, STRING, Object, Scalar, Schema

NAMESPACE = "_kopplademo"
KINDS: dict[str, Scalar] = {"string": STRING, "boolean": BOOLEAN, "number": NUMBER, "date": DATE}


def with_order_attributes(schema: Schema, fields: dict[str, str]) -> Schema:
    """A new `Schema` object: `schema` plus `fields` (name → kind) in the order's namespace."""
    root = schema.root
    commerce = root.fields["commerce"]
    assert isinstance(commerce, Object)
    order = commerce.fields["order"]
    assert isinstance(order, Object)
    own = order.fields.get(NAMESPACE)
    have = dict(own.fields) if isinstance(own, Object) else {}
    have.update({name: KINDS[kind] for name, kind in fields.items()})
    order = _with(order, NAMESPACE, Object(have))
    commerce = _with(commerce, "order", order)
    return Schema(schema.id, schema.title, schema.xdm_class, _with(root, "commerce", commerce))


def _with(node: Object, name: str, child: Object) -> Object:
    return Object({**node.fields, name: child}, node.required, node.description)


class GrowingRegistry(SchemaRegistry):
    """The built-in schemas; `grow` replaces one with a grown copy (a new object)."""

    def __init__(self) -> None:
        super().__init__([commerce_experience_event(), commerce_profile()])

    def grow(self, schema_id: str, fields: dict[str, str]) -> Schema:
        """Add order attributes `fields` (name → kind) to the schema `schema_id`."""
        grown = with_order_attributes(self.get(schema_id), fields)
        self._schemas[schema_id] = grown
        return grown


def order_fields(fields: dict[str, str]) -> dict[str, Any]:
    """A field group definition adding `fields` (name → JSON type) at the order level."""
    own = {name: {"type": kind} for name, kind in fields.items()}
    order = {"type": "object", "properties": {NAMESPACE: {"type": "object", "properties": own}}}
    commerce = {"type": "object", "properties": {"order": order}}
    return {"properties": {"commerce": commerce}}


class StoredTenantSchema:
    """A tenant schema on the commerce ExperienceEvent with one field group of order
    attributes, stored in the home; `registry` reads the store on every lookup."""

    def __init__(self, layout: Layout, fields: dict[str, str]) -> None:
        self.registry = HomeRegistry(layout.schemas, check_every_s=0)
        check = field_group_check(self.registry.builtins)
        self._group = self.registry.store.create_field_group(
            DEFAULT_ORG_ID,
            DEFAULT_SANDBOX,
            title="Order extras",
            description="",
            definition=order_fields(fields),
            check=check,
        )
        self.id = self.registry.store.create_schema(
            DEFAULT_ORG_ID,
            DEFAULT_SANDBOX,
            title="Shop orders",
            description="",
            base=commerce_experience_event().id,
            field_groups=[self._group.id],
            check=schema_check(self.registry.builtins),
        ).id

    def grow(self, fields: dict[str, str]) -> None:
        """Make the field group's fields `fields` (name → JSON type; a superset of its own)."""
        self.registry.store.update_field_group(
            self._group.id,
            DEFAULT_ORG_ID,
            DEFAULT_SANDBOX,
            change=lambda group: (group.title, group.description, order_fields(fields)),
            check=field_group_check(self.registry.builtins),
        )

    def close(self) -> None:
        """Close the store's file."""
        self.registry.close()
