"""Shared fixtures: a Koppla home with the demo datastream, an in-process app and pipeline."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from koppla.core.layout import Layout
from koppla.core.settings import Settings
from koppla.platform.catalog.demo import ensure_demo
from koppla.platform.catalog.models import Datastream
from koppla.platform.catalog.store import Catalog
from koppla.platform.datasets.tables import provision
from koppla.platform.pipeline.runner import Pipeline
from koppla.web.app import create_app
from koppla.web.services import Services, build_services
from koppla.xdm.registry import builtin_registry


@pytest.fixture
def anyio_backend() -> str:
    """Async tests run on asyncio (uvicorn's loop in production is uvloop, also asyncio)."""
    return "asyncio"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings for a fresh home under the test's temporary directory."""
    return Settings.load(home=tmp_path / "home")


@pytest.fixture
def catalog(settings: Settings) -> Iterator[Catalog]:
    """The catalog of the test's home."""
    settings.home.mkdir(parents=True, exist_ok=True)
    store = Catalog(Layout(settings.home).catalog)
    yield store
    store.close()


@pytest.fixture
def demo(settings: Settings, catalog: Catalog) -> Datastream:
    """The demo datastream (and its dataset `demo_events`, provisioned and empty)."""
    stream = ensure_demo(catalog)
    provision(Layout(settings.home), builtin_registry(), catalog.dataset(stream.event_dataset_id))
    return stream


@pytest.fixture
def pipeline(settings: Settings, catalog: Catalog) -> Iterator[Pipeline]:
    """A pipeline over the test's home, stepped by hand."""
    runner = Pipeline(Layout(settings.home), catalog, builtin_registry(), flush_ms=10)
    yield runner
    runner.close()


@pytest.fixture
def services(settings: Settings) -> Iterator[Services]:
    """The services (catalog, query engine) of the test's home, closed after the test."""
    built = build_services(settings)
    yield built
    built.close()


@pytest.fixture
async def client(settings: Settings, demo: Datastream) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client talking to an in-process Koppla app (edge and APIs)."""
    app = create_app(settings)
    async with app.api.router.lifespan_context(app.api):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://edge.test") as http:
            yield http
