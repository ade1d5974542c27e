"""DuckDB types as PostgreSQL sees them: a type oid per column, and each value as PG text.

Values go out in text format only, encoded a column at a time from Arrow: numbers and dates by
Arrow's own casts, timestamps as `2026-12-01 10:00:00.123+00` (TIMESTAMPTZ, in UTC) or without
the offset (TIMESTAMP), booleans `t`/`f`, floats with PG's `NaN`/`Infinity`, bytes as `\\x` hex,
structs, lists and maps as JSON text (type json).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from koppla.core import codec
from koppla.platform.query.pgwire.messages import Field, data_row
from koppla.platform.query.result import Column, json_value

BOOL, BYTEA, INT8, INT2, INT4, TEXT, JSON = 16, 17, 20, 21, 23, 25, 114
FLOAT4, FLOAT8, VARCHAR, DATE, TIME = 700, 701, 1043, 1082, 1083
TIMESTAMP, TIMESTAMPTZ, INTERVAL, NUMERIC, UUID = 1114, 1184, 1186, 1700, 2950

_BY_NAME: dict[str, int] = {
    "BOOLEAN": BOOL,
    "TINYINT": INT2,
    "SMALLINT": INT2,
    "UTINYINT": INT2,
    "INTEGER": INT4,
    "USMALLINT": INT4,
    "BIGINT": INT8,
    "UINTEGER": INT8,
    "UBIGINT": NUMERIC,
    "HUGEINT": NUMERIC,
    "UHUGEINT": NUMERIC,
    "DECIMAL": NUMERIC,
    "FLOAT": FLOAT4,
    "DOUBLE": FLOAT8,
    "VARCHAR": TEXT,
    "DATE": DATE,
    "TIME": TIME,
    "TIMESTAMP": TIMESTAMP,
    "TIMESTAMP_S": TIMESTAMP,
    "TIMESTAMP_MS": TIMESTAMP,
    "TIMESTAMP_NS": TIMESTAMP,
    "TIMESTAMP WITH TIME ZONE": TIMESTAMPTZ,
    "INTERVAL": INTERVAL,
    "BLOB": BYTEA,
    "UUID": UUID,
    "JSON": JSON,
    "STRUCT": JSON,
    "MAP": JSON,
    "UNION": JSON,
}
_SIZES = {BOOL: 1, INT2: 2, INT4: 4, INT8: 8, FLOAT4: 4, FLOAT8: 8, DATE: 4, TIME: 8}
_SIZES |= {TIMESTAMP: 8, TIMESTAMPTZ: 8, INTERVAL: 16, UUID: 16}

Encoded = list[bytes | None]
Encoder = Callable[[pa.Array], Encoded]


def type_oid(duckdb_type: str) -> int:
    """The PostgreSQL type oid for a DuckDB type text (`DECIMAL(18,3)`, `VARCHAR[]`...)."""
    text = duckdb_type.strip().upper()
    if text.endswith("]"):
        return JSON
    name = text.split("(", 1)[0].strip()
    return _BY_NAME.get(name, TEXT)


def fields(columns: tuple[Column, ...]) -> list[Field]:
    """A RowDescription's fields for result columns."""
    out = []
    for column in columns:
        oid = type_oid(column.type)
        out.append(Field(column.name, oid, _SIZES.get(oid, -1)))
    return out


def encode_batch(batch: pa.RecordBatch | pa.Table) -> list[bytes]:
    """Every row of `batch` as a complete DataRow message."""
    columns = [encode_column(column) for column in batch.columns]
    if not columns:
        return [data_row(()) for _ in range(batch.num_rows)]
    return [data_row(values) for values in zip(*columns, strict=True)]


def encode_column(array: pa.Array | pa.ChunkedArray) -> Encoded:
    """The values of one column as PG text (None for NULL)."""
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks() if array.num_chunks != 1 else array.chunk(0)
    if pa.types.is_dictionary(array.type):
        array = pc.cast(array, array.type.value_type)
    return _encoder(array.type)(array)


