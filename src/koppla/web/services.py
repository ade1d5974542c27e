"""The object graph the HTTP app serves from, built once at start-up by `build_services`."""

from __future__ import annotations

from dataclasses import dataclass

from koppla.core.layout import Layout
from koppla.core.settings import Settings
from koppla.platform.catalog.store import Catalog
from koppla.platform.datasets.quarantine import TABLE_NAME as QUARANTINE
from koppla.platform.profiles.lookup import ProfileLookup
from koppla.platform.profiles.sql import (
    IDENTITIES_SCHEMA,
    PROFILES_SCHEMA,
    identities_table,
    profiles_table,
)
from koppla.platform.profiles.store import ProfileStore, store_url
from koppla.platform.query.engine import QueryEngine
from koppla.platform.query.live import LiveTable
from koppla.xdm.registry import SchemaRegistry, builtin_registry


@dataclass(frozen=True)
class Services:
    """Shared, long-lived parts: settings, paths, catalog, schemas, query engine, profiles."""

    settings: Settings
    layout: Layout
    catalog: Catalog
    registry: SchemaRegistry
    query: QueryEngine
    profiles: ProfileStore

    def close(self) -> None:
        """Close the query engine, the catalog and the profile store."""
        self.query.close()
        self.catalog.close()
        self.profiles.close()

    @property
    def lookup(self) -> ProfileLookup:
        """Profile lookups over the profile store."""
        return ProfileLookup(self.profiles)


def dataset_tables(layout: Layout, catalog: Catalog) -> dict[str, str]:
    """`{table name: Delta path}` for SQL: every dataset by name, plus the quarantine."""
    tables = {d.name: str(layout.dataset(d.id)) for d in catalog.datasets()}
    tables[QUARANTINE] = str(layout.quarantine)
    return tables


def profile_tables(store: ProfileStore) -> dict[str, LiveTable]:
    """The profile store's SQL tables: `profiles` and `identities`."""
    return {
        "profiles": LiveTable(PROFILES_SCHEMA, lambda: profiles_table(store)),
        "identities": LiveTable(IDENTITIES_SCHEMA, lambda: identities_table(store)),
    }


def build_services(settings: Settings) -> Services:
    """Open the catalog, the profile store and the query engine for `settings.home`."""
    layout = Layout(settings.home)
    settings.home.mkdir(parents=True, exist_ok=True)
    catalog = Catalog(layout.catalog)
    profiles = ProfileStore(store_url(settings.profile_store_url, settings.home))
    live = profile_tables(profiles)
    engine = QueryEngine(
        tables=lambda: dataset_tables(layout, catalog),
        timeout_s=settings.query_timeout_s,
        max_rows=settings.query_max_rows,
        memory_limit=settings.query_memory_limit,
        threads=settings.query_threads,
        temp_directory=layout.query_tmp,
        temp_limit=settings.query_temp_limit,
        max_concurrent=settings.query_max_concurrent,
        live=lambda: live,
    )
    return Services(settings, layout, catalog, builtin_registry(), engine, profiles)
