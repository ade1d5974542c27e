"""The Order History tab over HTTP: start a historical order sync, watch its progress.

For the store connector of this server's home, which belongs to the home's organization (others
get 404), with that organization's settings as saved on the Settings page
(`/api/v1/connector/settings`; without any, `<home>/connector.toml`), and the same rules as
`koppla connector history:sync`, plus the admin's: Start Sync needs a service account. The
server itself needs no connector token: a sync started here is carried out, with the
connector's own credentials, by the running connector (`koppla connector run` queues its chunks
and consumes them) or by `history:work` consumers. A refusal is 400 with `{"detail", "field"}`;
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
from koppla.connector.settings import ConnectorSettings, load_settings
from koppla.core.errors import Conflict, InvalidInput, KopplaError, NotFound
from koppla.platform.catalog.access import Principal
from koppla.platform.catalog.connector_settings import ConnectorSettingsStore
from koppla.platform.catalog.store import Catalog
from koppla.web.auth import Caller, Svc
from koppla.web.routes.connector_settings import Store
from koppla.web.services import Services

router = APIRouter(prefix="/api/v1/connector", tags=["connector"])


class SyncStart(BaseModel):
    """A history sync request: the Order History tab's From and To, optionally one website."""

    model_config = ConfigDict(populate_by_name=True)

    start: str = Field(alias="from", description="First order date, YYYY-MM-DD (UTC).")
    end: str = Field(alias="to", description="Last order date, YYYY-MM-DD (UTC).")
    website: str | None = Field(default=None, description="Only this website.")


class CatalogView:
    """The platform as the sync's progress sees it: one organization's part of this server's
    own catalog."""

    def __init__(self, catalog: Catalog, org_id: str | None = None) -> None:
        self._catalog = catalog
        self._org = org_id

    def dataset_exists(self, dataset_id: str) -> bool:
        """True when the catalog has the dataset (in the organization)."""
        try:
            self._catalog.dataset(dataset_id, self._org)
        except NotFound:
            return False
        return True

    def outcome(self, batch_id: str) -> BatchOutcome:
        """The batch's status and counts (a batch the catalog lost counts as failed)."""
        try:
            batch = self._catalog.batch(batch_id, self._org)
        except NotFound:
            return BatchOutcome("failed", 0, 0)
        return BatchOutcome(batch.status, batch.records, batch.failed_records)

    def close(self) -> None:
        """Nothing to release: the catalog belongs to the server."""


class NoConnector(NotFound):
    """The caller's organization has no store connector here (or none is configured)."""


def connector_settings(
    svc: Services, store: ConnectorSettingsStore, principal: Principal
) -> ConnectorSettings:
    """The settings of this home's connector: the saved admin settings of the home's own
    organization, else `connector.toml`. The connector (and its ledger of syncs) belongs to
    that organization: others get `NoConnector`, as does a home without websites; `Conflict`
    when the settings break a rule."""
    own = svc.catalog.default_org()
    if principal.org_id != own:
        raise NoConnector(f"the store connector of this platform belongs to organization {own}")
    saved = store.get(own).document
    try:
        settings = load_settings(svc.settings.home, document=saved or None)
    except InvalidInput as error:
        raise Conflict(f"the connector settings are invalid: {error}") from None
    if not settings.websites:
        raise NoConnector(
            "no store connector is configured: add a website on the Settings page "
            "(or in connector.toml)"
        )
    return settings


def open_history(svc: Services, store: ConnectorSettingsStore, principal: Principal) -> HistorySync:
    """The history syncs of this home's connector, as the principal may see them (close it)."""
    settings = connector_settings(svc, store, principal)
    return HistorySync(settings, CatalogView(svc.catalog, principal.org_id))


def require_service_account(store: ConnectorSettingsStore, principal: Principal) -> None:
    """Start Sync needs the organization's service account (as the admin's does, 3.1.0)."""
    if store.service_account(principal.org_id) is None:
        raise InvalidInput(
            "service_account: missing credentials: Start Sync needs a service account; paste "
            "the workspace file on the Service account page",
            field="service_account",
        )


def start_history_sync(
    svc: Services,
    store: ConnectorSettingsStore,
    principal: Principal,
    body: SyncStart,
) -> dict[str, Any]:
    """Check and record a history sync (`InvalidInput` naming the field of a refusal)."""
    history = open_history(svc, store, principal)
    try:
        require_service_account(store, principal)
        request = history.start(
            parse_day(body.start, "from"), parse_day(body.end, "to"), body.website
        )
        return history.progress(request.id, refresh_first=False).as_json()
    finally:
        history.close()


def history_syncs(
    svc: Services, store: ConnectorSettingsStore, principal: Principal, limit: int = 20
) -> list[dict[str, Any]]:
    """The newest history syncs with their progress."""
    history = open_history(svc, store, principal)
    try:
        return [
            history.progress(r.id).as_json()
            for r in history.ledger.requests(limit=max(1, min(limit, 100)))
        ]
    finally:
        history.close()


def _refused(error: KopplaError) -> JSONResponse:
    field = error.field if isinstance(error, InvalidInput) else None
    return JSONResponse({"detail": str(error), "field": field}, status_code=400)


def _unavailable(error: NotFound | Conflict) -> HTTPException:
    return HTTPException(404 if isinstance(error, NotFound) else 409, detail=str(error))


@router.post("/history", status_code=202, response_model=None)
async def start_sync(
    body: SyncStart, svc: Svc, principal: Caller, store: Store
) -> dict[str, Any] | JSONResponse:
    """Check and record a history sync; the running connector carries it out."""
    try:
        return await run_in_threadpool(start_history_sync, svc, store, principal, body)
    except (NoConnector, Conflict) as error:
        raise _unavailable(error) from None
    except KopplaError as error:
        return _refused(error)


@router.get("/history")
async def list_syncs(svc: Svc, principal: Caller, store: Store, limit: int = 20) -> dict[str, Any]:
    """The newest history syncs with their progress."""
    try:
        return {"syncs": await run_in_threadpool(history_syncs, svc, store, principal, limit)}
    except (NotFound, Conflict) as error:
        raise _unavailable(error) from None


@router.get("/history/{sync_id}")
async def sync_progress(sync_id: str, svc: Svc, principal: Caller, store: Store) -> dict[str, Any]:
    """One history sync: orders found, done, failed; batches; rate; time left; what failed."""

    def read() -> dict[str, Any]:
        history = open_history(svc, store, principal)
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
    except (NotFound, Conflict) as error:
        raise _unavailable(error) from None
