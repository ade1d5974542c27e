"""The profile store as SQL tables: `profiles` and `identities`, beside the datasets.

Read fresh from the store for each query that names them (`QueryEngine` live tables), so SQL
sees profiles as current as the lookup API does. `profiles` has one row per profile: its id,
identities, merged attributes (JSON, under the default merge policy) and computed attributes;
`identities` one row per identity with its profile and when it was first and last seen.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from koppla.core import codec
from koppla.platform.profiles.store import ProfileStore

_TIME = pa.timestamp("ms", tz="UTC")

PROFILES_SCHEMA = pa.schema(
    [
        ("profile_id", pa.string()),
        ("identities", pa.list_(pa.string())),
        ("attributes", pa.string()),
        ("sources", pa.list_(pa.string())),
        ("first_seen", _TIME),
        ("last_seen", _TIME),
        ("orders", pa.int64()),
        ("lifetime_value", pa.float64()),
        ("last_cart", pa.string()),
        ("updated_at", _TIME),
    ]
)

IDENTITIES_SCHEMA = pa.schema(
    [
        ("namespace", pa.string()),
        ("id", pa.string()),
        ("profile_id", pa.string()),
        ("first_seen", _TIME),
        ("last_seen", _TIME),
    ]
)


def profiles_table(store: ProfileStore) -> pa.Table:
    """Every profile as one Arrow table (`PROFILES_SCHEMA`)."""
    columns = [
        "graph_id",
        "identities",
        "attributes",
        "sources",
        "first_seen_ms",
        "last_seen_ms",
        "orders",
        "lifetime_value",
        "last_cart",
        "updated_ms",
    ]
    return _table(store, "profiles", columns, PROFILES_SCHEMA, _profile_row)


def identities_table(store: ProfileStore) -> pa.Table:
    """Every identity as one Arrow table (`IDENTITIES_SCHEMA`)."""
    columns = ["ns", "id", "graph_id", "first_ms", "last_ms"]
    return _table(store, "identities", columns, IDENTITIES_SCHEMA, _identity_row)


def _table(
    store: ProfileStore,
    name: str,
    columns: list[str],
    schema: pa.Schema,
    convert: Callable[[tuple[Any, ...]], dict[str, Any]],
) -> pa.Table:
    batches = [
        pa.RecordBatch.from_pylist([convert(row) for row in part], schema=schema)
        for part in store.rows(name, columns)
    ]
    return pa.Table.from_batches(batches, schema=schema)


def _profile_row(row: tuple[Any, ...]) -> dict[str, Any]:
    graph_id, identities, attributes, sources, first, last, orders, value, cart, updated = row
    return {
        "profile_id": graph_id,
        "identities": codec.loads(identities),
        "attributes": attributes,
        "sources": codec.loads(sources),
        "first_seen": _time(first),
        "last_seen": _time(last),
        "orders": orders,
        "lifetime_value": value,
        "last_cart": cart,
        "updated_at": _time(updated),
    }


def _identity_row(row: tuple[Any, ...]) -> dict[str, Any]:
    namespace, value, graph_id, first, last = row
    return {
        "namespace": namespace,
        "id": value,
        "profile_id": graph_id,
        "first_seen": _time(first),
        "last_seen": _time(last),
    }


def _time(ms: int | None) -> datetime | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, UTC)
