"""The HTTP app: the public edge under `/ee/`, credentialed APIs under `/api/`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from koppla import __version__
from koppla.core.layout import Layout
from koppla.core.settings import Settings
from koppla.platform.edge.app import EdgeApp, Receive, Scope, Send
from koppla.platform.edge.consent import ConsentBook
from koppla.platform.edge.debug import DebugHub
from koppla.platform.edge.directory import DatastreamDirectory
from koppla.platform.spool.writer import SpoolWriter
from koppla.web.routes import (
    aep_catalog,
    datasets,
    datastreams,
    debug,
    health,
    query,
    storefront,
    streaming,
)
from koppla.web.services import build_services


class KopplaApp:
    """Sends `/ee/...` straight to the lean edge handler and everything else to the API."""

    def __init__(self, api: FastAPI) -> None:
        self.api = api

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Dispatch one ASGI event."""
        if scope["type"] == "http" and scope["path"].startswith("/ee/"):
            edge: EdgeApp = self.api.state.edge
            await edge(scope, receive, send)
            return
        await self.api(scope, receive, send)


def create_app(settings: Settings) -> KopplaApp:
    """Build the whole HTTP app for `settings`; the spool opens when the server starts."""
    services = build_services(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        spool = SpoolWriter(
            Layout(settings.home).spool,
            segment_bytes=settings.spool_segment_bytes,
            fsync=settings.spool_fsync,
        )
        app.state.spool = spool
        app.state.edge = EdgeApp(
            directory=DatastreamDirectory(services.catalog),
            spool=spool,
            consent=ConsentBook(services.catalog),
            hub=DebugHub(),
            location_hint=settings.location_hint,
        )
        try:
            yield
        finally:
            spool.close()

    api = FastAPI(title="Koppla", version=__version__, lifespan=lifespan)
    api.state.services = services
    for module in (health, query, datasets, datastreams, streaming, debug, storefront, aep_catalog):
        api.include_router(module.router)
    return KopplaApp(api)
