"""Commerce reports over HTTP: `GET /api/v1/reports` lists them, `GET /api/v1/reports/{name}`
runs one over the caller's datasets, its parameters as query parameters.

`events` and `orders` name the datasets (default: the caller's commerce event dataset, or
`demo_events` among several); `max_rows` caps the rows; every other query parameter is a report
parameter. Statuses as for `/api/v1/query`: 400 (a bad parameter, with the `field` it names; a
refused or failed query; a timeout), 404 (no such report), 503 with `Retry-After` (busy).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request
from starlette.concurrency import run_in_threadpool

from koppla.core.errors import InvalidInput, TransientError
from koppla.platform.query import commerce
from koppla.platform.query.errors import QueryBusy, QueryTimeout
from koppla.web.auth import Caller, Svc
from koppla.xdm.experience_event import commerce_experience_event

router = APIRouter(prefix="/api/v1", tags=["reports"])

_OWN = ("events", "orders", "max_rows")


@router.get("/reports")
async def list_reports(caller: Caller) -> dict[str, Any]:
    """Every commerce report: name, title, description and parameters."""
    return {"reports": [_described(r) for r in commerce.REPORTS]}


@router.get("/reports/{name}")
async def run_report(name: str, request: Request, svc: Svc, caller: Caller) -> dict[str, Any]:
    """Run one report over the caller's datasets; its SQL, columns and rows."""
    chosen = commerce.report(name)
    query = request.query_params
    repeated = sorted({k for k in query if len(query.getlist(k)) > 1})
    if repeated:
        raise InvalidInput(f"query parameter {repeated[0]} is given twice", field=repeated[0])
    params = {k: v for k, v in query.items() if k not in _OWN}
    commerce.resolve(chosen, params)  # a bad parameter is named before datasets are looked up
    owned = svc.catalog.datasets(caller.org_id, caller.sandbox)
    tables = commerce.default_tables(
        [(d.name, svc.registry.base_of(d.schema_id)) for d in owned],
        commerce_experience_event().id,
        query.get("events"),
        query.get("orders"),
    )
    sql = chosen.sql(tables, params)
    max_rows = _max_rows(query.get("max_rows"))
    scope = (caller.org_id, caller.sandbox)
    try:
        result = await run_in_threadpool(svc.query.run, sql, max_rows=max_rows, scope=scope)
    except QueryTimeout as error:
        raise HTTPException(400, detail=str(error)) from error
    except QueryBusy as error:
        raise _unavailable(error, error.retry_after_s) from error
    except TransientError as error:
        raise _unavailable(error, 1) from error
    return {"report": chosen.name, "sql": sql, **result.to_json()}


def _max_rows(raw: str | None) -> int | None:
    if raw is None:
        return None
    if not raw.isdigit() or not 1 <= int(raw) <= 10_000_000:
        raise InvalidInput("max_rows must be a whole number of at least 1", field="max_rows")
    return int(raw)


def _described(found: commerce.Report) -> dict[str, Any]:
    return {
        "name": found.name,
        "title": found.title,
        "description": found.description,
        "parameters": [
            {
                "name": p.name,
                "kind": p.kind,
                "default": p.default,
                "description": p.description,
                **({"choices": list(p.choices)} if p.choices else {}),
                **({"minimum": p.low, "maximum": p.high} if p.kind == "int" else {}),
            }
            for p in found.parameters
        ],
    }


def _unavailable(error: Exception, retry_after_s: int) -> HTTPException:
    return HTTPException(503, detail=str(error), headers={"Retry-After": str(retry_after_s)})
