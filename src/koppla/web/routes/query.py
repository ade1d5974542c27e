"""SQL over datasets: `POST /api/v1/query` with `{"sql": ...}` (or `GET ?sql=`), JSON rows back."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from koppla.core.errors import InvalidInput, TerminalError
from koppla.web.auth import Caller, Svc

router = APIRouter(prefix="/api/v1", tags=["query"])


class QueryRequest(BaseModel):
    """A read-only SQL statement and an optional row cap."""

    sql: str = Field(description="One SELECT statement over datasets by name.")
    max_rows: int | None = Field(default=None, ge=1, description="Most rows to return.")


async def _run(svc: Svc, sql: str, max_rows: int | None) -> dict[str, Any]:
    try:
        result = await run_in_threadpool(svc.query.run, sql, max_rows=max_rows)
    except InvalidInput as error:
        raise HTTPException(400, detail=str(error)) from error
    except TerminalError as error:
        raise HTTPException(408, detail=str(error)) from error
    return result.to_json()


@router.post("/query")
async def post_query(body: QueryRequest, svc: Svc, _: Caller) -> dict[str, Any]:
    """Run one read-only SQL query; returns columns, rows and whether rows were cut off."""
    return await _run(svc, body.sql, body.max_rows)


@router.get("/query")
async def get_query(
    svc: Svc,
    _: Caller,
    sql: str = Query(description="One SELECT statement."),
    max_rows: int | None = Query(default=None, ge=1),
) -> dict[str, Any]:
    """The same as POST, for links and quick checks."""
    return await _run(svc, sql, max_rows)
