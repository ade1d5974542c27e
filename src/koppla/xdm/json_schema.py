"""Export of a Koppla schema as a draft-06 JSON Schema (wire names, no `meta:*` keywords)."""

from __future__ import annotations

from typing import Any

from koppla.xdm.types import Array, Map, Object, Scalar, Schema, Type

DRAFT_06 = "http://json-schema.org/draft-06/schema#"


def to_json_schema(schema: Schema) -> dict[str, Any]:
    """The JSON Schema document describing `schema`, as a plain dict ready to serialize."""
    document: dict[str, Any] = {
        "$schema": DRAFT_06,
        "$id": schema.id,
        "title": schema.title,
        "meta:class": schema.xdm_class,
    }
    document.update(_node(schema.root))
    return document


def _node(node: Type) -> dict[str, Any]:
    if isinstance(node, Object):
        return _object(node)
    if isinstance(node, Array):
        return {"type": "array", "items": _node(node.items)}
    if isinstance(node, Map):
        return {"type": "object", "additionalProperties": _node(node.values)}
    return _scalar(node)


def _object(node: Object) -> dict[str, Any]:
    out: dict[str, Any] = {
        "type": "object",
        "properties": {name: _node(child) for name, child in node.fields.items()},
    }
    if node.required:
        out["required"] = [name for name in node.fields if name in node.required]
    if node.description:
        out["description"] = node.description
    return out


def _scalar(node: Scalar) -> dict[str, Any]:
    out: dict[str, Any]
    if node.kind in ("date-time", "date"):
        out = {"type": "string", "format": node.kind}
    else:
        out = {"type": node.kind}
    if node.enum is not None:
        out["enum"] = list(node.enum)
    if node.pattern is not None:
        out["pattern"] = node.pattern
    if node.minimum is not None:
        out["minimum"] = node.minimum
    if node.maximum is not None:
        out["maximum"] = node.maximum
    if node.description:
        out["description"] = node.description
    return out
