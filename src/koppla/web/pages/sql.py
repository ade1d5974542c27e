"""The SQL editor, `/admin/query`: run a query, see its rows or its error, history, saved queries.

- `GET /admin/query[?saved=ID | ?history=N]`: the editor (with a saved query or a run of the
  history loaded), the person's history (newest first) and saved queries.
- `POST /admin/query/run` (`sql`, `max_rows`): runs the SQL within the person's organization,
  records the run in their history and shows the rows (or the error, worded as
  `POST /api/v1/query` words it). An htmx request gets the result and the new history alone.
- `POST /admin/query/saved` (`name`, `sql`), `POST /admin/query/saved/{id}/delete`.

The JSON twins: `POST /api/v1/query`, `/api/v1/queries/saved`, `/api/v1/queries/history`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from koppla.core import codec
from koppla.core.errors import InvalidInput, TransientError
from koppla.platform.catalog.access import DEFAULT_SANDBOX
from koppla.platform.catalog.saved_queries import HISTORY_KEPT, MAX_SQL_CHARS, Owner, SavedQuery
from koppla.platform.catalog.users import Session
from koppla.platform.query.errors import QueryTimeout
from koppla.platform.query.result import QueryResult, json_value
from koppla.web.auth import Svc
from koppla.web.pages.render import page
from koppla.web.pages.session import CsrfChecked, SignedIn
from koppla.web.routes.saved_queries import Store
from koppla.web.services import Services

router = APIRouter(include_in_schema=False)

PAGE_MAX_ROWS = 500
"""Most rows the editor shows (and its default); the engine's own cap may be lower."""
HISTORY_SHOWN = 30


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one run showed: the rows as text cells, or the error the API would give."""

    sql: str
    columns: tuple[str, ...] = ()
    rows: tuple[tuple[Cell, ...], ...] = ()
    cut_off: bool = False
    max_rows: int = 0
    elapsed_ms: float = 0.0
    error: str = ""


@dataclass(frozen=True, slots=True)
class Cell:
    """One value as the results table shows it; `kind` styles nulls and nested values."""

    text: str
    kind: str = ""


def cell(value: Any) -> Cell:
    """A result value as text: nested values as compact JSON, NULL as `null`."""
    plain = json_value(value)
    if plain is None:
        return Cell("null", "null")
    if isinstance(plain, dict | list):
        return Cell(codec.dumps(plain).decode(), "json")
    if isinstance(plain, bool):
        return Cell("true" if plain else "false")
    return Cell(str(plain))


def outcome_of(sql: str, result: QueryResult, max_rows: int) -> Outcome:
    """The rows of `result` as the results table shows them."""
    return Outcome(
        sql=sql,
        columns=tuple(c.name for c in result.columns),
        rows=tuple(tuple(cell(v) for v in row) for row in result.rows),
        cut_off=result.truncated,
        max_rows=max_rows,
        elapsed_ms=result.elapsed_ms,
    )


async def run_query(svc: Services, session: Session, sql: str, max_rows: int) -> Outcome:
    """Run `sql` over the datasets of `session`'s organization; the error as the API words it.

    Every error `POST /api/v1/query` answers with a `detail` (400 for a refused, failed or
    too slow query, 503 while the engine is busy) is shown with that same text.
    """
    run = partial(svc.query.run, sql, max_rows=max_rows, scope=(session.org_id, DEFAULT_SANDBOX))
    try:
        result: QueryResult = await run_in_threadpool(run)
    except (InvalidInput, QueryTimeout, TransientError) as error:
        return Outcome(sql=sql, error=str(error))
    return outcome_of(sql, result, max_rows)


def row_cap(svc: Services, asked: int | None) -> int:
    """Rows to show: what was asked, within the editor's and the engine's caps."""
    cap = min(PAGE_MAX_ROWS, svc.settings.query_max_rows)
    return cap if asked is None else max(1, min(asked, cap))


def owner_of(session: Session) -> Owner:
    """Whose history and saved queries: the signed-in person, in their organization."""
    return Owner(session.org_id, session.user)


def _first_sql(svc: Services, session: Session) -> str:
    """What a new editor holds: the newest events of the organization's first datastream (or
    the rows of its first dataset)."""
    datasets = svc.catalog.datasets(session.org_id, DEFAULT_SANDBOX)
    names = {d.id: d.name for d in datasets}
    for stream in svc.catalog.datastreams(session.org_id, DEFAULT_SANDBOX):
        if stream.event_dataset_id in names:
            return f"SELECT * FROM {names[stream.event_dataset_id]} ORDER BY timestamp DESC"
    return f"SELECT * FROM {datasets[0].name}" if datasets else "SELECT 1"


def _panels(svc: Services, store: Store, session: Session) -> dict[str, Any]:
    owner = owner_of(session)
    return {
        "history": store.history(owner, limit=HISTORY_SHOWN),
        "saved": store.saved(owner),
        "tables": [d.name for d in svc.catalog.datasets(session.org_id, DEFAULT_SANDBOX)],
        "max_rows_cap": row_cap(svc, None),
    }


def _loaded(store: Store, owner: Owner, saved: str | None, history: int | None) -> str | None:
    """The SQL of the saved query or history run named in the page's address, if any."""
    if saved is not None:
        return next((q.sql for q in store.saved(owner) if q.id == saved), None)
    if history is not None:
        runs = store.history(owner, limit=HISTORY_KEPT)
        return next((r.sql for r in runs if r.id == history), None)
    return None


