"""The PostgreSQL server as `koppla up`'s child process: serves until stopped or orphaned.

The services (query engine, catalog) are built by a function the parent passes in
(`koppla.web.services.build_services`): the platform layer does not import the web layer.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from typing import Protocol

from koppla.core.lifecycle import child_stop_event
from koppla.core.settings import Settings
from koppla.platform.query.pgwire.auth import ORG_SUFFIX, TokenCheck
from koppla.platform.query.pgwire.rows import QueryEngineLike
from koppla.platform.query.pgwire.server import PgServer
from koppla.platform.query.pgwire.tls import certificate_files, server_context

log = logging.getLogger(__name__)


class PgCatalog(TokenCheck, Protocol):
    """The catalog's parts the server uses: tokens and the home's organization."""

    def default_org(self) -> str:
        """The home's organization id."""
        ...


class PgServices(Protocol):
    """What the server process needs built: the query engine and the catalog."""

    @property
    def query(self) -> QueryEngineLike:
        """The query engine."""
        ...

    @property
    def catalog(self) -> PgCatalog:
        """The catalog (tokens)."""
        ...

    def close(self) -> None:
        """Close everything built."""
        ...


def connection_url(org_id: str, host: str, port: int) -> str:
    """What to give psql: `postgresql://<org>@host:port/prod:all?sslmode=require`."""
    user = org_id if org_id.endswith(ORG_SUFFIX) else org_id + ORG_SUFFIX
    shown = "localhost" if host in ("0.0.0.0", "::", "") else host
    return f"postgresql://{user.replace('@', '%40')}@{shown}:{port}/prod:all?sslmode=require"


def server_for(settings: Settings, services: PgServices) -> PgServer:
    """The server the settings describe, over `services`."""
    cert, key = certificate_files(settings.home, settings.tls_cert, settings.tls_key)
    return PgServer(
        services.query,
        services.catalog,
        host=settings.host,
        port=settings.query_pg_port,
        tls=server_context(cert, key),
        max_connections=settings.query_pg_max_connections,
        stream_timeout_s=settings.query_stream_timeout_s,
    )


async def serve(settings: Settings, services: PgServices, stop: threading.Event) -> None:
    """Serve until `stop` is set."""
    server = server_for(settings, services)
    try:
        port = await server.start()
    except OSError as error:  # one line, not a traceback: the supervisor retries with backoff
        log.error(
            "PostgreSQL server: cannot listen on %s:%s (query_pg_port): %s",
            settings.host,
            settings.query_pg_port,
            error.strerror or error,
        )
        raise SystemExit(1) from None
    url = connection_url(services.catalog.default_org(), settings.host, port)
    log.info("PostgreSQL clients: %s", url)
    try:
        while not stop.is_set():
            await asyncio.sleep(0.5)
    finally:
        await server.close()


def main(settings_json: str, parent_pid: int, build: Callable[[Settings], PgServices]) -> None:
    """Entry point of the PostgreSQL server child; exits on SIGTERM or when the parent is gone."""
    settings = Settings.model_validate_json(settings_json)
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s pgwire %(levelname)s %(message)s"
    )
    stop = child_stop_event(parent_pid, "pgwire")
    services = build(settings)
    try:
        asyncio.run(serve(settings, services, stop))
    finally:
        services.close()
