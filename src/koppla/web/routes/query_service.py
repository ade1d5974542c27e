"""Adobe's Query Service API for asynchronous queries, under `/data/foundation/query`.

- `POST /queries` `{"sql"}` or `{"templateId"}`, with `queryParameters`, `name`, `description`:
  202 with the query, SUBMITTED. 400 at once for SQL that cannot run (not one SELECT, a missing
  or unknown parameter, a derived dataset: `CREATE TABLE AS` / `INSERT INTO` are not supported).
  503 with `Retry-After` while the organization has 20 queries waiting or running, or its kept
  results take four times `query_job_max_result_bytes` on disk. Organizations take turns for
  the workers; a query whose values pass `query_job_max_result_bytes` ends FAILED naming it.
- `GET /queries`: the organization's queries in the caller's sandbox, newest first
  (`orderby`, `limit`, `start`, `property` filters such as `userId==ann,state==SUCCESS`).
- `GET /queries/{queryid}`: one query; `state` moves SUBMITTED → IN_PROGRESS → SUCCESS,
  FAILED, TIMEOUT or KILLED. A query of another organization or sandbox is 404.
- `PATCH /queries/{queryid}` `{"op": "cancel"}` (409 when it already ended) or
  `{"op": "soft_delete"}` (hidden from lists, its results deleted).
- Koppla's extension, which Adobe's API has not (there results go to a dataset or a PostgreSQL
  client): `GET /queries/{queryid}/results?start=0&limit=100` pages a SUCCESS query's rows
  (`limit` up to 1000), as long as they are kept (`query_results_hours`); 409 before SUCCESS,
  after they expired or were deleted. A page holds at most `query_max_result_bytes` of values:
  wide rows make it shorter than `limit` (`_page.next` is the first row it left out), and a
  row wider than that alone is a 409 naming the setting.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import BaseModel, Field

from koppla.core import clock
from koppla.core.errors import InvalidInput
from koppla.platform.catalog.access import Principal
from koppla.platform.query.errors import QueryBusy
from koppla.platform.query.jobs.admit import DERIVED_DATASETS
from koppla.platform.query.jobs.listing import listing
from koppla.platform.query.jobs.model import QueryJob, ResultPage
from koppla.platform.query.jobs.runner import QueryJobs
from koppla.platform.query.jobs.store import JOB_ORDERS, JOB_RULES
from koppla.web.auth import Caller

PREFIX = "/data/foundation/query"
router = APIRouter(prefix=PREFIX, tags=["query service"])


def query_jobs(request: Request) -> QueryJobs:
    """The app's query jobs (`app.state.query_jobs`)."""
    found: QueryJobs = request.app.state.query_jobs
    return found


Jobs = Annotated[QueryJobs, Depends(query_jobs)]


def scope_of(caller: Principal) -> tuple[str, str]:
    """The organization and sandbox a caller acts in."""
    return caller.org_id, caller.sandbox


class QueryDef(BaseModel):
    """Adobe's `query_def`: SQL or a template id, parameters, a name and a description."""

    sql: str | None = Field(default=None, description="One SELECT; `$name` marks a parameter.")
    templateId: str | None = Field(default=None, description="Run this query template's SQL.")
    queryParameters: dict[str, Any] | None = Field(
        default=None, description="Values of the SQL's `$name` parameters (always as literals)."
    )
    name: str = Field(default="", description="A name for the query.")
    description: str = Field(default="", description="What the query is for.")
    dbName: str | None = Field(default=None, description="Accepted; the sandbox header rules.")
    ctasParameters: dict[str, Any] | None = Field(default=None, description="Not supported yet.")
    insertIntoParameters: dict[str, Any] | None = Field(
        default=None, description="Not supported yet."
    )


class QueryPatch(BaseModel):
    """Adobe's operation on a query: `cancel` or `soft_delete`."""

    op: str = Field(description="`cancel` or `soft_delete`.")


def _link(request: Request, path: str, **extra: str) -> dict[str, str]:
    return {"href": str(request.base_url).rstrip("/") + PREFIX + path, **extra}


def query_json(job: QueryJob, request: Request, now_ms: int) -> dict[str, Any]:
    """One query as Adobe's API shows it (plus Koppla's `truncated` and `resultsExpired`)."""
    asked = job.request
    own = f"/queries/{job.id}"
    links = {
        "self": _link(request, own, method="GET"),
        "soft_delete": _link(request, own, method="PATCH", body='{"op": "soft_delete"}'),
        "cancel": _link(request, own, method="PATCH", body='{"op": "cancel"}'),
    }
    if job.state == "SUCCESS" and job.results == "kept":
        links["results"] = _link(request, own + "/results", method="GET")
    return {
        "id": job.id,
        "sql": asked.sql,
        "effectiveSQL": asked.effective_sql,
        "name": asked.name,
        "description": asked.description,
        "queryParameters": asked.params,
        "templateId": asked.template_id or None,
        "templateName": asked.template_name or None,
        "request": {
            "dbName": f"{asked.sandbox}:all",
            "sql": asked.sql,
            "name": asked.name,
            "description": asked.description,
            "queryParameters": asked.params,
            "templateId": asked.template_id or None,
        },
        "state": job.state,
        "created": clock.iso_ms(job.created_ms),
        "updated": clock.iso_ms(job.updated_ms),
        "elapsedTime": job.elapsed_ms(now_ms),
        "rowCount": job.row_count,
        "truncated": job.truncated,
        "resultsExpired": job.results == "expired",
        "userId": asked.user_id,
        "client": asked.client,
        "clientId": asked.client_id,
        "errors": [error.to_json() for error in job.errors],
        "isInsertInto": False,
        "isCTAS": False,
        "version": 1,
        "_links": links,
    }


