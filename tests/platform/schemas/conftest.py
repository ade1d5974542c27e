"""Schema registry fixtures: the store's tests run on the SQLite file and on the real
PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.postgres import backend_url


@pytest.fixture(params=["sqlite", "postgresql"])
def schemas_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """ "" (the home's SQLite file) or the URL of a fresh PostgreSQL schema."""
    yield from backend_url(request.param)
