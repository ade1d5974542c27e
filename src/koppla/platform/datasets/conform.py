"""Arrow data in a given shape: columns cast by name, the fields it lacks (nested too) null.

A dataset's Delta table takes appends of its own shape only. Rows made under an older shape
of the dataset's schema (a batch staged before the schema grew) or by a generator that knows
only some columns are brought to the table's shape here first.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc


class Nulls:
    """All-null arrays by type, made once at `size` rows and sliced (zero copy) after, so the
    fields rows leave empty cost memory once, not once per record batch."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._made: dict[pa.DataType, pa.Array] = {}

    def of(self, kind: pa.DataType, length: int) -> pa.Array:
        """`length` nulls of type `kind`."""
        made = self._made.get(kind)
        if made is None or len(made) < length:
            made = self._made[kind] = pa.nulls(max(self._size, 2 * length), kind)
        return made.slice(0, length)


def conform(batch: pa.RecordBatch, schema: pa.Schema, nulls: Nulls | None = None) -> pa.RecordBatch:
    """`batch` in `schema`: columns cast by name, nested fields (and columns) it lacks null;
    columns `schema` lacks are dropped."""
    nulls = nulls or Nulls(batch.num_rows)
    columns = [
        _conform(batch.column(field.name), field.type, nulls)
        if field.name in batch.schema.names
        else nulls.of(field.type, batch.num_rows)
        for field in schema
    ]
    return pa.RecordBatch.from_arrays(columns, schema=schema)


def conform_table(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """`table` in `schema` (see `conform`); `table` itself when it has that shape already."""
    if table.schema.equals(schema):
        return table
    nulls = Nulls(min(table.num_rows, 65_536) or 1)
    batches = [conform(batch, schema, nulls) for batch in table.to_batches()]
    return pa.Table.from_batches(batches, schema=schema)


def _conform(array: pa.Array, kind: pa.DataType, nulls: Nulls) -> pa.Array:
    if pa.types.is_null(array.type):
        return nulls.of(kind, len(array))
    if pa.types.is_struct(kind) and pa.types.is_struct(array.type):
        children = {array.type.field(i).name: array.field(i) for i in range(array.type.num_fields)}
        parts = [
            _conform(children[f.name], f.type, nulls)
            if f.name in children
            else nulls.of(f.type, len(array))
            for f in kind
        ]
        return pa.StructArray.from_arrays(parts, fields=list(kind), mask=array.is_null())
    if pa.types.is_list(kind) and pa.types.is_list(array.type):
        values = _conform(array.flatten(), kind.value_type, nulls)
        return pa.ListArray.from_arrays(_offsets(array), values, type=kind, mask=array.is_null())
    if pa.types.is_map(kind) and pa.types.is_map(array.type):
        items = _conform(array.items, kind.item_type, nulls)
        return pa.MapArray.from_arrays(_offsets(array), array.keys, items, type=kind)
    return array.cast(kind)


def _offsets(array: pa.Array) -> pa.Array:
    """The offsets of a list or map array, rebased to start at 0 (as `flatten` does)."""
    offsets = array.offsets
    if len(array) and offsets[0].as_py() != 0:
        offsets = pc.subtract(offsets, offsets[0])
    return offsets
