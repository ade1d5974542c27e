"""The Schema Registry API in Adobe's shape (`/data/foundation/schemaregistry`).

An organization keeps its own field groups and schemas (the `tenant` container) per sandbox;
Koppla's built-in schemas form the `global` container. A tenant schema is one built-in schema
(its base) plus field groups, and only ever grows: a field keeps its type, new fields live in
the tenant namespace (`_<tenantId>`), and a field group joins a schema by a JSON Patch `add`
of `{"$ref": <field group id>}` to `/allOf/-`. Resource ids in paths may be the `$id`, the
URL-encoded `$id` or the `meta:altId`. Errors answer in AEP's shape (`type`, `title`,
`status`, `report`, `detail`, plus `field` naming the field path of a refusal). See
`docs/schema-registry.md`.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping
from functools import partial
from typing import Any
from urllib.parse import unquote

import anyio.to_thread
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

from koppla.core import codec
from koppla.core.errors import Conflict, InvalidInput, NotFound
from koppla.platform.catalog.access import Principal
from koppla.platform.schemas.models import FieldGroup, TenantSchema, resolve_key
from koppla.platform.schemas.patch import apply_patch
from koppla.platform.schemas.registry import HomeRegistry
from koppla.platform.schemas.rules import field_group_check, schema_check
from koppla.web.auth import Caller, Svc
from koppla.web.routes.schema_view import (
    Accept,
    RegistryError,
    accept,
    field_group_document,
    global_alt_id,
    global_document,
    global_summary,
    listing,
    schema_document,
    summary,
)
from koppla.web.services import Services
from koppla.xdm.tenant import tenant_id
from koppla.xdm.types import Schema


class _AepErrors(APIRoute):
    """Routes whose refusals answer in AEP's error shape."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def answer(request: Request) -> Response:
            try:
                return await handler(request)
            except RegistryError as error:
                return JSONResponse(error.body(), status_code=error.status)
            except NotFound as error:
                return _error(RegistryError(404, "Resource Not Found", str(error), code=1012))
            except Conflict as error:
                return _error(RegistryError(409, "Conflict", str(error), code=1013))
            except InvalidInput as error:
                refusal = RegistryError(
                    400, "Bad Request", str(error), code=1521, field=error.field
                )
                return _error(refusal)

        return answer


def _error(error: RegistryError) -> JSONResponse:
    return JSONResponse(error.body(), status_code=error.status)


router = APIRouter(
    prefix="/data/foundation/schemaregistry", tags=["schema registry"], route_class=_AepErrors
)

_REFUSALS: dict[int | str, dict[str, Any]] = {
    400: {"description": "Malformed, or a change the rules refuse; `field` names the path."},
    409: {"description": "A title already taken, or a field group still in use."},
}
_JSON_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {"type": "object"}}},
    }
}
_PATCH_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {"type": "array", "items": {"type": "object"}}}},
    }
}
_FIELD_GROUP_KEYS = ("definitions", "allOf", "properties", "meta:intendedToExtend")


def _only_kept_keys_changed(
    before: dict[str, Any], after: dict[str, Any], kept: tuple[str, ...]
) -> None:
    """`InvalidInput` naming the first top-level key a patch changed that Koppla does not keep
    (`meta:immutableTags`, say): an answer of 200 would claim a change that was not made."""
    for key in sorted(set(before) | set(after)):
        if key not in kept and before.get(key) != after.get(key):
            raise InvalidInput(
                f"/{key} cannot be changed here; a patch may change {', '.join(kept)}",
                field=key,
            )


def registry_of(svc: Services) -> HomeRegistry:
    """The home's registry (the tenant store lives behind it)."""
    return svc.registry


@router.get("/stats")
def stats(svc: Svc, caller: Caller) -> dict[str, Any]:
    """The caller's tenant id and what its organization keeps in this sandbox."""
    registry = registry_of(svc)
    tenant = registry.store.tenant(caller.org_id, caller.sandbox)
    resources: list[FieldGroup | TenantSchema] = [
        *tenant.field_groups.values(),
        *tenant.schemas.values(),
    ]

    def recent(key: Callable[[FieldGroup | TenantSchema], int]) -> list[dict[str, Any]]:
        newest = sorted(resources, key=key, reverse=True)[:5]
        return [{**summary(r), "meta:resourceType": _kind(r)} for r in newest]

    usage: dict[str, list[TenantSchema]] = {}
    for schema in tenant.schemas.values():
        usage.setdefault(registry.builtins.get(schema.base).xdm_class, []).append(schema)
    return {
        "imsOrg": caller.org_id,
        "tenantId": tenant_id(caller.org_id),
        "counts": {
            "schemas": len(tenant.schemas),
            "mixins": len(tenant.field_groups),
            "datatypes": 0,
            "classes": 0,
            "unions": 0,
        },
        "recentlyCreatedResources": recent(lambda r: r.created_ms),
        "recentlyUpdatedResources": recent(lambda r: r.updated_ms),
        "classUsage": [
            {
                "$id": xdm_class,
                "numberOfSchemas": len(found),
                "schemas": [
                    {
                        "$id": s.id,
                        "title": s.title,
                        "description": s.description,
                        "meta:altId": s.alt_id,
                    }
                    for s in found
                ],
            }
            for xdm_class, found in usage.items()
        ],
    }


