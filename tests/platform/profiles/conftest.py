"""Profile store fixtures: the same tests run on embedded SQLite and on the real PostgreSQL."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from koppla.platform.profiles.store import ProfileStore
from tests.require import unavailable

POSTGRES_URL = os.environ.get(
    "KOPPLA_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


@pytest.fixture(scope="session")
def postgres_admin() -> Iterator[str]:
    """The PostgreSQL URL, checked reachable once per session (skip locally, fail under CI)."""
    engine = create_engine(POSTGRES_URL)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except OperationalError as error:
        engine.dispose()
        unavailable(f"PostgreSQL unreachable at {POSTGRES_URL}: {error.orig}")
    engine.dispose()
    yield POSTGRES_URL


def postgres_schema_url(admin_url: str) -> Iterator[str]:
    """A URL whose connections use a fresh schema `koppla_<random>`, dropped afterwards."""
    name = f"koppla_{secrets.token_hex(4)}"
    admin = create_engine(admin_url)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {name}"))
    try:
        yield f"{admin_url}?options=-csearch_path%3D{name}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {name} CASCADE"))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty profile store URL: SQLite in a temp dir, or a PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'profiles.sqlite'}"
        return
    admin = request.getfixturevalue("postgres_admin")
    yield from postgres_schema_url(admin)


@pytest.fixture
def store(store_url: str) -> Iterator[ProfileStore]:
    """An open profile store on either back-end."""
    opened = ProfileStore(store_url)
    yield opened
    opened.close()
