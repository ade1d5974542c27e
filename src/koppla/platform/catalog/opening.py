"""Opening a deployment's catalog where its settings keep it.

By default the catalog is a SQLite file under the home; with `catalog_url` set
(`postgresql://USER:PASSWORD@HOST:PORT/DB`, optionally `?options=-csearch_path%3DSCHEMA`) every
process of the deployment, on any machine, opens the same PostgreSQL tables. The schema
registry follows the same setting: `home_registry(layout, settings.catalog_url)`.
"""

from __future__ import annotations

from koppla.core.layout import Layout
from koppla.core.settings import Settings
from koppla.platform.catalog.store import Catalog


def open_catalog(settings: Settings) -> Catalog:
    """The catalog of the deployment `settings` describe: PostgreSQL at `catalog_url` when
    set, else `<home>/catalog.sqlite`."""
    return Catalog(Layout(settings.home).catalog, url=settings.catalog_url)
