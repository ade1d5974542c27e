"""Fixtures: a home whose `demo_events` holds rows, a token, and a PostgreSQL server over it."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import pytest
from pg_server import Pg, write_events

from koppla.core.settings import Settings
from koppla.platform.catalog.models import Datastream
from koppla.platform.query.pgwire.server import PgServer
from koppla.platform.query.pgwire.tls import certificate_files, server_context
from koppla.web.services import Services, build_services


@contextmanager
def _serving(
    settings: Settings, services: Services, **options: Any
) -> Iterator[tuple[PgServer, int]]:
    """A PostgreSQL server over `services` on an ephemeral port, its loop in a thread."""
    cert, key = certificate_files(settings.home, None, None)
    options.setdefault("host", "127.0.0.1")
    server = PgServer(
        services.query, services.catalog, port=0, tls=server_context(cert, key), **options
    )
    loop = asyncio.new_event_loop()
    port = loop.run_until_complete(server.start())
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield server, port
    finally:
        asyncio.run_coroutine_threadsafe(server.close(), loop).result(timeout=60)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()


@pytest.fixture
def pg_with(settings: Settings, demo: Datastream) -> Iterator[Callable[..., Pg]]:
    """Start a server with the given `PgServer` options (a home with 30 events, a token)."""
    write_events(settings, demo)
    services = build_services(settings)
    org = services.catalog.dataset("demo_events").org_id
    token = services.catalog.add_token("psql", org_id=org)
    with ExitStack() as stack:

        def start(**options: Any) -> Pg:
            server, port = stack.enter_context(_serving(settings, services, **options))
            return Pg(port, org, token, services, server)

        try:
            yield start
        finally:
            stack.close()
            services.close()


@pytest.fixture
def pg(pg_with: Callable[..., Pg]) -> Pg:
    """A PostgreSQL server on an ephemeral port, in a thread, over a home with 30 events."""
    return pg_with()
