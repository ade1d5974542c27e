"""Arrow layout of a schema: the columnar shape validated records are stored and queried in."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pyarrow as pa

from koppla.xdm.types import Array, Map, Object, Scalar, Schema, Type

_SCALARS: Mapping[str, pa.DataType] = {
    "string": pa.string(),
    "number": pa.float64(),
    "integer": pa.int64(),
    "boolean": pa.bool_(),
    "date-time": pa.timestamp("us", tz="UTC"),
    "date": pa.date32(),
}


def arrow_type(node: Type) -> pa.DataType:
    """The Arrow type of one schema node (object→struct, array→list, map→map<string, …>)."""
    if isinstance(node, Object):
        return pa.struct([pa.field(name, arrow_type(child)) for name, child in node.fields.items()])
    if isinstance(node, Array):
        return pa.list_(arrow_type(node.items))
    if isinstance(node, Map):
        return pa.map_(pa.string(), arrow_type(node.values))
    return _scalar_type(node)


def _scalar_type(node: Scalar) -> pa.DataType:
    return _SCALARS[node.kind]


def arrow_schema(schema: Schema) -> pa.Schema:
    """One column per root field, in definition order; every column is nullable."""
    fields = [pa.field(name, arrow_type(child)) for name, child in schema.root.fields.items()]
    return pa.schema(fields, metadata={"xdm:schema": schema.id, "xdm:class": schema.xdm_class})


def to_arrow(schema: Schema, records: Sequence[Mapping[str, Any]]) -> pa.Table:
    """A table of validated records (`Validated.record`); absent fields become nulls."""
    return pa.Table.from_pylist(list(records), schema=arrow_schema(schema))