@router.get("/tenant/fieldgroups")
def list_field_groups(request: Request, svc: Svc, caller: Caller) -> dict[str, Any]:
    """The organization's field groups in this sandbox (`Accept`: ids or documents)."""
    wanted = accept(request.headers.get("accept"), listing=True)
    groups = registry_of(svc).store.tenant(caller.org_id, caller.sandbox).field_groups.values()
    if wanted.form == "id":
        return listing([summary(g) for g in groups])
    return listing([field_group_document(g, wanted) for g in groups])


@router.post("/tenant/fieldgroups", status_code=201, responses=_REFUSALS, openapi_extra=_JSON_BODY)
async def create_field_group(request: Request, svc: Svc, caller: Caller) -> dict[str, Any]:
    """Create a field group; its fields must lie in the tenant namespace."""
    body = _object(await request.body())
    title, description, definition = _field_group_parts(body)
    registry = registry_of(svc)
    made = await anyio.to_thread.run_sync(
        partial(
            registry.store.create_field_group,
            caller.org_id,
            caller.sandbox,
            title=title,
            description=description,
            definition=definition,
            check=field_group_check(registry.builtins),
        )
    )
    return field_group_document(made)


@router.get("/tenant/fieldgroups/{key:path}")
def get_field_group(key: str, request: Request, svc: Svc, caller: Caller) -> dict[str, Any]:
    """One field group of the organization."""
    wanted = accept(request.headers.get("accept"), listing=False)
    found = registry_of(svc).store.field_group(key, caller.org_id, caller.sandbox)
    return field_group_document(found, wanted)


@router.put("/tenant/fieldgroups/{key:path}", responses=_REFUSALS, openapi_extra=_JSON_BODY)
async def replace_field_group(
    key: str, request: Request, svc: Svc, caller: Caller
) -> dict[str, Any]:
    """Rewrite a field group; it must keep every field it had, with its type."""
    body = _object(await request.body())  # read now, checked once the field group is found
    return await _change_field_group(svc, caller, key, lambda _: _field_group_parts(body))


@router.patch("/tenant/fieldgroups/{key:path}", responses=_REFUSALS, openapi_extra=_PATCH_BODY)
async def patch_field_group(key: str, request: Request, svc: Svc, caller: Caller) -> dict[str, Any]:
    """Change a field group with JSON Patch operations (add fields, replace the title)."""
    operations = _json(await request.body())

    def change(current: FieldGroup) -> tuple[str, str, dict[str, Any]]:
        before = field_group_document(current)
        patched = _must_be_object(apply_patch(before, operations))
        _only_kept_keys_changed(before, patched, (*_FIELD_GROUP_KEYS, "title", "description"))
        return _field_group_parts(patched)

    return await _change_field_group(svc, caller, key, change)


@router.delete("/tenant/fieldgroups/{key:path}", status_code=204, responses=_REFUSALS)
async def delete_field_group(key: str, svc: Svc, caller: Caller) -> Response:
    """Delete a field group no schema includes."""
    store = registry_of(svc).store
    await anyio.to_thread.run_sync(store.delete_field_group, key, caller.org_id, caller.sandbox)
    return Response(status_code=204)


@router.get("/tenant/schemas")
def list_schemas(request: Request, svc: Svc, caller: Caller) -> dict[str, Any]:
    """The organization's schemas in this sandbox (`Accept`: ids or documents)."""
    wanted = accept(request.headers.get("accept"), listing=True)
    registry = registry_of(svc)
    schemas = registry.store.tenant(caller.org_id, caller.sandbox).schemas.values()
    if wanted.form == "id":
        return listing([summary(s) for s in schemas])
    return listing([_schema_document(registry, s, wanted) for s in schemas])


