"""The Order History tab over HTTP: start a historical order sync, watch its progress.

For the store connector configured in this server's home (`<home>/connector.toml`, its token in
`KOPPLA_CONNECTOR_TOKEN`), with the same rules as `koppla connector history:sync`: a refusal is
400 with `{"detail", "field"}`. A sync started here is carried out by the running connector
(`koppla connector run` queues its chunks and consumes them) or by `history:work` consumers;
progress comes from the connector's ledger and, for the batches, from this platform's catalog.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from koppla.connector.history.batch_client import BatchOutcome
from koppla.connector.history.request import parse_day
from koppla.connector.history.sync import HistorySync
from koppla.connector.settings import load_settings
from koppla.core.errors import InvalidInput, KopplaError, NotFound
from koppla.platform.catalog.store import Catalog
from koppla.web.auth import Caller, Svc

router = APIRouter(prefix="/api/v1/connector", tags=["connector"])


class SyncStart(BaseModel):
    """A history sync request: the Order History tab's From and To, optionally one website."""

    model_config = ConfigDict(populate_by_name=True)

    start: str = Field(alias="from", description="First order date, YYYY-MM-DD (UTC).")
    end: str = Field(alias="to", description="Last order date, YYYY-MM-DD (UTC).")
    website: str | None = Field(default=None, description="Only this website.")


class CatalogView:
    """The platform as the sync's progress sees it, read from this server's own catalog."""

    def __init__(self, catalog: Catalog) -> None:
        self._catalog = catalog

    def dataset_exists(self, dataset_id: str) -> bool:
        """True when the catalog has the dataset."""
        try:
            self._catalog.dataset(dataset_id)
        except NotFound:
            return False
        return True

    def outcome(self, batch_id: str) -> BatchOutcome:
        """The batch's status and counts (a batch the catalog lost counts as failed)."""
        try:
            batch = self._catalog.batch(batch_id)
        except NotFound:
            return BatchOutcome("failed", 0, 0)
        return BatchOutcome(batch.status, batch.records, batch.failed_records)

    def close(self) -> None:
        """Nothing to release: the catalog belongs to the server."""


def _history(svc: Svc) -> HistorySync:
    try:
        settings = load_settings(svc.settings.home)
    except InvalidInput as error:
        raise HTTPException(409, detail=f"the connector settings are invalid: {error}") from None
    if not settings.websites:
        raise HTTPException(
            404, detail="no store connector is configured in this home (connector.toml)"
        )
    return HistorySync(settings, CatalogView(svc.catalog))


def _refused(error: KopplaError) -> JSONResponse:
    field = error.field if isinstance(error, InvalidInput) else None
    return JSONResponse({"detail": str(error), "field": field}, status_code=400)


@router.post("/history", status_code=202, response_model=None)
async def start_sync(body: SyncStart, svc: Svc, _: Caller) -> dict[str, Any] | JSONResponse:
    """Check and record a history sync; the running connector carries it out."""

    def start() -> dict[str, Any]:
        history = _history(svc)
        try:
            request = history.start(
                parse_day(body.start, "from"), parse_day(body.end, "to"), body.website
            )
            return history.progress(request.id, refresh_first=False).as_json()
        finally:
            history.close()

    try:
        return await run_in_threadpool(start)
    except KopplaError as error:
        return _refused(error)


@router.get("/history")
async def list_syncs(svc: Svc, _: Caller, limit: int = 20) -> dict[str, Any]:
    """The newest history syncs with their progress."""

    def read() -> list[dict[str, Any]]:
        history = _history(svc)
        try:
            return [
                history.progress(r.id).as_json()
                for r in history.ledger.requests(limit=max(1, min(limit, 100)))
            ]
        finally:
            history.close()

    return {"syncs": await run_in_threadpool(read)}


@router.get("/history/{sync_id}")
async def sync_progress(sync_id: str, svc: Svc, _: Caller) -> dict[str, Any]:
    """One history sync: orders found, done, failed; batches; rate; time left; what failed."""

    def read() -> dict[str, Any]:
        history = _history(svc)
        try:
            shown = history.progress(sync_id).as_json()
            shown["failedOrders"] = [
                {"orderId": oid, "field": fld, "message": msg}
                for oid, fld, msg in history.ledger.failed_orders(sync_id)
            ]
            shown["failedChunks"] = [
                {"chunk": no, "error": msg} for no, msg in history.ledger.chunk_errors(sync_id)
            ]
            return shown
        finally:
            history.close()

    try:
        return await run_in_threadpool(read)
    except NotFound as error:
        raise HTTPException(404, detail=str(error)) from None
