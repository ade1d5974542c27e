"""A dataset's Delta table: its schema (XDM fields plus system columns), creation and upgrade."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import pyarrow as pa
from deltalake import DeltaTable, write_deltalake
from deltalake.exceptions import CommitFailedError, DeltaError

from koppla.core import codec
from koppla.core.layout import Layout
from koppla.platform.catalog.models import Dataset
from koppla.platform.datasets import quarantine
from koppla.platform.datasets.location import TableLocation, local_path
from koppla.xdm.arrow import arrow_schema, to_arrow
from koppla.xdm.registry import SchemaRegistry
from koppla.xdm.types import Schema
from koppla.xdm.validation import Validated

log = logging.getLogger(__name__)

SYSTEM_COLUMNS = [
    ("_batch_id", pa.string()),
    ("_unknown", pa.string()),
    ("_datetimes", pa.map_(pa.string(), pa.string())),
]


def dataset_arrow_schema(schema: Schema) -> pa.Schema:
    """The Delta table schema of a dataset: its XDM fields plus Koppla's system columns.

    `_batch_id` names the batch a row came in; `_unknown` holds, as JSON, fields the sender
    included that the schema does not define (kept, not dropped); `_datetimes` maps the path of
    each date-time sent in another form than `YYYY-MM-DDTHH:MM:SS.sssZ` to the exact text sent
    (`_datetimes['placeContext.localTime']` keeps the shopper's offset), null when there is none.
    """
    base = arrow_schema(schema)
    for name, kind in SYSTEM_COLUMNS:
        base = base.append(pa.field(name, kind))
    return base


def stored_row(outcome: Validated, batch_id: str) -> dict[str, Any]:
    """The row a valid record is stored as: its normalized fields plus the system columns."""
    row = dict(outcome.record)
    row["_batch_id"] = batch_id
    row["_unknown"] = codec.dumps(outcome.unknown).decode() if outcome.unknown else None
    row["_datetimes"] = outcome.datetimes or None
    return row


def rows_table(
    schema: Schema, rows: Sequence[dict[str, Any]]
) -> tuple[pa.Table | None, list[int], list[tuple[int, str]]]:
    """The Arrow table of stored rows (see `stored_row`), the indexes of the rows in it, and
    `(index, reason)` of each row that cannot be converted.

    Validation should make every row convertible; if one still is not, the rows are converted
    one at a time to find it, so one bad row never stops the others. None when no row is left.
    """
    if not rows:
        return None, [], []
    try:
        return _table(schema, rows), list(range(len(rows))), []
    except Exception:  # found row by row below
        log.exception("rows could not be converted to Arrow; isolating the bad ones")
    good: list[int] = []
    bad: list[tuple[int, str]] = []
    for index, row in enumerate(rows):
        try:
            _table(schema, [row])
        except Exception as error:  # any failure here is this row's alone
            bad.append((index, f"{type(error).__name__}: {error}"))
        else:
            good.append(index)
    table = _table(schema, [rows[i] for i in good]) if good else None
    return table, good, bad


def _table(schema: Schema, rows: Sequence[dict[str, Any]]) -> pa.Table:
    table = to_arrow(schema, rows)
    for name, kind in SYSTEM_COLUMNS:
        table = table.append_column(pa.field(name, kind), pa.array([r[name] for r in rows], kind))
    return table


def add_missing_columns(table: DeltaTable, schema: pa.Schema) -> list[str]:
    """Add to `table` the fields of `schema` it lacks, nested ones included; their paths.

    A table created before a field joined the schema (a system column such as `_datetimes`, or
    an XDM field added to a struct) is upgraded in one Delta commit (an empty append that merges
    the schema): its existing rows read the new fields as null, and new rows can be appended.
    When another process changes the table at the same moment (its commit wins), the table is
    read again and what is still missing added; fields it added are not reported here.
    """
    for attempt in range(1, _GROW_ATTEMPTS + 1):
        have = _field_paths(pa.schema(table.schema().to_arrow()))
        absent = _field_paths(schema) - have
        missing = sorted(p for p in absent if not any(_inside(p, q) for q in absent))
        if not missing:
            return []
        try:
            write_deltalake(table, schema.empty_table(), mode="append", schema_mode="merge")
        except CommitFailedError:
            if attempt == _GROW_ATTEMPTS:
                raise
            table.update_incremental()
            continue
        log.info("added fields %s to the Delta table at %s", ", ".join(missing), table.table_uri)
        return missing
    return []  # not reached: the last attempt returns or raises


_GROW_ATTEMPTS = 8
"""Tries of a schema change that keeps losing to other writers' commits."""


def _inside(path: str, other: str) -> bool:
    """True when `path` is a field nested somewhere under `other`."""
    return len(path) > len(other) and path.startswith(other) and path[len(other)] in ".[{"


def _field_paths(schema: pa.Schema) -> set[str]:
    """Every field of `schema` as a dotted path (`a.b`, list items as `a[]`, maps as `a{}`)."""
    paths: set[str] = set()
    pending: list[tuple[str, pa.DataType]] = [(field.name, field.type) for field in schema]
    while pending:
        path, kind = pending.pop()
        paths.add(path)
        if pa.types.is_struct(kind):
            pending.extend((f"{path}.{child.name}", child.type) for child in kind)
        elif pa.types.is_list(kind) or pa.types.is_large_list(kind):
            pending.append((f"{path}[]", kind.value_type))
        elif pa.types.is_map(kind):
            pending.append((f"{path}{{}}", kind.item_type))
    return paths


def provision(
    layout: Layout,
    registry: SchemaRegistry,
    dataset: Dataset,
    *,
    location: TableLocation | None = None,
) -> None:
    """Create the dataset's empty Delta table (and the quarantine's) unless they exist.

    A dataset is then queryable, empty, from the moment it is created. An existing table gets
    the columns it lacks (`add_missing_columns`). The tables are at `location` (the
    deployment's `table_location`); by default under `layout`'s home.
    """
    tables = location or TableLocation.local(layout.datasets)
    options = tables.storage_options()
    table = tables.table(dataset.id)
    schema = dataset_arrow_schema(registry.get(dataset.schema_id))
    if DeltaTable.is_deltatable(table, storage_options=options):
        add_missing_columns(DeltaTable(table, storage_options=options), schema)
    else:
        _create_table(table, schema, options)
    if not DeltaTable.is_deltatable(tables.quarantine(), storage_options=options):
        _create_table(tables.quarantine(), quarantine.SCHEMA, options)


def _create_table(table: str, schema: pa.Schema, options: dict[str, str] | None) -> None:
    """An empty Delta table at `table` (a path or URI), unless another process made it first."""
    path = local_path(table)
    if path is not None:
        path.mkdir(parents=True, exist_ok=True)
    try:
        DeltaTable.create(table, schema=schema, mode="ignore", storage_options=options)
    except DeltaError:
        if not DeltaTable.is_deltatable(table, storage_options=options):
            raise
