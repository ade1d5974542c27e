"""How a dataset looks to SQL: its XDM fields as sent, and Koppla's system fields in `_koppla`.

A dataset's Delta table stores its system columns (`_batch_id`, `_unknown`, `_datetimes`) beside
the XDM fields. Queries see them folded into one struct column, `_koppla`, after the XDM ones,
so `SELECT *` shows the event's own fields first and `_koppla.batchId` names a row's batch:

- `_koppla.batchId`: the batch the row came in;
- `_koppla.unknown`: JSON of the fields the sender included that the schema does not define;
- `_koppla.datetimes`: the exact text of each date-time sent in another form than
  `YYYY-MM-DDTHH:MM:SS.sssZ`, by path.

Each query registers the table's Arrow dataset under a private name and puts a view with the
dataset's own name over it; DuckDB inlines the view, so filters and column choices still reach
the scan of the files.
"""

from __future__ import annotations

import pyarrow as pa

from koppla.platform.datasets.tables import SYSTEM_COLUMNS

SYSTEM_FIELD = "_koppla"
"""The struct column holding a dataset row's system fields."""

_FIELDS = {"_batch_id": "batchId", "_unknown": "unknown", "_datetimes": "datetimes"}
_STORED = [name for name, _ in SYSTEM_COLUMNS]


def is_dataset(schema: pa.Schema) -> bool:
    """True when `schema` is a dataset's stored schema (it has the `_batch_id` column; a table
    written by an older Koppla may lack later system columns)."""
    return "_batch_id" in schema.names


def presented_schema(schema: pa.Schema) -> pa.Schema:
    """The schema SQL sees for a dataset stored with `schema`."""
    fields = [field for field in schema if field.name not in _FIELDS]
    system = pa.struct([pa.field(_FIELDS[f.name], f.type) for f in schema if f.name in _FIELDS])
    return pa.schema([*fields, pa.field(SYSTEM_FIELD, system)])


def view_sql(name: str, raw: str, schema: pa.Schema) -> str:
    """`CREATE TEMP VIEW` of the dataset `name` over its registered stored rows `raw`, whose
    stored schema is `schema`."""
    stored = [column for column in _STORED if column in schema.names]
    excluded = ", ".join(_quoted(column) for column in stored)
    packed = ", ".join(f"{_FIELDS[column]} := {_quoted(column)}" for column in stored)
    return (
        f"CREATE TEMP VIEW {_quoted(name)} AS SELECT * EXCLUDE ({excluded}), "
        f"struct_pack({packed}) AS {SYSTEM_FIELD} FROM {_quoted(raw)}"
    )


def _quoted(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'
