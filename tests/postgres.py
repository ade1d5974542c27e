"""The real PostgreSQL for tests of stores that run on it: a fresh schema per test.

The server is `KOPPLA_TEST_POSTGRES_URL` (default: the local one). Unreachable, it makes the
test `unavailable` (skipped locally, failed under CI). Each test gets a URL whose connections
use their own new schema (`koppla_test_<random>`, dropped afterwards), so tests neither see
each other's tables nor depend on what an earlier run left.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator

import psycopg
from psycopg.conninfo import conninfo_to_dict

from koppla.core.pgfile import conninfo
from tests.require import unavailable

POSTGRES_URL = os.environ.get(
    "KOPPLA_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def admin() -> psycopg.Connection[tuple[object, ...]]:
    """An autocommit connection to the test server, or the test stops as `unavailable`."""
    try:
        return psycopg.connect(conninfo(POSTGRES_URL), autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as error:
        unavailable(f"PostgreSQL unreachable at {POSTGRES_URL}: {error}")


def schema_url(url: str, schema: str) -> str:
    """`url` with its connections' search path set to `schema` (and named after it, so that
    `terminate` finds them)."""
    base = url.replace("postgresql+psycopg://", "postgresql://", 1)
    joiner = "&" if "?" in base else "?"
    return f"{base}{joiner}options=-csearch_path%3D{schema}&application_name={schema}"


def fresh_schema() -> Iterator[str]:
    """A URL into a new, empty schema, dropped (with everything in it) afterwards."""
    name = f"koppla_test_{secrets.token_hex(4)}"
    with admin() as conn:
        conn.execute(f"CREATE SCHEMA {name}")
    try:
        yield schema_url(POSTGRES_URL, name)
    finally:
        with admin() as conn:
            conn.execute(f"DROP SCHEMA {name} CASCADE")


def backend_url(backend: str) -> Iterator[str]:
    """For a test run on each back-end: "" for SQLite (a file under the test's directory),
    else a fresh PostgreSQL schema's URL."""
    if backend == "sqlite":
        yield ""
    else:
        yield from fresh_schema()


def terminate(url: str) -> int:
    """End every server connection made with `url` (a `fresh_schema` URL), as a server
    restart or a broken network would; returns how many were ended."""
    name = conninfo_to_dict(conninfo(url))["application_name"]
    with admin() as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name = %s AND pid <> pg_backend_pid()",
            (name,),
        ).fetchall()
    return len(rows)
