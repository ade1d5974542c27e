"""A schema as msgspec Structs: the C-speed check of a JSON document with nothing to report.

`compile_structs(schema)` turns each `Object` of a schema into a msgspec `Struct` type (unknown
fields forbidden, nulls the default and left out of the output), each scalar into the msgspec
type that accepts exactly the values the full check (`koppla.xdm.validation`) passes through
unchanged or normalizes without a note, and `Converter.convert(document)` turns a document into
the record the full check would make, or raises `Unsure` at anything the full check might
report or record (an issue, an unknown field, a date-time in another form than
`YYYY-MM-DDTHH:MM:SS.sssZ`, a null map value). `Unsure` says nothing about validity: the caller
then runs the slower checks, whose answer is the one that counts. So the only promise here is:
what `convert` returns equals the full check's record, which has no issue, no unknown field and
no date-time text to keep.

Only for documents decoded from JSON (dicts, lists, str, int, float, bool, None): msgspec also
takes a tuple where a list is expected, which the full check reports.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from itertools import count
from typing import Annotated, Any, Literal

import msgspec

from koppla.xdm.types import Array, Map, Object, Scalar, Schema, Type

CANONICAL_DATE_TIME = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z\Z"
"""The one date-time text stored without a note (JavaScript's `toISOString`)."""

_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1
_BUILTINS = (datetime, date)


class Unsure(Exception):
    """The document needs the full check (it may well be valid)."""


class NotCompilable(ValueError):
    """The schema has a shape this form cannot express; use the full check alone."""


@dataclass(frozen=True, eq=False)
class Converter:
    """A schema compiled to msgspec Structs (see the module docstring)."""

    schema: Schema
    root: type[msgspec.Struct]

    def convert(self, document: object) -> dict[str, Any]:
        """The normalized record of a JSON-decoded document; `Unsure` when it needs the full
        check."""
        try:
            converted = msgspec.convert(document, self.root)
            record: dict[str, Any] = msgspec.to_builtins(converted, builtin_types=_BUILTINS)
        except Exception:  # whatever stopped it, the full check has the answer
            raise Unsure from None
        return record


def compile_structs(schema: Schema) -> Converter:
    """`schema` as Structs; raises `NotCompilable` for a date-time outside an object's field."""
    names = count()
    return Converter(schema, _struct(schema.root, schema.id, names))


def _struct(node: Object, where: str, names: count[int]) -> type[msgspec.Struct]:
    """One Struct type for an object node: fields renamed to their XDM names."""
    fields: list[tuple[str, Any] | tuple[str, Any, Any]] = []
    rename: dict[str, str] = {}
    stamps: list[str] = []
    for index, (name, child) in enumerate(node.fields.items()):
        attribute = f"f{index}"
        rename[attribute] = name
        kind = _type(child, f"{where}.{name}", names)
        if isinstance(child, Scalar) and child.kind == "date-time":
            stamps.append(attribute)
        if name in node.required:
            fields.append((attribute, kind))
        else:
            fields.append((attribute, kind | None, None))
    namespace = {"__post_init__": _stamps_post_init(tuple(stamps))} if stamps else None
    return msgspec.defstruct(
        f"X{next(names)}",
        fields,
        kw_only=True,
        forbid_unknown_fields=True,
        omit_defaults=True,
        gc=False,  # short-lived and acyclic: kept out of the collector's way (see gc_pause)
        rename=rename,
        namespace=namespace,
    )


def _stamps_post_init(attributes: tuple[str, ...]) -> Callable[[Any], None]:
    """A `__post_init__` turning the canonical date-time texts of `attributes` into UTC
    datetimes (a text `fromisoformat` refuses raises `ValueError`: msgspec reports it)."""

    def post_init(self: Any) -> None:
        for attribute in attributes:
            text = getattr(self, attribute)
            if text is not None:
                setattr(self, attribute, datetime.fromisoformat(text).astimezone(UTC))

    return post_init


def _type(node: Type, where: str, names: count[int]) -> Any:
    if isinstance(node, Object):
        return _struct(node, where, names)
    if isinstance(node, Array):
        if isinstance(node.items, Scalar) and node.items.kind == "date-time":
            raise NotCompilable(f"{where}: date-times as array items")
        return list[_type(node.items, where + "[]", names)]  # type: ignore[misc]
    if isinstance(node, Map):
        if isinstance(node.values, Scalar) and node.values.kind == "date-time":
            raise NotCompilable(f"{where}: date-times as map values")
        return dict[str, _type(node.values, where + "{}", names)]  # type: ignore[misc]
    return _scalar(node)


def _scalar(node: Scalar) -> Any:
    """The msgspec type taking what the full check takes of `node` without a note."""
    if node.kind == "string":
        return _string(node)
    if node.kind == "number":
        low, high = node.minimum, node.maximum
        if low is None and high is None:
            return float
        return Annotated[float, msgspec.Meta(ge=low, le=high)]
    if node.kind == "integer":
        low = _INT64_MIN if node.minimum is None else max(_INT64_MIN, math.ceil(node.minimum))
        high = _INT64_MAX if node.maximum is None else min(_INT64_MAX, math.floor(node.maximum))
        return Annotated[int, msgspec.Meta(ge=low, le=high)]
    if node.kind == "boolean":
        return bool
    if node.kind == "date":
        return date
    return Annotated[str, msgspec.Meta(pattern=CANONICAL_DATE_TIME)]


def _string(node: Scalar) -> Any:
    if node.enum is None:
        if node.pattern is None:
            return str
        return Annotated[str, msgspec.Meta(pattern=node.pattern)]
    allowed = tuple(node.enum)
    if node.pattern is not None:  # both must hold: only the enum values the pattern finds
        search = re.compile(node.pattern).search
        allowed = tuple(value for value in allowed if search(value))
    if not allowed:
        return Annotated[str, msgspec.Meta(pattern=r"(?!)")]  # nothing passes
    return Literal[allowed]