@router.get("/admin/query", response_class=HTMLResponse)
def query_page(
    request: Request,
    session: SignedIn,
    svc: Svc,
    store: Store,
    saved: str | None = None,
    history: int | None = None,
) -> HTMLResponse:
    """The SQL editor, its history and the person's saved queries."""
    sql = _loaded(store, owner_of(session), saved, history) or _first_sql(svc, session)
    return page(
        request,
        "query.html",
        sql=sql,
        max_rows=row_cap(svc, None),
        outcome=None,
        **_panels(svc, store, session),
    )


@router.post("/admin/query/run", response_class=HTMLResponse)
async def run(
    request: Request,
    session: CsrfChecked,
    svc: Svc,
    store: Store,
    sql: Annotated[str, Form(max_length=MAX_SQL_CHARS)] = "",
    max_rows: Annotated[int | None, Form(ge=1)] = None,
) -> HTMLResponse:
    """Run the SQL, add the run to the history (unless it is blank), and show the rows or the
    error."""
    cap = row_cap(svc, max_rows)
    outcome = await run_query(svc, session, sql, cap)
    if sql.strip():
        rows, elapsed_ms = len(outcome.rows), outcome.elapsed_ms
        record = partial(store.record, owner_of(session), sql, rows=rows, elapsed_ms=elapsed_ms)
        await run_in_threadpool(record, error=outcome.error)
    panels = await run_in_threadpool(_panels, svc, store, session)
    context = {"sql": sql, "max_rows": cap, "outcome": outcome, **panels}
    if _htmx(request):
        return page(request, "_query_ran.html", **context)
    return page(request, "query.html", **context)


@router.post("/admin/query/saved", response_class=HTMLResponse)
def save(
    request: Request,
    session: CsrfChecked,
    svc: Svc,
    store: Store,
    name: Annotated[str, Form(max_length=1000)] = "",
    sql: Annotated[str, Form(max_length=MAX_SQL_CHARS)] = "",
) -> Response:
    """Save the editor's SQL under a name; a name already used gets the new SQL."""
    try:
        saved = store.save(owner_of(session), name, sql)
    except InvalidInput as error:
        return _saved_panel(request, svc, store, session, sql, problem=str(error))
    if _htmx(request):
        return _saved_panel(request, svc, store, session, sql, just_saved=saved)
    return RedirectResponse(f"/admin/query?saved={saved.id}", status.HTTP_303_SEE_OTHER)


@router.post("/admin/query/saved/{query_id}/delete", response_class=HTMLResponse)
def delete(
    request: Request, query_id: str, session: CsrfChecked, svc: Svc, store: Store
) -> Response:
    """Delete one of the person's saved queries."""
    store.delete(owner_of(session), query_id)  # already gone: the list shows it is
    if _htmx(request):
        return _saved_panel(request, svc, store, session, "")
    return RedirectResponse("/admin/query", status.HTTP_303_SEE_OTHER)


def _htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def _saved_panel(
    request: Request,
    svc: Services,
    store: Store,
    session: Session,
    sql: str,
    *,
    problem: str = "",
    just_saved: SavedQuery | None = None,
) -> HTMLResponse:
    """The saved queries (for htmx), or the whole editor with `sql` kept, with `problem`."""
    context: dict[str, Any] = {"saved_problem": problem, "just_saved": just_saved}
    if _htmx(request):
        return page(request, "_query_saved.html", saved=store.saved(owner_of(session)), **context)
    status_code = status.HTTP_400_BAD_REQUEST if problem else status.HTTP_200_OK
    return page(
        request,
        "query.html",
        status_code=status_code,
        sql=sql,
        max_rows=row_cap(svc, None),
        outcome=None,
        **_panels(svc, store, session),
        **context,
    )
