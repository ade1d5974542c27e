"""Catalog fixtures: the same tests run on the SQLite file and on the real PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from koppla.platform.catalog.store import Catalog
from tests.postgres import backend_url


@pytest.fixture(params=["sqlite", "postgresql"])
def catalog_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """ "" (a SQLite file) or the URL of a fresh PostgreSQL schema."""
    yield from backend_url(request.param)


@pytest.fixture
def open_catalog(catalog_url: str, tmp_path: Path) -> Iterator[Callable[[], Catalog]]:
    """Opens the test's catalog (each call a new connection, as another process would);
    every one opened is closed after the test."""
    opened: list[Catalog] = []

    def open_one() -> Catalog:
        catalog = Catalog(tmp_path / "c.sqlite", url=catalog_url)
        opened.append(catalog)
        return catalog

    yield open_one
    for catalog in opened:
        catalog.close()
