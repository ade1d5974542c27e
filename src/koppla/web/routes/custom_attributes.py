"""The Custom Order Attributes table as JSON (the Data Customization tab's twin).

`GET /api/v1/connector/custom-attributes`: for each dataset the connector sends order events to
(live, historical, or both) and each dataset whose records carried custom attributes, the
attribute names the events carried beside the custom fields of the dataset's schema, and whether
they match. Always read fresh: a rename on either side shows on the next read.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from koppla.core import clock
from koppla.core.errors import NotFound
from koppla.platform.catalog.access import Principal
from koppla.platform.catalog.models import Dataset
from koppla.platform.schemas import custom_fields
from koppla.platform.schemas.custom_fields import Kind, Level
from koppla.platform.schemas.mismatch import AttributeRow, DatasetUse, rows
from koppla.platform.schemas.observed import Seen
from koppla.web.auth import Caller, Svc
from koppla.web.routes.connector_settings import read_settings
from koppla.web.services import Services
from koppla.xdm.tenant import namespace, tenant_id

router = APIRouter(prefix="/api/v1/connector", tags=["connector settings"])


def connector_datasets(svc: Services, org_id: str) -> list[tuple[str, str]]:
    """`(dataset id, role)` for each dataset the organization's connector settings send order
    events to: `live` (a website's Dataset ID) and `historical` (its Order History dataset)."""
    document = read_settings(svc.connector_settings, org_id).document
    found: list[tuple[str, str]] = []
    for site in document.get("websites") or []:
        if not isinstance(site, dict):
            continue
        live = str(site.get("dataset_id") or "")
        if live:
            found.append((live, "live"))
        copy = site.get("history_copy_dataset_id", True)
        history = live if copy is not False else str(site.get("history_dataset_id") or "")
        if history:
            found.append((history, "historical"))
    return found


def attribute_rows(
    svc: Services, principal: Principal
) -> tuple[list[DatasetUse], list[AttributeRow]]:
    """The datasets consulted and the table's rows, for the caller's organization and sandbox
    (see the module's doc)."""
    org, sandbox = principal.org_id, principal.sandbox
    space = namespace(tenant_id(org))
    roles: dict[str, list[str]] = {}
    for dataset_id, role in connector_datasets(svc, org):
        if role not in roles.setdefault(dataset_id, []):
            roles[dataset_id].append(role)
    seen: dict[str, list[Seen]] = {}
    datasets: dict[str, Dataset | None] = {}
    for dataset_id in roles:
        datasets[dataset_id] = _dataset(svc, dataset_id, org, sandbox)
    for dataset in svc.catalog.datasets(org, sandbox):
        if dataset.id not in roles:
            carried = svc.observed.seen(dataset.id)
            if carried:
                roles[dataset.id] = []
                datasets[dataset.id] = dataset
                seen[dataset.id] = carried
    uses: list[DatasetUse] = []
    defined: dict[str, dict[Level, dict[str, Kind]]] = {}
    for dataset_id, dataset_roles in roles.items():
        found = datasets[dataset_id]
        if found is None:
            uses.append(DatasetUse(dataset_id, "", tuple(dataset_roles)))
            continue
        dataset = found
        uses.append(DatasetUse(dataset.id, dataset.name, tuple(dataset_roles)))
        if dataset.id not in seen:
            seen[dataset.id] = svc.observed.seen(dataset.id)
        try:
            schema = svc.registry.get(dataset.schema_id)
        except NotFound:
            continue
        defined[dataset.id] = custom_fields.defined(schema, space)
    return uses, rows(uses, seen, defined)


def _dataset(svc: Services, dataset_id: str, org: str, sandbox: str) -> Dataset | None:
    try:
        return svc.catalog.dataset(dataset_id, org, sandbox)
    except NotFound:
        return None


def row_json(row: AttributeRow) -> dict[str, Any]:
    """One row in the API's shape."""
    return {
        "datasetId": row.dataset_id,
        "datasetName": row.dataset_name or None,
        "roles": list(row.roles),
        "level": row.level,
        "commerce": row.commerce or None,
        "commerceTypes": list(row.commerce_kinds),
        "lastSeen": clock.iso_ms(row.last_seen_ms),
        "records": row.count,
        "platform": row.platform or None,
        "platformType": row.platform_kind or None,
        "match": row.match,
        "note": row.note or None,
    }


@router.get("/custom-attributes")
async def custom_attributes(principal: Caller, svc: Svc) -> dict[str, Any]:
    """The Custom Order Attributes table: per dataset and level, each attribute name the
    store's events carried (`commerce`), each custom field of the dataset's schema
    (`platform`), and `match` when both have the name; `datasets` lists the datasets
    consulted (no name: the settings name a dataset this organization lacks). `attributes` is
    empty when no order event carried a custom attribute and no schema defines one."""
    uses, table = await run_in_threadpool(attribute_rows, svc, principal)
    return {
        "tenantId": tenant_id(principal.org_id),
        "datasets": [
            {"id": use.id, "name": use.name or None, "roles": list(use.roles)} for use in uses
        ],
        "attributes": [row_json(row) for row in table],
        "checkedAt": clock.iso_ms(clock.now_ms()),
    }
