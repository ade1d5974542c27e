"""The custom order attributes a schema defines and a record carries.

Custom order attributes sit in the tenant namespace (`_<tenantId>`) at two levels: the order
(`commerce.order._<tenantId>.<name>`) and each order item (`productListItems[]._<tenantId>.<name>`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any, Literal, TypeAlias

from koppla.xdm.types import Array, Map, Object, Scalar, Schema, Type

Level: TypeAlias = Literal["order", "item"]
LEVELS: tuple[Level, ...] = ("order", "item")
Kind: TypeAlias = str
"""A value's kind as the table shows it: `string`, `boolean`, `number`, `integer`, `date`,
`date-time`, `object`, `array` or `null`."""

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_DATE_TIME = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([Zz]|[+-]\d{2}:?\d{2})?"
)


def defined(schema: Schema, namespace: str) -> dict[Level, dict[str, Kind]]:
    """The custom attributes `schema` defines at each level, with their XDM types."""
    found: dict[Level, dict[str, Kind]] = {"order": {}, "item": {}}
    commerce = schema.root.fields.get("commerce")
    order = _child(commerce, "order")
    found["order"] = _fields(_child(order, namespace))
    items = schema.root.fields.get("productListItems")
    if isinstance(items, Array):
        found["item"] = _fields(_child(items.items, namespace))
    return found


def carried(document: Mapping[str, Any], namespace: str) -> Iterator[tuple[Level, str, Any]]:
    """Each custom attribute in `document` (a record as sent): its level, name and value."""
    commerce = document.get("commerce")
    order = commerce.get("order") if isinstance(commerce, dict) else None
    own = order.get(namespace) if isinstance(order, dict) else None
    if isinstance(own, dict):
        for name, value in own.items():
            yield "order", str(name), value
    items = document.get("productListItems")
    if isinstance(items, list):
        for item in items:
            own = item.get(namespace) if isinstance(item, dict) else None
            if isinstance(own, dict):
                for name, value in own.items():
                    yield "item", str(name), value


def kind_of(value: Any) -> Kind:
    """The kind of a value as sent (a JSON value): dates and date-times are strings that look
    like them."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        if _DATE.fullmatch(value):
            return "date"
        if _DATE_TIME.fullmatch(value):
            return "date-time"
        return "string"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    return type(value).__name__


def kind_of_type(node: Type) -> Kind:
    """The kind an XDM type holds (`integer` and `number` both show as they are)."""
    if isinstance(node, Scalar):
        return node.kind
    if isinstance(node, Array):
        return "array"
    return "object"


def _child(node: Type | None, name: str) -> Type | None:
    if isinstance(node, Object):
        return node.fields.get(name)
    return None


def _fields(node: Type | None) -> dict[str, Kind]:
    if isinstance(node, Object):
        return {name: kind_of_type(child) for name, child in node.fields.items()}
    if isinstance(node, Map):
        return {}
    return {}
