"""Fixtures for the edge: a pinned monotonic clock, a spool that remembers, an edge app."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import httpx
import pytest

from koppla.core import clock
from koppla.platform.catalog.store import Catalog
from koppla.platform.edge.app import EdgeApp
from koppla.platform.edge.budget import QuarantineBudget
from koppla.platform.edge.consent import ConsentBook
from koppla.platform.edge.debug import DebugHub
from koppla.platform.edge.directory import DatastreamDirectory
from koppla.platform.edge.limits import EdgeLimits
from koppla.platform.edge.screening import EventScreen
from koppla.xdm.registry import builtin_registry
from tests.platform.edge.fakes import FakeClock, MemorySpool


@pytest.fixture
def fake_clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    """`clock.monotonic` pinned; advance it by hand."""
    fake = FakeClock()
    monkeypatch.setattr(clock, "monotonic", fake)
    return fake


@pytest.fixture
def spool() -> MemorySpool:
    """The edge's spool, in memory."""
    return MemorySpool()


EdgeClient = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture
def edge_client(catalog: Catalog, spool: MemorySpool) -> EdgeClient:
    """`async with edge_client(limits, client=(host, port)) as http:` an edge app over `catalog`."""

    @asynccontextmanager
    async def start(
        limits: EdgeLimits | None = None, client: tuple[str, int] = ("203.0.113.7", 5000)
    ) -> AsyncIterator[httpx.AsyncClient]:
        limits = limits or EdgeLimits()
        app = EdgeApp(
            directory=DatastreamDirectory(catalog),
            spool=spool,
            consent=ConsentBook(catalog),
            hub=DebugHub(),
            location_hint="local",
            limits=limits,
            budget=QuarantineBudget(catalog, limits.quarantine_hourly_limit),
            screen=EventScreen(catalog, builtin_registry()),
        )
        transport = httpx.ASGITransport(app=app, client=client)
        async with httpx.AsyncClient(transport=transport, base_url="http://edge.test") as http:
            yield http

    return start
