"""Bind parameters as Python values for DuckDB's `$1`, `$2` placeholders.

Text-format values stay strings unless Parse gave the parameter a type oid, which converts them
(integers, floats, numerics, booleans, dates, timestamps); DuckDB casts the rest against their use.
Binary-format values are read for the fixed-size types drivers send that way (integers, floats,
booleans, bytea, text, uuid). Anything unreadable raises `ParameterError` naming the parameter.
"""

from __future__ import annotations

import datetime as dt
import struct
import uuid
from collections.abc import Callable, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from koppla.platform.query.pgwire import types as pg


class ParameterError(ValueError):
    """A parameter value that cannot be read (SQLSTATE 22P02)."""


_TRUE = {"t", "true", "on", "yes", "y", "1"}
_FALSE = {"f", "false", "off", "no", "n", "0"}


def _bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError(f"not a boolean: {text!r}")


def _decimal(text: str) -> Decimal:
    try:
        return Decimal(text)
    except InvalidOperation as exc:
        raise ValueError(f"not a number: {text!r}") from exc


def _timestamp(text: str) -> dt.datetime:
    value = text.strip().replace(" ", "T", 1)
    if value.endswith(("+00", "-00")) or (value[-3:-2] in "+-" and value[-2:].isdigit()):
        value += ":00"
    return dt.datetime.fromisoformat(value)


_TEXT: dict[int, Callable[[str], Any]] = {
    pg.INT2: int,
    pg.INT4: int,
    pg.INT8: int,
    pg.FLOAT4: float,
    pg.FLOAT8: float,
    pg.NUMERIC: _decimal,
    pg.BOOL: _bool,
    pg.DATE: dt.date.fromisoformat,
    pg.TIMESTAMP: _timestamp,
    pg.TIMESTAMPTZ: _timestamp,
    pg.UUID: uuid.UUID,
}
_BINARY: dict[int, Callable[[bytes], Any]] = {
    pg.INT2: lambda b: struct.unpack("!h", b)[0],
    pg.INT4: lambda b: struct.unpack("!i", b)[0],
    pg.INT8: lambda b: struct.unpack("!q", b)[0],
    pg.FLOAT4: lambda b: struct.unpack("!f", b)[0],
    pg.FLOAT8: lambda b: struct.unpack("!d", b)[0],
    pg.BOOL: lambda b: b != b"\x00",
    pg.BYTEA: bytes,
    pg.TEXT: lambda b: b.decode("utf-8"),
    pg.VARCHAR: lambda b: b.decode("utf-8"),
    0: lambda b: b.decode("utf-8"),
    pg.UUID: lambda b: uuid.UUID(bytes=b),
}


def bind_values(
    values: Sequence[bytes | None], formats: Sequence[int], oids: Sequence[int]
) -> list[Any]:
    """The Python values of a Bind's parameters (formats: none, one for all, or one each)."""
    if len(formats) not in (0, 1, len(values)):
        raise ParameterError(f"{len(formats)} parameter formats for {len(values)} parameters")
    out = []
    for index, raw in enumerate(values):
        fmt = formats[index] if len(formats) > 1 else (formats[0] if formats else 0)
        oid = oids[index] if index < len(oids) else 0
        out.append(None if raw is None else _value(index + 1, raw, fmt, oid))
    return out


def _value(number: int, raw: bytes, fmt: int, oid: int) -> Any:
    try:
        if fmt == 1:
            reader = _BINARY.get(oid)
            if reader is None:
                raise ValueError(f"binary format is not supported for type oid {oid}")
            return reader(raw)
        text = raw.decode("utf-8")
        convert = _TEXT.get(oid)
        return text if convert is None else convert(text)
    except (ValueError, struct.error, UnicodeDecodeError) as exc:
        raise ParameterError(f"parameter ${number}: {exc}") from exc
