"""Saved queries and query history of the caller: the JSON twin of the SQL editor's side panel.

- `GET /api/v1/queries/saved`: the caller's saved queries, by name.
- `POST /api/v1/queries/saved` `{"name", "sql"}`: save one (a name in use gets the new SQL).
- `DELETE /api/v1/queries/saved/{id}`: delete one; 404 when the caller has no such query.
- `GET /api/v1/queries/history[?limit=]`: the caller's newest runs of the SQL editor.

Each person (the signed-in user, or the API token by its name) sees only their own, and only
within their organization.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Response
from pydantic import BaseModel, Field

from koppla.core import clock
from koppla.platform.catalog.access import Principal
from koppla.platform.catalog.saved_queries import (
    HISTORY_KEPT,
    HistoryEntry,
    Owner,
    SavedQueries,
    SavedQuery,
)
from koppla.web.auth import Caller, Svc

router = APIRouter(prefix="/api/v1/queries", tags=["query"])


def saved_queries(svc: Svc) -> SavedQueries:
    """The services' saved-query store."""
    return svc.saved_queries


Store = Annotated[SavedQueries, Depends(saved_queries)]


def owner_of(caller: Principal) -> Owner:
    """Whose queries a caller reads and writes: its own, in its organization."""
    return Owner(caller.org_id, caller.name)


def saved_json(query: SavedQuery) -> dict[str, Any]:
    """One saved query as the API shows it."""
    return {
        "id": query.id,
        "name": query.name,
        "sql": query.sql,
        "createdAt": clock.iso_ms(query.created_ms),
        "updatedAt": clock.iso_ms(query.updated_ms),
    }


def history_json(entry: HistoryEntry) -> dict[str, Any]:
    """One run of the history as the API shows it."""
    return {
        "id": entry.id,
        "sql": entry.sql,
        "ok": entry.ok,
        "rows": entry.rows,
        "elapsedMs": round(entry.elapsed_ms, 3),
        "error": entry.error or None,
        "at": clock.iso_ms(entry.at_ms),
    }


class SavedQueryIn(BaseModel):
    """A query to keep under a name."""

    name: str = Field(description="The name to save it under; a name in use is replaced.")
    sql: str = Field(description="The SQL.")


@router.get("/saved")
def list_saved(caller: Caller, store: Store) -> dict[str, Any]:
    """The caller's saved queries, by name."""
    return {"queries": [saved_json(q) for q in store.saved(owner_of(caller))]}


@router.post(
    "/saved",
    status_code=201,
    responses={400: {"description": "Name or SQL missing or too long; `field` names it."}},
)
def save_query(body: SavedQueryIn, caller: Caller, store: Store) -> dict[str, Any]:
    """Save a query under a name (a name already used gets the new SQL)."""
    return saved_json(store.save(owner_of(caller), body.name, body.sql))


@router.delete(
    "/saved/{query_id}", status_code=204, responses={404: {"description": "No such query."}}
)
def delete_query(query_id: str, caller: Caller, store: Store) -> Response:
    """Delete one of the caller's saved queries."""
    if not store.delete(owner_of(caller), query_id):
        raise HTTPException(404, detail=f"you have no saved query {query_id!r}")
    return Response(status_code=204)


@router.get("/history")
def query_history(
    caller: Caller,
    store: Store,
    limit: Annotated[int, Query(ge=1, le=HISTORY_KEPT, description="Newest runs to list.")] = 50,
) -> dict[str, Any]:
    """The caller's newest runs of the SQL editor, newest first."""
    return {"history": [history_json(e) for e in store.history(owner_of(caller), limit=limit)]}