@router.post("/tenant/schemas", status_code=201, responses=_REFUSALS, openapi_extra=_JSON_BODY)
async def create_schema(request: Request, svc: Svc, caller: Caller) -> dict[str, Any]:
    """Create a schema: `allOf` names one built-in schema (the base) and field groups."""
    body = _object(await request.body())
    registry = registry_of(svc)
    base, groups = _all_of(registry, body.get("allOf"))
    if base is None:
        raise InvalidInput("allOf must name exactly one built-in schema (the base)", field="allOf")
    made = await anyio.to_thread.run_sync(
        partial(
            registry.store.create_schema,
            caller.org_id,
            caller.sandbox,
            title=_text(body, "title"),
            description=_text(body, "description", ""),
            base=base,
            field_groups=groups,
            check=schema_check(registry.builtins),
        )
    )
    return _schema_document(registry, made, Accept("xed"))


@router.get("/tenant/schemas/{key:path}")
def get_schema(key: str, request: Request, svc: Svc, caller: Caller) -> dict[str, Any]:
    """One schema of the organization (`Accept`: `xed` with references, `xed-full` with
    every field)."""
    wanted = accept(request.headers.get("accept"), listing=False)
    registry = registry_of(svc)
    found = registry.store.schema(key, caller.org_id, caller.sandbox)
    return _schema_document(registry, found, wanted)


@router.put("/tenant/schemas/{key:path}", responses=_REFUSALS, openapi_extra=_JSON_BODY)
async def put_schema(key: str, request: Request, svc: Svc, caller: Caller) -> dict[str, Any]:
    """Rewrite a schema (title, description, `allOf`): its base stays, and it keeps every
    field it had."""
    body = _object(await request.body())  # read now, checked once the schema is found
    registry = registry_of(svc)

    def change(current: TenantSchema) -> tuple[str, str, list[str]]:
        return _schema_parts(registry, current, body)

    return await _change_schema(registry, caller, key, change)


@router.delete("/tenant/schemas/{key:path}", status_code=204, responses=_REFUSALS)
async def delete_schema(key: str, svc: Svc, caller: Caller) -> Response:
    """Delete a schema no dataset follows."""

    def in_use(schema_id: str) -> bool:
        return any(d.schema_id == schema_id for d in svc.catalog.datasets(caller.org_id))

    store = registry_of(svc).store
    await anyio.to_thread.run_sync(
        partial(store.delete_schema, key, caller.org_id, caller.sandbox, in_use=in_use)
    )
    registry_of(svc).refresh()
    return Response(status_code=204)


@router.patch("/tenant/schemas/{key:path}", responses=_REFUSALS, openapi_extra=_PATCH_BODY)
async def patch_schema(key: str, request: Request, svc: Svc, caller: Caller) -> dict[str, Any]:
    """Change a schema with JSON Patch: add a field group (`add` `{"$ref": id}` to
    `/allOf/-`), replace the title or description. Its base cannot change."""
    operations = _json(await request.body())
    registry = registry_of(svc)

    def change(current: TenantSchema) -> tuple[str, str, list[str]]:
        base = registry.builtins.get(current.base)
        before = schema_document(current, base, None, Accept("xed"))
        patched = _must_be_object(apply_patch(before, operations))
        _only_kept_keys_changed(before, patched, ("title", "description", "allOf"))
        return _schema_parts(registry, current, patched)

    return await _change_schema(registry, caller, key, change)


def _schema_parts(
    registry: HomeRegistry, current: TenantSchema, document: dict[str, Any]
) -> tuple[str, str, list[str]]:
    """A schema document's title, description and field groups; its base must stay."""
    new_base, groups = _all_of(registry, document.get("allOf"))
    if new_base != current.base:
        raise InvalidInput(
            f"a schema's base cannot change: allOf must keep {current.base}", field="allOf"
        )
    return _text(document, "title"), _text(document, "description", ""), groups


async def _change_schema(
    registry: HomeRegistry,
    caller: Principal,
    key: str,
    change: Callable[[TenantSchema], tuple[str, str, list[str]]],
) -> dict[str, Any]:
    changed = await anyio.to_thread.run_sync(
        partial(
            registry.store.update_schema,
            key,
            caller.org_id,
            caller.sandbox,
            change=change,
            check=schema_check(registry.builtins),
        )
    )
    registry.refresh()
    return _schema_document(registry, changed, Accept("xed"))


@router.get("/global/schemas")
def list_global_schemas(request: Request, svc: Svc, caller: Caller) -> dict[str, Any]:
    """Koppla's built-in schemas (`Accept`: ids or documents)."""
    del caller  # any caller may read them
    wanted = accept(request.headers.get("accept"), listing=True)
    schemas = [registry_of(svc).builtins.get(i) for i in registry_of(svc).builtins.ids()]
    if wanted.form == "id":
        return listing([global_summary(s) for s in schemas])
    return listing([global_document(s, wanted) for s in schemas])