def _encoder(kind: pa.DataType) -> Encoder:
    if pa.types.is_boolean(kind):
        return _booleans
    if pa.types.is_integer(kind) or pa.types.is_decimal(kind) or pa.types.is_date(kind):
        return _cast_text
    if pa.types.is_floating(kind):
        return _floats
    if pa.types.is_timestamp(kind):
        return _timestamps
    if pa.types.is_time(kind):
        return _times
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return _strings
    if pa.types.is_binary(kind) or pa.types.is_large_binary(kind):
        return _python(lambda v: "\\x" + bytes(v).hex())
    if pa.types.is_fixed_size_binary(kind):
        return _python(lambda v: "\\x" + bytes(v).hex())
    if pa.types.is_map(kind):
        return _python(lambda v: _json(dict(v)))
    if pa.types.is_nested(kind):
        return _python(_json)
    if kind == pa.month_day_nano_interval():
        return _python(_interval)
    if pa.types.is_null(kind):
        return lambda array: [None] * len(array)
    return _python(str)


def _strings(array: pa.Array) -> Encoded:
    return [None if v is None else v.encode("utf-8") for v in array.to_pylist()]


def _cast_text(array: pa.Array) -> Encoded:
    return _strings(pc.cast(array, pa.string()))


def _booleans(array: pa.Array) -> Encoded:
    return [None if v is None else (b"t" if v else b"f") for v in array.to_pylist()]


_FLOAT_WORDS = {"nan": b"NaN", "inf": b"Infinity", "-inf": b"-Infinity"}


def _floats(array: pa.Array) -> Encoded:
    texts = pc.cast(array, pa.string()).to_pylist()
    return [None if v is None else _FLOAT_WORDS.get(v) or v.encode() for v in texts]


def _timestamps(array: pa.Array) -> Encoded:
    zoned = array.type.tz is not None
    micros = pc.cast(array, pa.timestamp("us"), safe=False)  # UTC wall time, no zone
    text = _trimmed(pc.cast(micros, pa.string()))
    if zoned:
        text = pc.binary_join_element_wise(text, "+00", "")
    return _strings(text)


def _times(array: pa.Array) -> Encoded:
    return _strings(_trimmed(pc.cast(pc.cast(array, pa.time64("us")), pa.string())))


def _trimmed(text: pa.Array) -> pa.Array:
    """Fractional seconds without trailing zeros, as PostgreSQL prints them."""
    text = pc.replace_substring_regex(text, r"(\.\d*?)0+$", r"\1")
    return pc.replace_substring_regex(text, r"\.$", "")


def _python(convert: Callable[[Any], str]) -> Encoder:
    def encode(array: pa.Array) -> Encoded:
        return [None if v is None else convert(v).encode("utf-8") for v in array.to_pylist()]

    return encode


def _json(value: Any) -> str:
    return codec.dumps(json_value(value)).decode("utf-8")


def _interval(value: Any) -> str:
    months, days, nanos = int(value.months), int(value.days), int(value.nanoseconds)
    parts = []
    if months:
        years, months = divmod(months, 12)
        if years:
            parts.append(f"{years} year{'s' if abs(years) != 1 else ''}")
        if months:
            parts.append(f"{months} mon{'s' if abs(months) != 1 else ''}")
    if days:
        parts.append(f"{days} day{'s' if abs(days) != 1 else ''}")
    if nanos or not parts:
        sign = "-" if nanos < 0 else ""
        micros = abs(nanos) // 1000
        seconds, fraction = divmod(micros, 1_000_000)
        minutes, seconds = divmod(seconds, 60)
        hours, minutes = divmod(minutes, 60)
        text = f"{sign}{hours:02d}:{minutes:02d}:{seconds:02d}"
        if fraction:
            text += f".{fraction:06d}".rstrip("0")
        parts.append(text)
    return " ".join(parts)
