"""The schema registry's stored nouns: tenant field groups and tenant schemas, and their ids.

Ids follow AEP: `https://ns.adobe.com/<tenantId>/mixins/<32 hex>` for a field group and
`https://ns.adobe.com/<tenantId>/schemas/<32 hex>` for a schema, each with a dotted `meta:altId`
(`_<tenantId>.mixins.<hex>`). A lookup key may be the id, the URL-encoded id or the altId.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias
from urllib.parse import unquote

from koppla.core import ids

Kind: TypeAlias = Literal["mixins", "schemas"]
"""The id segment of a field group (`mixins`, AEP's former name) and of a schema."""

ID_PREFIX = "https://ns.adobe.com/"
_ID = re.compile(r"https://ns\.adobe\.com/([a-z][a-z0-9]{0,31})/(mixins|schemas)/([0-9a-f]{32})")
_ALT_ID = re.compile(r"_([a-z][a-z0-9]{0,31})\.(mixins|schemas)\.([0-9a-f]{32})")


def new_id(tenant: str, kind: Kind) -> str:
    """A new random id of a `kind` resource of `tenant`."""
    return f"{ID_PREFIX}{tenant}/{kind}/{ids.new_hex_id(16)}"


def alt_id(resource_id: str) -> str:
    """The `meta:altId` of a tenant resource id (`_<tenant>.<kind>.<hex>`)."""
    found = _ID.fullmatch(resource_id)
    if found is None:
        return resource_id
    tenant, kind, hex_id = found.groups()
    return f"_{tenant}.{kind}.{hex_id}"


def resolve_key(key: str, kind: Kind) -> str | None:
    """The id a lookup key names (the id, the URL-encoded id or the altId), or None when the
    key cannot name a `kind` resource."""
    for candidate in (key, unquote(key)):
        found = _ID.fullmatch(candidate) or _ALT_ID.fullmatch(candidate)
        if found is not None and found.group(2) == kind:
            tenant, _, hex_id = found.groups()
            return f"{ID_PREFIX}{tenant}/{kind}/{hex_id}"
    return None


def version_text(version: int) -> str:
    """A resource's version as AEP writes it: `1.0` when created, `1.1` after one change."""
    return f"1.{version - 1}"


@dataclass(frozen=True, slots=True)
class FieldGroup:
    """A tenant field group: fields (a JSON Schema fragment) a tenant schema adds to its base.

    `definition` holds the JSON Schema parts of the document as sent (`definitions`, `allOf`,
    `properties`, `meta:intendedToExtend`); `version` counts from 1 and grows on each change.
    """

    id: str
    org_id: str
    sandbox: str
    title: str
    description: str
    definition: Mapping[str, Any]
    version: int
    created_ms: int
    updated_ms: int

    @property
    def alt_id(self) -> str:
        """The `meta:altId`."""
        return alt_id(self.id)

    @property
    def intended_to_extend(self) -> tuple[str, ...]:
        """The class or schema ids this field group says it extends (may be empty)."""
        given = self.definition.get("meta:intendedToExtend")
        return tuple(str(v) for v in given) if isinstance(given, list) else ()


@dataclass(frozen=True, slots=True)
class TenantSchema:
    """A tenant schema: one built-in schema (its base) plus field groups, in order."""

    id: str
    org_id: str
    sandbox: str
    title: str
    description: str
    base: str
    field_groups: tuple[str, ...]
    version: int
    created_ms: int
    updated_ms: int

    @property
    def alt_id(self) -> str:
        """The `meta:altId`."""
        return alt_id(self.id)


@dataclass(frozen=True)
class Tenant:
    """Everything one organization keeps in one sandbox: what a change is checked against."""

    org_id: str
    sandbox: str
    field_groups: dict[str, FieldGroup] = field(default_factory=dict)
    schemas: dict[str, TenantSchema] = field(default_factory=dict)

    def users_of(self, field_group_id: str) -> list[TenantSchema]:
        """The schemas that include a field group."""
        return [s for s in self.schemas.values() if field_group_id in s.field_groups]
