"""A stored row back as the JSON object that was sent: the inverse of `tables.stored_row`.

A row holds every field of the schema (null where the record had none) plus the system columns
`_unknown` (JSON: the path of each field the schema does not define → its value) and
`_datetimes` (path → the exact text of each date-time sent in another form than
`YYYY-MM-DDTHH:MM:SS.sssZ`). `sent_record` drops the nulls, writes every date-time as the text
sent, and puts each unknown field back where it was. See docs/export.md for what a row cannot
tell (an explicit `null` sent for a known field, the order of keys, a number's JSON spelling).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any, TypeAlias

from koppla.core import codec
from koppla.xdm.types import Array, Map, Object, Scalar, Schema, Type

Step: TypeAlias = str | int
"""One step down a record: an object's or a map's key, or an array's index."""


def sent_record(row: Mapping[str, Any], schema: Schema) -> dict[str, Any]:
    """The JSON object that was sent, rebuilt from a stored row of `schema`.

    `row` is a row as Arrow gives it (`to_pylist`: maps as dicts or as `(key, value)` pairs).
    Absent fields (nulls) are left out; an object or array sent empty stays; date-times are the
    text sent (else `YYYY-MM-DDTHH:MM:SS.sssZ`), dates `YYYY-MM-DD`; `number` fields are floats
    and `integer` fields ints, as the schema says; unknown fields come back in place, after the
    schema's fields of their object, in the order they were sent.
    """
    datetimes = _pairs(row.get("_datetimes")) or {}
    out = _object(schema.root, row, "", datetimes)
    for path, value in _unknown(row.get("_unknown")).items():
        steps, key = _locate(schema.root, out, path)
        holder: Any = out
        for step in steps:  # an object the row holds as null (see `_in_object`) is made
            holder = holder.setdefault(step, {}) if isinstance(step, str) else holder[step]
        if key not in holder:
            holder[key] = value
    return out


def canonical(moment: datetime) -> str:
    """`moment` as `YYYY-MM-DDTHH:MM:SS.sssZ` in UTC (JavaScript's `toISOString`)."""
    utc = moment.astimezone(UTC) if moment.tzinfo is not None else moment
    return (
        f"{utc.year:04d}-{utc.month:02d}-{utc.day:02d}T{utc.hour:02d}:{utc.minute:02d}:"
        f"{utc.second:02d}.{utc.microsecond // 1000:03d}Z"
    )


def _unknown(text: object) -> dict[str, Any]:
    """A row's `_unknown` JSON: the path of each unknown field → its value, in sent order."""
    if not isinstance(text, str | bytes) or not text:
        return {}
    found = codec.loads(text)
    return {str(path): value for path, value in found.items()} if isinstance(found, dict) else {}


def _pairs(value: object) -> dict[str, Any] | None:
    """A map column's value as a dict (Arrow gives `[(key, value), ...]` unless asked not to)."""
    if isinstance(value, dict):
        return value
    if isinstance(value, list):
        return {str(key): item for key, item in value}
    return None


def _value(node: Type, value: Any, path: str, datetimes: dict[str, Any]) -> Any:
    """A stored value (not None) of `node` as JSON, without nulls."""
    if isinstance(node, Object):
        return _object(node, value, path, datetimes)
    if isinstance(node, Array):
        return [
            None if item is None else _value(node.items, item, f"{path}[{index}]", datetimes)
            for index, item in enumerate(value)
        ]
    if isinstance(node, Map):
        return {
            key: _value(node.values, item, f"{path}.{key}", datetimes)
            for key, item in (_pairs(value) or {}).items()
            if item is not None
        }
    return _scalar(node, value, path, datetimes)


def _object(
    node: Object, value: Mapping[str, Any], path: str, datetimes: dict[str, Any]
) -> dict[str, Any]:
    """An object's fields that hold a value, in the schema's order."""
    prefix = path + "." if path else ""
    return {
        name: _value(child, value[name], prefix + name, datetimes)
        for name, child in node.fields.items()
        if value.get(name) is not None
    }


def _scalar(node: Scalar, value: Any, path: str, datetimes: dict[str, Any]) -> Any:
    """A leaf as JSON: date-times as the text sent, dates ISO, numbers as the schema says."""
    if node.kind == "date-time":
        kept = datetimes.get(path)
        if isinstance(kept, str):
            return kept
        return canonical(value) if isinstance(value, datetime) else value
    if node.kind == "date":
        return value.isoformat() if isinstance(value, date) else value
    if node.kind == "number" and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if node.kind == "integer" and isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _locate(root: Object, record: dict[str, Any], path: str) -> tuple[list[Step], str]:
    """Where the unknown field at `path` goes: the steps to its object in `record`, its key.

    A path is read the way validation wrote it (`a.b`, `a[0].b`, `map.key.b`). When a key that
    holds `.` or `[` makes it ambiguous, the reading that goes deepest into the record wins.
    """
    return _in_object(root, record, path) or ([], path)


Found: TypeAlias = tuple[list[Step], str] | None


def _in_object(node: Object, value: dict[str, Any], rest: str) -> Found:
    for name in sorted(value, key=len, reverse=True):
        child = node.fields.get(name)
        if child is None or isinstance(child, Scalar) or not rest.startswith(name):
            continue
        found = _below(child, value[name], rest[len(name) :])
        if found is not None:
            return [name, *found[0]], found[1]
    if rest in node.fields:
        # Validation never files a defined field as unknown, unless the schema gained the
        # field after the row was stored (then the row holds it as null): it goes there.
        return None if rest in value else ([], rest)
    for name, child in node.fields.items():
        if isinstance(child, Object) and name not in value and rest.startswith(name + "."):
            found = _in_object(child, {}, rest[len(name) + 1 :])  # an object the schema gained
            if found is not None:
                return [name, *found[0]], found[1]
    return [], rest


def _below(node: Type, value: Any, rest: str) -> Found:
    """Inside `value` (of `node`): `rest` is what follows its own path (`.b`, `[0].b`)."""
    if isinstance(node, Object) and rest.startswith(".") and isinstance(value, dict):
        return _in_object(node, value, rest[1:])
    if isinstance(node, Array) and rest.startswith("[") and isinstance(value, list):
        close = rest.find("]")
        digits = rest[1:close] if close > 0 else ""
        if not digits.isdigit() or int(digits) >= len(value) or value[int(digits)] is None:
            return None
        found = _below(node.items, value[int(digits)], rest[close + 1 :])
        return None if found is None else ([int(digits), *found[0]], found[1])
    if isinstance(node, Map) and rest.startswith(".") and isinstance(value, dict):
        for key in sorted(value, key=len, reverse=True):
            if rest.startswith(key, 1):
                found = _below(node.values, value[key], rest[1 + len(key) :])
                if found is not None:
                    return [key, *found[0]], found[1]
    return None
