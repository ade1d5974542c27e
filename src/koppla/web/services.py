"""The object graph the HTTP app serves from, built once at start-up by `build_services`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from koppla.core.layout import Layout
from koppla.core.settings import Settings
from koppla.platform.catalog.access import DEFAULT_SANDBOX
from koppla.platform.catalog.connector_settings import KEY_FILE, ConnectorSettingsStore
from koppla.platform.catalog.opening import open_catalog
from koppla.platform.catalog.saved_queries import SavedQueries
from koppla.platform.catalog.store import Catalog
from koppla.platform.catalog.users import UserStore
from koppla.platform.datasets.location import TableLocation, table_location
from koppla.platform.datasets.quarantine import TABLE_NAME as QUARANTINE
from koppla.platform.pipeline.log_backlog import LogBacklog
from koppla.platform.profiles.lookup import ProfileLookup
from koppla.platform.profiles.sql import (
    IDENTITIES_SCHEMA,
    PROFILES_SCHEMA,
    identities_table,
    profiles_table,
)
from koppla.platform.profiles.store import ProfileStore, store_url
from koppla.platform.query.catalog_tables import (
    BATCHES_SCHEMA,
    DATASETS_SCHEMA,
    batches_table,
    datasets_table,
)
from koppla.platform.query.engine import QueryEngine, Scope, ScopedTables
from koppla.platform.query.live import LiveTable
from koppla.platform.schemas.observed import ObservedAttributes
from koppla.platform.schemas.registry import HomeRegistry, home_registry


@dataclass(frozen=True)
class Services:
    """Shared, long-lived parts: settings, paths, catalog, schemas, query engine, profiles,
    the people who sign in to the admin pages."""

    settings: Settings
    layout: Layout
    catalog: Catalog
    registry: HomeRegistry
    query: QueryEngine
    profiles: ProfileStore
    users: UserStore
    saved_queries: SavedQueries
    connector_settings: ConnectorSettingsStore
    observed: ObservedAttributes
    """The custom order attributes seen in each dataset's records."""
    log_backlog: LogBacklog | None = None
    """With a shared log (`spool_url`): the records waiting in its partitions."""

    def close(self) -> None:
        """Close the query engine, the catalog, the people store and the profile store."""
        self.observed.close()
        if self.log_backlog is not None:
            self.log_backlog.close()
        self.registry.close()
        self.query.close()
        self.catalog.close()
        self.users.close()
        self.saved_queries.close()
        self.connector_settings.close()
        self.profiles.close()

    @property
    def lookup(self) -> ProfileLookup:
        """Profile lookups over the profile store."""
        return ProfileLookup(self.profiles)


def dataset_tables(location: TableLocation, catalog: Catalog) -> dict[str, str]:
    """`{table name: Delta path or URI}` for SQL: every dataset by name, plus the quarantine."""
    tables = {d.name: location.table(d.id) for d in catalog.datasets()}
    tables[QUARANTINE] = location.quarantine()
    return tables


def catalog_tables(catalog: Catalog, scope: Scope | None) -> dict[str, LiveTable]:
    """The catalog's `datasets` and `batches` as live tables, of one scope (or all)."""
    org_id, sandbox = scope if scope is not None else (None, None)
    return {
        "datasets": LiveTable(DATASETS_SCHEMA, lambda: datasets_table(catalog, org_id, sandbox)),
        "batches": LiveTable(BATCHES_SCHEMA, lambda: batches_table(catalog, org_id, sandbox)),
    }


def _beside(tables: Mapping[str, str], live: Mapping[str, LiveTable]) -> dict[str, LiveTable]:
    """The live tables whose names no dataset takes (a dataset of that name wins)."""
    taken = {name.lower() for name in tables}
    return {name: table for name, table in live.items() if name.lower() not in taken}


def scoped_tables(
    location: TableLocation, catalog: Catalog, live: dict[str, LiveTable], scope: Scope
) -> ScopedTables:
    """What one organization's SQL may read: its datasets of the sandbox by name, the
    quarantine's rows of those datasets, and the profile tables when the profile store is its
    (the profile store belongs to the home's organization)."""
    org_id, sandbox = scope
    owned = catalog.datasets(org_id, sandbox)
    tables = {d.name: location.table(d.id) for d in owned}
    tables[QUARANTINE] = location.quarantine()
    only = pc.field("dataset_id").isin(pa.array([d.id for d in owned], pa.string()))
    profiles_visible = org_id == catalog.default_org() and sandbox == DEFAULT_SANDBOX
    readable = {**catalog_tables(catalog, scope), **(live if profiles_visible else {})}
    return ScopedTables(tables, {QUARANTINE: only}, _beside(tables, readable))


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
    catalog = open_catalog(settings)
    profiles = ProfileStore(store_url(settings.profile_store_url, settings.home))
    live = profile_tables(profiles)
    location = table_location(settings)
    engine = QueryEngine(
        tables=lambda: dataset_tables(location, catalog),
        timeout_s=settings.query_timeout_s,
        max_rows=settings.query_max_rows,
        max_result_bytes=settings.query_max_result_bytes,
        memory_limit=settings.query_memory_limit,
        threads=settings.query_threads,
        temp_directory=layout.query_tmp,
        temp_limit=settings.query_temp_limit,
        max_concurrent=settings.query_max_concurrent,
        stream_timeout_s=settings.query_stream_timeout_s,
        # DuckDB may read the tables' directory itself; tables on an object store are read
        # through Arrow, so DuckDB reads no file at all then
        data_roots=[] if location.directory is None else [location.directory],
        storage_options=location.storage_options(),
        live=lambda: _beside(
            dataset_tables(location, catalog), {**catalog_tables(catalog, None), **live}
        ),
        scoped=lambda scope: scoped_tables(location, catalog, live, scope),
    )
    users = UserStore(layout.catalog)
    saved = SavedQueries(layout.catalog)
    connector = ConnectorSettingsStore(layout.catalog, key_file=layout.home / KEY_FILE)
    return Services(
        settings,
        layout,
        catalog,
        home_registry(Layout(settings.home), settings.catalog_url),
        engine,
        profiles,
        users,
        saved,
        connector,
        ObservedAttributes(layout.attributes),
        _log_backlog(settings),
    )


def _log_backlog(settings: Settings) -> LogBacklog | None:
    """The shared log's backlog, measured in the background once asked (with `spool_url`)."""
    if not settings.spool_url:
        return None
    from koppla.platform.spool.rabbit_stream import partition_names

    names = partition_names(settings.spool_partitions)
    return LogBacklog(settings.spool_url, settings.catalog_url, names)
