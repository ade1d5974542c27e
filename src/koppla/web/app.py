"""The HTTP app: the public edge under `/ee/`, credentialed APIs under `/api/`."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from koppla import __version__
from koppla.core import clock
from koppla.core.settings import Settings
from koppla.platform.edge.app import EdgeApp, Receive, Scope, Send
from koppla.platform.edge.budget import QuarantineBudget
from koppla.platform.edge.consent import ConsentBook
from koppla.platform.edge.debug import DebugHub
from koppla.platform.edge.directory import DatastreamDirectory
from koppla.platform.edge.limits import EdgeLimits
from koppla.platform.edge.screening import EventScreen
from koppla.platform.query.jobs.runner import open_query_jobs
from koppla.platform.spool.bounded import BoundedSink
from koppla.platform.spool.sink import open_sink
from koppla.platform.spool.writer import SpoolClosed
from koppla.web import errors, openapi
from koppla.web.gate import TokenGate
from koppla.web.limits import BodyLimit, BodyLimits
from koppla.web.liveness import Watch
from koppla.web.pages import connection, debugger, overview, session, sql
from koppla.web.pages import datasets as dataset_pages
from koppla.web.pages import profiles as profile_pages
from koppla.web.pages.render import STATIC_DIR
from koppla.web.routes import (
    aep_catalog,
    batch_export,
    batch_ingest,
    connector_history,
    connector_settings,
    custom_attributes,
    dataset_export,
    datasets,
    datastreams,
    debug,
    health,
    identity,
    ims,
    profiles,
    query,
    query_service,
    query_templates,
    reports,
    saved_queries,
    schema_registry,
    storefront,
    streaming,
)
from koppla.web.routes import overview as overview_api
from koppla.web.services import Services, build_services
from koppla.web.status import backlog_total

log = logging.getLogger(__name__)


class KopplaApp:
    """The whole HTTP app: the lean edge handler for `/ee/...`, the gated API for the rest.

    The edge is public and enforces its own limits as the body streams in (size, nesting,
    events, rates), so its hot path passes through nothing else. Every other request goes
    through the token gate (checked before a byte of the body is read) and the body limits
    (counted before any route parses the body), then to the API.
    """

    def __init__(self, api: FastAPI) -> None:
        self.api = api
        services: Services = api.state.services
        limited = BodyLimit(api, BodyLimits.from_settings(services.settings))
        self._layers = TokenGate(limited, services.catalog, services.users)
        api.state.watch = Watch(since_ms=clock.now_ms())

    def watch_pipeline(self) -> None:
        """Tell the health check that a pipeline process runs beside this server (`koppla up`).

        Its missing heartbeat is then an outage once the start-up grace has passed. A server
        of another role than `all` runs no pipeline beside it: nothing to watch.
        """
        services: Services = self.api.state.services
        if services.settings.role != "all":
            return
        watch: Watch = self.api.state.watch
        self.api.state.watch = replace(watch, supervised=True)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI event."""
        if scope["type"] == "http" and scope["path"].startswith("/ee/"):
            edge: EdgeApp = self.api.state.edge
            await edge(scope, receive, send)
            return
        await self._layers(scope, receive, send)


def create_app(settings: Settings) -> KopplaApp:
    """Build the whole HTTP app for `settings`; the spool opens when the server starts."""
    services = build_services(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        limit = (
            settings.spool_max_backlog_records
            if settings.spool_url
            else settings.spool_max_backlog_bytes
        )
        spool = BoundedSink(open_sink(settings), lambda: backlog_total(services), limit)
        try:
            await spool.start()
        except SpoolClosed as error:  # answered 503 until the shared log is reachable
            log.warning("the spool is not reachable yet: %s", error)
        app.state.spool = spool
        # here, not in build_services: opening fails the jobs a stopped server left running,
        # and the CLI's commands build services too, beside a running server
        app.state.query_jobs = open_query_jobs(settings, services.layout, services.query)
        app.state.edge = EdgeApp(
            directory=DatastreamDirectory(services.catalog),
            spool=spool,
            consent=ConsentBook(services.catalog, max_opt_outs=settings.consent_max_opt_outs),
            hub=DebugHub(),
            location_hint=settings.location_hint,
            limits=EdgeLimits.from_settings(settings),
            budget=QuarantineBudget(services.catalog, settings.quarantine_hourly_limit),
            screen=EventScreen(services.catalog, services.registry),
        )
        try:
            yield
        finally:
            app.state.query_jobs.close()
            await spool.aclose()

    api = FastAPI(title="Koppla", version=__version__, lifespan=lifespan)
    api.state.services = services
    if settings.role == "edge":  # the public edge and streaming ingestion, nothing else
        for module in (health, streaming):
            api.include_router(module.router)
        errors.install(api)
        openapi.install(api)
        return KopplaApp(api)
    for module in (
        health,
        query,
        query_service,
        query_templates,
        reports,
        saved_queries,
        datasets,
        datastreams,
        streaming,
        debug,
        storefront,
        aep_catalog,
        batch_ingest,
        batch_export,
        dataset_export,
        connector_history,
        connector_settings,
        custom_attributes,
        schema_registry,
        profiles,
        identity,
        ims,
        overview_api,
        session,
        overview,
        dataset_pages,
        sql,
        debugger,
        profile_pages,
        connection,
    ):
        api.include_router(module.router)
    api.mount("/admin/static", StaticFiles(directory=STATIC_DIR), name="admin-static")
    errors.install(api)
    openapi.install(api)
    return KopplaApp(api)
