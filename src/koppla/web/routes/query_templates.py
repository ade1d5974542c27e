"""Adobe's query templates, under `/data/foundation/query/query-templates`: named SQL shared by
an organization's sandbox, with `$name` parameters and default values, run with
`POST /queries {"templateId": ...}`.

- `GET /query-templates` (`orderby`, `limit`, `start`, `property`: `name~`, `userId==`,
  `lastUpdatedBy==`), `GET /query-templates/count` (`property=userId==...`)
- `POST /query-templates` `{"name", "sql", "queryParameters"}`: 202 with the template; 400
  when the SQL (with its defaults, or NULL) is no SELECT the guard admits
- `GET`, `PUT` (name, sql, queryParameters), `DELETE /query-templates/{queryTemplateId}`; 404
  for a template of another organization or sandbox
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from koppla.core import clock
from koppla.core.errors import NotFound
from koppla.platform.query.jobs.listing import listing
from koppla.platform.query.jobs.model import Template
from koppla.platform.query.jobs.templates import TEMPLATE_ORDERS, TEMPLATE_RULES
from koppla.web.auth import Caller
from koppla.web.routes.query_service import (
    PREFIX,
    Jobs,
    OrderBy,
    PageSize,
    StartKey,
    list_links,
    scope_of,
)

router = APIRouter(prefix=PREFIX, tags=["query service"])


class TemplateDef(BaseModel):
    """Adobe's `query_template_def`."""

    name: str = Field(description="A name for the template.")
    sql: str = Field(description="One SELECT; `$name` marks a parameter.")
    queryParameters: dict[str, Any] = Field(
        default_factory=dict, description="Default values of the SQL's parameters."
    )


def template_json(template: Template, request: Request) -> dict[str, Any]:
    """One template as Adobe's API shows it."""
    href = str(request.base_url).rstrip("/") + f"{PREFIX}/query-templates/{template.id}"
    return {
        "id": template.id,
        "name": template.name,
        "sql": template.sql,
        "queryParameters": template.params,
        "userId": template.user_id,
        "lastUpdatedBy": template.last_updated_by,
        "created": clock.iso_ms(template.created_ms),
        "updated": clock.iso_ms(template.updated_ms),
        "_links": {
            "self": {"href": href, "method": "GET"},
            "update": {"href": href, "method": "PUT"},
            "delete": {"href": href, "method": "DELETE"},
        },
    }


def _missing(template_id: str) -> NotFound:
    return NotFound(f"no query template {template_id!r} in this organization and sandbox")


@router.get("/query-templates")
def list_templates(
    caller: Caller,
    jobs: Jobs,
    request: Request,
    orderby: OrderBy = None,
    limit: PageSize = None,
    start: StartKey = None,
    filters: str | None = Query(
        default=None, alias="property", description="Filters: `name~daily,userId==ann`."
    ),
) -> dict[str, Any]:
    """The templates of the caller's organization and sandbox, one page."""
    asked = listing(
        TEMPLATE_RULES,
        TEMPLATE_ORDERS,
        property=filters,
        orderby=orderby,
        start=start,
        limit=limit,
    )
    found, next_key = jobs.templates.page(scope_of(caller), asked)
    return {
        "templates": [template_json(t, request) for t in found],
        "_page": {
            "orderby": asked.orderby,
            "next": clock.iso_ms(next_key),
            "count": len(found),
            "property": asked.property or None,
        },
        "_links": list_links(request, next_key),
        "version": 1,
    }


@router.get("/query-templates/count")
def count_templates(
    caller: Caller,
    jobs: Jobs,
    filters: str | None = Query(
        default=None, alias="property", description="Filter: `userId==ann`."
    ),
) -> dict[str, Any]:
    """How many templates the caller's organization and sandbox keep."""
    rules = {"userId": TEMPLATE_RULES["userId"]}
    asked = listing(rules, TEMPLATE_ORDERS, property=filters, orderby=None, start=None, limit=1)
    return {"totalCount": jobs.templates.count(scope_of(caller), asked), "version": 1}


@router.post("/query-templates", status_code=202)
def create_template(
    body: TemplateDef, caller: Caller, jobs: Jobs, request: Request
) -> dict[str, Any]:
    """Save a template for the caller's organization and sandbox."""
    template = jobs.templates.add(
        scope_of(caller), caller.name, body.name, body.sql, body.queryParameters, clock.now_ms()
    )
    return template_json(template, request)


@router.get("/query-templates/{queryTemplateId}")
def get_template(
    queryTemplateId: str, caller: Caller, jobs: Jobs, request: Request
) -> dict[str, Any]:
    """One template; 404 for one of another organization or sandbox."""
    template = jobs.templates.get(scope_of(caller), queryTemplateId)
    if template is None:
        raise _missing(queryTemplateId)
    return template_json(template, request)


@router.put("/query-templates/{queryTemplateId}", status_code=202)
def update_template(
    queryTemplateId: str, body: TemplateDef, caller: Caller, jobs: Jobs, request: Request
) -> dict[str, Any]:
    """Replace a template's name, SQL and parameters."""
    template = jobs.templates.update(
        scope_of(caller),
        queryTemplateId,
        caller.name,
        body.name,
        body.sql,
        body.queryParameters,
        clock.now_ms(),
    )
    if template is None:
        raise _missing(queryTemplateId)
    return template_json(template, request)


@router.delete("/query-templates/{queryTemplateId}", status_code=202)
def delete_template(queryTemplateId: str, caller: Caller, jobs: Jobs) -> dict[str, Any]:
    """Delete a template."""
    if not jobs.templates.delete(scope_of(caller), queryTemplateId):
        raise _missing(queryTemplateId)
    return {"message": "Deleted", "statusCode": 202}
