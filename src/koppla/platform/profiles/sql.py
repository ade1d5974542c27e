"""The profile store as SQL tables: `profiles` and `identities`, beside the datasets.

Read fresh from the store for each query that names them (`QueryEngine` live tables), so SQL
sees profiles as current as the lookup API does. `profiles` has one row per profile: its id,
identities, merged attributes (JSON, under the default merge policy) and computed attributes;
`identities` one row per identity with its profile and when it was first and last seen.
"""

from __future__ import annotations

from collections.abc import Callable
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
    return _table(store, "profiles", columns, PROFILES_SCHEMA, _profile_columns)


def identities_table(store: ProfileStore) -> pa.Table:
    """Every identity as one Arrow table (`IDENTITIES_SCHEMA`)."""
    columns = ["ns", "id", "graph_id", "first_ms", "last_ms"]
    return _table(store, "identities", columns, IDENTITIES_SCHEMA, _identity_columns)


def _table(
    store: ProfileStore,
    name: str,
    columns: list[str],
    schema: pa.Schema,
    convert: Callable[[list[tuple[Any, ...]]], list[pa.Array]],
) -> pa.Table:
    batches = [
        pa.RecordBatch.from_arrays(convert(part), schema=schema)
        for part in store.rows(name, columns)
    ]
    return pa.Table.from_batches(batches, schema=schema)


def _profile_columns(rows: list[tuple[Any, ...]]) -> list[pa.Array]:
    graph, identities, attributes, sources, first, last, orders, value, cart, updated = zip(
        *rows, strict=True
    )
    return [
        pa.array(graph, pa.string()),
        pa.array([codec.loads(i) for i in identities], pa.list_(pa.string())),
        pa.array(attributes, pa.string()),
        pa.array([codec.loads(s) for s in sources], pa.list_(pa.string())),
        _times(first),
        _times(last),
        pa.array(orders, pa.int64()),
        pa.array(value, pa.float64()),
        pa.array(cart, pa.string()),
        _times(updated),
    ]


def _identity_columns(rows: list[tuple[Any, ...]]) -> list[pa.Array]:
    namespace, value, graph, first, last = zip(*rows, strict=True)
    return [
        pa.array(namespace, pa.string()),
        pa.array(value, pa.string()),
        pa.array(graph, pa.string()),
        _times(first),
        _times(last),
    ]


def _times(ms: tuple[int | None, ...]) -> pa.Array:
    """Epoch milliseconds as UTC timestamps, converted column-wise."""
    return pa.array(ms, pa.int64()).cast(_TIME)
