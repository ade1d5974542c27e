"""Live tables: tables that are not Delta datasets but are read fresh for each query.

The profile store's `profiles` and `identities` are such tables: a `LiveTable` gives its Arrow
schema (for listings, without reading anything) and a loader called only when a query names it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import pyarrow as pa


@dataclass(frozen=True, slots=True)
class LiveTable:
    """A table read on demand: its schema, and how to load its current rows."""

    schema: pa.Schema
    load: Callable[[], pa.Table]


LiveTables = Callable[[], Mapping[str, LiveTable]]
"""Returns the live tables by name; called once per query."""