def page_json(page: ResultPage, request: Request, job_id: str) -> dict[str, Any]:
    """A page of rows: columns, rows, where the page sits, and the link to the next."""
    end = page.start + len(page.rows)
    following = end if end < page.row_count else None
    body: dict[str, Any] = {
        "columns": [{"name": c.name, "type": c.type} for c in page.columns],
        "rows": page.rows,
        "start": page.start,
        "limit": page.limit,
        "rowCount": page.row_count,
        "truncated": page.truncated,
        "_page": {"start": page.start, "count": len(page.rows), "next": following},
        "_links": {},
    }
    if following is not None:
        query = urlencode({"start": following, "limit": page.limit})
        body["_links"]["next"] = _link(request, f"/queries/{job_id}/results?{query}")
    return body


def list_links(request: Request, next_key: int | None) -> dict[str, Any]:
    """`_links.next` of a list page, keeping the request's other parameters."""
    if next_key is None:
        return {}
    params = {k: v for k, v in request.query_params.items() if k != "start"}
    params["start"] = clock.iso_ms(next_key) or ""
    return {"next": {"href": f"{request.url.path}?{urlencode(params)}"}}


def _busy(error: QueryBusy) -> HTTPException:
    headers = {"Retry-After": str(error.retry_after_s)}
    return HTTPException(503, detail=str(error), headers=headers)


@router.post("/queries", status_code=202)
def create_query(body: QueryDef, caller: Caller, jobs: Jobs, request: Request) -> dict[str, Any]:
    """Submit a query; it runs in the background (poll `GET /queries/{id}`)."""
    if body.ctasParameters is not None or body.insertIntoParameters is not None:
        raise InvalidInput(DERIVED_DATASETS, field="ctasParameters")
    try:
        job = jobs.submit(
            body.sql,
            scope=scope_of(caller),
            owner=caller.name,
            client_id=caller.client_id,
            name=body.name,
            description=body.description,
            template_id=body.templateId,
            params=body.queryParameters,
        )
    except QueryBusy as error:
        raise _busy(error) from error
    return query_json(job, request, clock.now_ms())


OrderBy = Annotated[
    str | None,
    Query(pattern=r"^[+-]?(created|updated)$", description="`-created` (default), `+updated`."),
]
PageSize = Annotated[int | None, Query(ge=1, le=1000, description="Per page (1 to 1000; 50).")]
StartKey = Annotated[str | None, Query(description="The order key the page starts at.")]
"""The list parameters Adobe's query and template listings share."""


@router.get("/queries")
def list_queries(
    caller: Caller,
    jobs: Jobs,
    request: Request,
    orderby: OrderBy = None,
    limit: PageSize = None,
    start: StartKey = None,
    filters: str | None = Query(
        default=None, alias="property", description="Filters: `userId==ann,state==SUCCESS`."
    ),
    excludeSoftDeleted: bool = Query(default=True, description="Leave soft-deleted out."),
    excludeHidden: bool = Query(default=True, description="Accepted; Koppla hides none."),
) -> dict[str, Any]:
    """The queries of the caller's organization and sandbox, one page."""
    asked = listing(
        JOB_RULES, JOB_ORDERS, property=filters, orderby=orderby, start=start, limit=limit
    )
    found, next_key = jobs.list(scope_of(caller), asked, include_deleted=not excludeSoftDeleted)
    now = clock.now_ms()
    first = found[0] if found else None
    first_key = None
    if first is not None:
        first_key = first.created_ms if asked.order_column == "created_ms" else first.updated_ms
    return {
        "queries": [query_json(job, request, now) for job in found],
        "_page": {
            "orderby": asked.orderby,
            "start": clock.iso_ms(first_key),
            "next": clock.iso_ms(next_key),
            "count": len(found),
            "property": asked.property or None,
        },
        "_links": list_links(request, next_key),
        "version": 1,
    }


@router.get("/queries/{queryid}")
def get_query(queryid: str, caller: Caller, jobs: Jobs, request: Request) -> dict[str, Any]:
    """One query of the caller's organization and sandbox; 404 for any other."""
    return query_json(jobs.get(scope_of(caller), queryid), request, clock.now_ms())


@router.patch("/queries/{queryid}", status_code=202)
def patch_query(queryid: str, body: QueryPatch, caller: Caller, jobs: Jobs) -> dict[str, Any]:
    """Cancel a query (409 when it already ended) or soft-delete it (its results go too)."""
    if body.op == "cancel":
        jobs.cancel(scope_of(caller), queryid)
        return {"message": "Query cancel request received", "statusCode": 202}
    if body.op == "soft_delete":
        jobs.soft_delete(scope_of(caller), queryid)
        return {"message": "Query soft delete request received", "statusCode": 202}
    raise InvalidInput(f"op must be cancel or soft_delete, got {body.op!r}", field="op")


@router.get("/queries/{queryid}/results")
def query_results(
    queryid: str,
    caller: Caller,
    jobs: Jobs,
    request: Request,
    start: int = Query(default=0, ge=0, description="The first row (0-based)."),
    limit: int = Query(default=100, ge=1, le=1000, description="Rows per page (1 to 1000)."),
) -> dict[str, Any]:
    """Koppla's extension: a page of a SUCCESS query's rows, at most `limit` of them and at
    most `query_max_result_bytes` of values."""
    page = jobs.results(scope_of(caller), queryid, start, limit)
    return page_json(page, request, queryid)