@router.get("/global/schemas/{key:path}")
def get_global_schema(key: str, request: Request, svc: Svc, caller: Caller) -> dict[str, Any]:
    """One built-in schema, every field spelled out (JSON Schema)."""
    del caller
    wanted = accept(request.headers.get("accept"), listing=False)
    return global_document(_builtin(registry_of(svc), key), wanted)


async def _change_field_group(
    svc: Services,
    caller: Principal,
    key: str,
    change: Callable[[FieldGroup], tuple[str, str, dict[str, Any]]],
) -> dict[str, Any]:
    registry = registry_of(svc)
    changed = await anyio.to_thread.run_sync(
        partial(
            registry.store.update_field_group,
            key,
            caller.org_id,
            caller.sandbox,
            change=change,
            check=field_group_check(registry.builtins),
        )
    )
    registry.refresh()
    return field_group_document(changed)


def _schema_document(
    registry: HomeRegistry, schema: TenantSchema, wanted: Accept
) -> dict[str, Any]:
    base = registry.builtins.get(schema.base)
    composed: Schema | None = None
    if wanted.form == "full":
        registry.refresh()
        composed = registry.get(schema.id)
    return schema_document(schema, base, composed, wanted)


def _builtin(registry: HomeRegistry, key: str) -> Schema:
    for schema_id in registry.builtins.ids():
        if key in (schema_id, global_alt_id(schema_id)) or unquote(key) == schema_id:
            return registry.builtins.get(schema_id)
    raise NotFound(f"no global schema {key!r}")


def _all_of(registry: HomeRegistry, all_of: Any) -> tuple[str | None, list[str]]:
    """The base (a built-in schema id, or a class exactly one built-in has) and the field
    group keys an `allOf` lists; `InvalidInput` for anything else."""
    if not isinstance(all_of, list) or not all_of:
        raise InvalidInput("allOf must list the base schema and field groups", field="allOf")
    bases: list[str] = []
    groups: list[str] = []
    for index, entry in enumerate(all_of):
        ref = entry.get("$ref") if isinstance(entry, dict) else None
        if not isinstance(ref, str):
            raise InvalidInput(f"allOf[{index}] needs a `$ref`", field=f"allOf[{index}]")
        base = _base_of(registry, ref)
        if base is not None:
            bases.append(base)
        elif resolve_key(ref, "mixins") is not None:
            groups.append(ref)
        else:
            raise InvalidInput(
                f"allOf[{index}]: {ref!r} is neither a built-in schema nor a field group",
                field=f"allOf[{index}]",
            )
    if len(bases) > 1:
        raise InvalidInput("allOf must name exactly one built-in schema (the base)", field="allOf")
    return (bases[0] if bases else None), groups


def _base_of(registry: HomeRegistry, ref: str) -> str | None:
    ids = registry.builtins.ids()
    if ref in ids:
        return ref
    by_class = [i for i in ids if registry.builtins.get(i).xdm_class == ref]
    return by_class[0] if len(by_class) == 1 else None


def _field_group_parts(body: Mapping[str, Any]) -> tuple[str, str, dict[str, Any]]:
    """Title, description and definition of a field group document; `InvalidInput` when it
    defines no fields or its parts have the wrong JSON types."""
    if body.get("type", "object") != "object":
        raise InvalidInput("a field group's type is object", field="type")
    definition = {key: body[key] for key in _FIELD_GROUP_KEYS if key in body}
    if "definitions" not in definition and "properties" not in definition:
        raise InvalidInput(
            "a field group needs `definitions` (or `properties`)", field="definitions"
        )
    extends = definition.get("meta:intendedToExtend", [])
    if not isinstance(extends, list) or not all(isinstance(e, str) for e in extends):
        raise InvalidInput(
            "meta:intendedToExtend is a list of class ids", field="meta:intendedToExtend"
        )
    return _text(body, "title"), _text(body, "description", ""), definition


def _text(body: Mapping[str, Any], key: str, default: str | None = None) -> str:
    value = body.get(key, default)
    if not isinstance(value, str):
        raise InvalidInput(f"{key} must be a string", field=key)
    return value


def _json(raw: bytes) -> Any:
    try:
        return codec.loads(raw)
    except codec.JSONDecodeError as error:
        raise InvalidInput(f"the body is not JSON: {error}", field="body") from error


def _object(raw: bytes) -> dict[str, Any]:
    return _must_be_object(_json(raw))


def _must_be_object(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidInput("the body must be a JSON object", field="body")
    return value


def _kind(resource: FieldGroup | TenantSchema) -> str:
    return "mixins" if isinstance(resource, FieldGroup) else "schemas"
