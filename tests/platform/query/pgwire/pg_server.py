"""A PostgreSQL server over a test home, and what a client needs to reach it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pyarrow as pa
from deltalake import DeltaTable, write_deltalake

from koppla.core.layout import Layout
from koppla.core.settings import Settings
from koppla.platform.catalog.models import Datastream
from koppla.platform.query.pgwire.server import PgServer
from koppla.web.services import Services

EVENTS = 30
"""Rows in `demo_events`: page views, and every third one a product view."""


@dataclass(frozen=True)
class Pg:
    """A running server and what a client needs to connect to it."""

    port: int
    org_id: str
    token: str
    services: Services
    server: PgServer

    def dsn(
        self,
        *,
        password: str | None = None,
        user: str | None = None,
        db: str = "prod:all",
        host: str = "127.0.0.1",
        sslmode: str = "require",
    ) -> str:
        """A libpq connection string (`sslmode=require` unless told)."""
        return (
            f"host={host} port={self.port} dbname={db} user={user or self.org_id} "
            f"password={password if password is not None else self.token} sslmode={sslmode} "
            "gssencmode=disable connect_timeout=10"
        )


def write_events(settings: Settings, demo: Datastream, count: int = EVENTS) -> None:
    """Append `count` events to the demo dataset's Delta table."""
    table = Layout(settings.home).dataset(demo.event_dataset_id)
    schema = pa.schema(DeltaTable(table).schema().to_arrow())
    start = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
    rows = [
        {
            "_id": f"e-{n}",
            "eventType": "commerce.productViews" if n % 3 == 0 else "web.webpagedetails.pageViews",
            "timestamp": start + timedelta(seconds=n, milliseconds=123),
        }
        for n in range(count)
    ]
    write_deltalake(table, pa.Table.from_pylist(rows, schema=schema), mode="append")
