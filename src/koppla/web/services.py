"""The object graph the HTTP app serves from, built once at start-up by `build_services`."""

from __future__ import annotations

from dataclasses import dataclass

from koppla.core.layout import Layout
from koppla.core.settings import Settings
from koppla.platform.catalog.store import Catalog
from koppla.platform.datasets.quarantine import TABLE_NAME as QUARANTINE
from koppla.platform.query.engine import QueryEngine
from koppla.xdm.registry import SchemaRegistry, builtin_registry


@dataclass(frozen=True)
class Services:
    """Shared, long-lived parts: settings, paths, catalog, schemas and the query engine."""

    settings: Settings
    layout: Layout
    catalog: Catalog
    registry: SchemaRegistry
    query: QueryEngine


def dataset_tables(layout: Layout, catalog: Catalog) -> dict[str, str]:
    """`{table name: Delta path}` for SQL: every dataset by name, plus the quarantine."""
    tables = {d.name: str(layout.dataset(d.id)) for d in catalog.datasets()}
    tables[QUARANTINE] = str(layout.quarantine)
    return tables


def build_services(settings: Settings) -> Services:
    """Open the catalog and the query engine for `settings.home`."""
    layout = Layout(settings.home)
    settings.home.mkdir(parents=True, exist_ok=True)
    catalog = Catalog(layout.catalog)
    engine = QueryEngine(
        tables=lambda: dataset_tables(layout, catalog),
        timeout_s=settings.query_timeout_s,
        max_rows=settings.query_max_rows,
        memory_limit=settings.query_memory_limit,
        threads=settings.query_threads,
        temp_directory=layout.query_tmp,
        temp_limit=settings.query_temp_limit,
        max_concurrent=settings.query_max_concurrent,
    )
    return Services(settings, layout, catalog, builtin_registry(), engine)
