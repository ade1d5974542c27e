"""SQL over datasets: `POST /api/v1/query` with `{"sql": ...}` (or `GET ?sql=`), JSON rows back.

Statuses, each with `{"detail": "..."}` saying what to change:

- 400: the SQL was refused (not one SELECT, or it reaches past datasets), DuckDB rejected it, or
  it ran past the time limit. A timeout is 400, as in Datasette, not 408 (which says the
  *client* was slow to send) and not 5xx: the query itself is too costly, and clients that retry
  5xx would only send the same expensive query again.
- 503 with `Retry-After`: every query slot stayed busy (`query_max_concurrent`), or a dataset
  could not be read at that moment; the same request may succeed shortly.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from koppla.core.errors import InvalidInput, TransientError
from koppla.platform.catalog.access import Principal
from koppla.platform.query.errors import QueryBusy, QueryTimeout
from koppla.web.auth import Caller, Svc

router = APIRouter(prefix="/api/v1", tags=["query"])


class QueryRequest(BaseModel):
    """A read-only SQL statement and an optional row cap."""

    sql: str = Field(description="One SELECT statement over datasets by name.")
    max_rows: int | None = Field(default=None, ge=1, description="Most rows to return.")


async def _run(svc: Svc, caller: Principal, sql: str, max_rows: int | None) -> dict[str, Any]:
    scope = (caller.org_id, caller.sandbox)
    try:
        result = await run_in_threadpool(svc.query.run, sql, max_rows=max_rows, scope=scope)
    except (InvalidInput, QueryTimeout) as error:
        raise HTTPException(400, detail=str(error)) from error
    except QueryBusy as error:
        raise _unavailable(error, error.retry_after_s) from error
    except TransientError as error:
        raise _unavailable(error, 1) from error
    return result.to_json()


def _unavailable(error: Exception, retry_after_s: int) -> HTTPException:
    return HTTPException(503, detail=str(error), headers={"Retry-After": str(retry_after_s)})


@router.post("/query")
async def post_query(body: QueryRequest, svc: Svc, caller: Caller) -> dict[str, Any]:
    """Run one read-only SQL query over the caller's datasets; returns columns, rows and
    whether rows were cut off."""
    return await _run(svc, caller, body.sql, body.max_rows)


@router.get("/query")
async def get_query(
    svc: Svc,
    caller: Caller,
    sql: str = Query(description="One SELECT statement."),
    max_rows: int | None = Query(default=None, ge=1),
) -> dict[str, Any]:
    """The same as POST, for links and quick checks."""
    return await _run(svc, caller, sql, max_rows)
