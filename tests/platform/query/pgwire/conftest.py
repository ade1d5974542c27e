"""Fixtures: a home whose `demo_events` holds rows, a token, and a PostgreSQL server over it."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest
from pg_server import Pg, write_events

from koppla.core.settings import Settings
from koppla.platform.catalog.models import Datastream
from koppla.platform.query.pgwire.server import PgServer
from koppla.platform.query.pgwire.tls import certificate_files, server_context
from koppla.web.services import build_services


@pytest.fixture
def pg(settings: Settings, demo: Datastream) -> Iterator[Pg]:
    """A PostgreSQL server on an ephemeral port, in a thread, over a home with 30 events."""
    write_events(settings, demo)
    services = build_services(settings)
    org = services.catalog.dataset("demo_events").org_id
    token = services.catalog.add_token("psql", org_id=org)
    cert, key = certificate_files(settings.home, None, None)
    server = PgServer(
        services.query, services.catalog, host="127.0.0.1", port=0, tls=server_context(cert, key)
    )
    loop = asyncio.new_event_loop()
    port = loop.run_until_complete(server.start())
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield Pg(port, org, token, services)
    finally:
        asyncio.run_coroutine_threadsafe(server.close(), loop).result(timeout=30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()
        services.close()
