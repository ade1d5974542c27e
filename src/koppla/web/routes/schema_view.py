"""The Schema Registry API's shapes: resources as AEP documents, listings, `Accept` forms and
errors in AEP's form (`type`, `title`, `status`, `report`, `detail`)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from koppla.core import clock, ids
from koppla.platform.schemas.models import FieldGroup, TenantSchema, version_text
from koppla.xdm.json_schema import to_json_schema
from koppla.xdm.tenant import namespace, tenant_id
from koppla.xdm.types import Schema

Form = Literal["id", "xed", "full"]
_MEDIA = re.compile(
    r"application/vnd\.adobe\.xed(-id|-full|-notext|-full-notext|-full-desc)?\+json"
)
_TEXT_KEYS = ("title", "description")
_FIELD_GROUP_KEYS = ("definitions", "allOf", "properties")


class RegistryError(Exception):
    """An answer other than success, in AEP's error shape."""

    def __init__(
        self, status: int, title: str, detail: str, *, code: int, field: str | None = None
    ) -> None:
        super().__init__(detail)
        self.status, self.title, self.detail, self.code, self.field = (
            status,
            title,
            detail,
            code,
            field,
        )

    def body(self) -> dict[str, Any]:
        """The JSON body: AEP's fields, plus Koppla's `field` when one is named."""
        out: dict[str, Any] = {
            "type": f"http://ns.adobe.com/aep/errors/XDM-{self.code}-{self.status}",
            "title": self.title,
            "status": self.status,
            "report": {
                "registryRequestId": ids.new_uuid(),
                "timestamp": clock.iso(clock.now()),
                "detailed-message": self.detail,
                "sub-errors": [],
            },
            "detail": self.detail,
        }
        if self.field:
            out["field"] = self.field
        return out


@dataclass(frozen=True, slots=True)
class Accept:
    """What an `Accept` header asks for: ids only, the resource, or the full resource; and
    whether titles and descriptions are left out (`-notext`)."""

    form: Form
    text: bool = True


def accept(header: str | None, *, listing: bool) -> Accept:
    """The form an `Accept` header asks for; a missing, `*/*` or `application/json` header
    gets ids for a listing and the full resource for a lookup; `RegistryError` (400, as AEP
    answers) for another `application/vnd.adobe.*` form."""
    offered = [part.split(";")[0].strip().lower() for part in (header or "").split(",")]
    for media in offered:
        found = _MEDIA.fullmatch(media)
        if found is None:
            continue
        variant = found.group(1) or ""
        if variant == "-id":
            if not listing:
                break
            return Accept("id")
        form: Form = "full" if variant.startswith("-full") else "xed"
        return Accept(form, text="notext" not in variant)
    if not any(m.startswith("application/vnd.adobe.") for m in offered):
        return Accept("id") if listing else Accept("full")
    want = "application/vnd.adobe.xed-id+json" if listing else "application/vnd.adobe.xed+json"
    raise RegistryError(
        400,
        "Accept header invalid",
        f"The supplied Accept header is not valid: {header} - a valid Accept value looks like "
        f"{want}",
        code=1006 if listing else 1007,
    )


def summary(resource: FieldGroup | TenantSchema) -> dict[str, Any]:
    """A resource as a listing's `xed-id` entry."""
    return {
        "$id": resource.id,
        "meta:altId": resource.alt_id,
        "version": version_text(resource.version),
        "title": resource.title,
    }


def listing(results: list[dict[str, Any]]) -> dict[str, Any]:
    """A listing answer: the results, one page."""
    return {
        "results": results,
        "_page": {"orderby": "", "next": None, "count": len(results)},
        "_links": {},
    }


def field_group_document(group: FieldGroup, wanted: Accept = Accept("xed")) -> dict[str, Any]:
    """A field group in AEP's form (`xed` and `full` are the same: it inherits nothing)."""
    definition = dict(group.definition)
    document: dict[str, Any] = {
        "$id": group.id,
        "meta:altId": group.alt_id,
        "meta:resourceType": "mixins",
        "version": version_text(group.version),
        "title": group.title,
        "type": "object",
        "description": group.description,
        **{key: definition[key] for key in _FIELD_GROUP_KEYS if key in definition},
        "meta:intendedToExtend": list(group.intended_to_extend),
        **_tenant_meta(group.org_id, group.created_ms, group.updated_ms),
    }
    return document if wanted.text else without_text(document)


def schema_document(
    schema: TenantSchema, base: Schema, composed: Schema | None, wanted: Accept = Accept("xed")
) -> dict[str, Any]:
    """A tenant schema in AEP's form: with `allOf` references (`xed`), or with every field
    spelled out (`full`, from `composed`)."""
    refs = [schema.base, *schema.field_groups]
    document: dict[str, Any] = {
        "$id": schema.id,
        "meta:altId": schema.alt_id,
        "meta:resourceType": "schemas",
        "version": version_text(schema.version),
        "title": schema.title,
        "type": "object",
        "description": schema.description,
    }
    if wanted.form == "full" and composed is not None:
        full = to_json_schema(composed)
        document.update({k: v for k, v in full.items() if k not in ("$id", "title")})
    else:
        document["allOf"] = [
            {"$ref": ref, "type": "object", "meta:xdmType": "object"} for ref in refs
        ]
    document.update(
        {
            "refs": refs,
            "meta:class": base.xdm_class,
            "meta:extends": [base.xdm_class, *refs],
            "meta:extensible": False,
            "meta:abstract": False,
            **_tenant_meta(schema.org_id, schema.created_ms, schema.updated_ms),
        }
    )
    return document if wanted.text else without_text(document)


def global_document(schema: Schema, wanted: Accept = Accept("full")) -> dict[str, Any]:
    """A built-in schema in AEP's form (every field spelled out in both forms)."""
    document = {
        **to_json_schema(schema),
        "meta:altId": global_alt_id(schema.id),
        "meta:resourceType": "schemas",
        "version": "1.0",
        "meta:extends": [schema.xdm_class],
        "meta:containerId": "global",
        "meta:xdmType": "object",
    }
    return document if wanted.text else without_text(document)


def global_summary(schema: Schema) -> dict[str, Any]:
    """A built-in schema as a listing's `xed-id` entry."""
    return {
        "$id": schema.id,
        "meta:altId": global_alt_id(schema.id),
        "version": "1.0",
        "title": schema.title,
    }


def global_alt_id(schema_id: str) -> str:
    """The `meta:altId` of a built-in schema: `_` and its path, dotted
    (`https://ns.koppla.dev/xdm/commerce-experienceevent` → `_xdm.commerce-experienceevent`)."""
    path = schema_id.split("://", 1)[-1].split("/", 1)[-1]
    return "_" + path.replace("/", ".")


def without_text(node: Any) -> Any:
    """A JSON Schema document without `title` and `description` at any level (field names
    that happen to be `title` stay)."""
    if isinstance(node, list):
        return [without_text(item) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _TEXT_KEYS and isinstance(value, str):
            continue
        if key in ("properties", "definitions") and isinstance(value, dict):
            out[key] = {name: without_text(child) for name, child in value.items()}
        else:
            out[key] = without_text(value)
    return out


def _tenant_meta(org_id: str, created_ms: int, updated_ms: int) -> dict[str, Any]:
    return {
        "imsOrg": org_id,
        "meta:xdmType": "object",
        "meta:containerId": "tenant",
        "meta:tenantNamespace": namespace(tenant_id(org_id)),
        "meta:registryMetadata": {
            "repo:createdDate": created_ms,
            "repo:lastModifiedDate": updated_ms,
        },
    }
