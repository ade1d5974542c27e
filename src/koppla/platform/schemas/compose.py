"""Composition of tenant schemas: a field group's JSON Schema read into the DSL, and merged
onto a base schema additively. Pure: values in, values out.

Reading (`parse_field_group`) takes the fields of a field group document: the `definitions`
its `allOf` refers to (`{"$ref": "#/definitions/<name>"}`; every definition when there is no
`allOf`; `allOf` entries naming other resources, such as the class, add no fields here), plus
`properties` at the top. Types: `object` (with `properties`, or with `additionalProperties`
and no `properties`: a map), `array` (with `items`), `string` (`format` `date` or `date-time`
make dates; `enum` is enforced), `number` and `integer` (`minimum`/`maximum` enforced),
`boolean`. `description` is kept; `title`, `meta:*`, `required`, `pattern`, `minLength`,
`maxLength`, `default` and other formats are accepted and not enforced. A `$ref` to another
resource inside the fields (a data type) is refused.

Limits: nesting at most `MAX_DEPTH` levels, at most `MAX_FIELDS` fields per field group, field
names matching `NAME`, at most `MAX_ENUM` enum values of at most `MAX_ENUM_CHARS` characters,
at most `MAX_DEFINITIONS` definitions.

Merging (`merge`) is additive: a field the schema has keeps its type (an object may gain
fields); a new field must be the tenant namespace object (`_<tenantId>`, anywhere in the tree)
or lie inside one; anything else is refused with `ComposeError` naming the field's path
(`productListItems[]._acme.engraving`: `[]` for array items, `{}` for map values).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from koppla.core.errors import InvalidInput
from koppla.xdm.types import Array, Map, Object, Scalar, Schema, Type

MAX_DEPTH = 32
"""Deepest nesting of fields in a field group."""
MAX_FIELDS = 1000
"""Most fields (objects included) one field group defines."""
MAX_SCHEMA_FIELDS = 2000
"""Most fields (objects included) a tenant schema adds to its base, all field groups together:
every field is a column of the dataset's table, and each change rewrites the table's schema."""
MAX_ENUM = 1000
MAX_ENUM_CHARS = 1024
MAX_DEFINITIONS = 100
MAX_DESCRIPTION_CHARS = 4096
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,254}")
"""What a field name may be."""
_LOCAL_REF = "#/definitions/"


class ComposeError(InvalidInput):
    """A field group that cannot be read or merged: the field's path and the reason."""

    def __init__(self, path: str, reason: str, *, source: str = "") -> None:
        where = path or "the field group"
        tail = f" (field group {source!r})" if source else ""
        super().__init__(f"{where} {reason}{tail}", field=path or None)
        self.path = path
        self.reason = reason

    def within(self, source: str) -> ComposeError:
        """The same refusal, naming the field group it comes from."""
        return ComposeError(self.path, self.reason, source=source)


def parse_field_group(document: Mapping[str, Any]) -> Object:
    """The fields a field group document defines, as one DSL object (see the module doc)."""
    budget = [MAX_FIELDS]
    root = Object({})
    for part in _parts(document):
        found = _node(part, "", 0, budget)
        if not isinstance(found, Object):
            raise ComposeError("", "must define an object of fields")
        root = _merge_object(root, found, None, "", False)
    return root


def merge(base: Object, addition: Object, namespace: str) -> Object:
    """`base` with `addition`'s fields added; `ComposeError` when a field's type would change
    or a new field lies outside the tenant `namespace` object."""
    return _merge_object(base, addition, namespace, "", False)


def compose(
    base: Schema, schema_id: str, title: str, groups: Sequence[tuple[str, Object]], namespace: str
) -> Schema:
    """The schema `schema_id`: `base` with each `(field group title, fields)` merged in order
    (a refusal names the field group)."""
    root = base.root
    for source, fields in groups:
        try:
            root = merge(root, fields, namespace)
        except ComposeError as error:
            raise error.within(source) from None
    return Schema(id=schema_id, title=title, xdm_class=base.xdm_class, root=root)


def field_count(node: Type) -> int:
    """How many fields `node` holds, at every depth (objects, arrays' items and maps' values
    counted through)."""
    if isinstance(node, Object):
        return sum(1 + field_count(child) for child in node.fields.values())
    if isinstance(node, Array):
        return field_count(node.items)
    if isinstance(node, Map):
        return field_count(node.values)
    return 0


def check_size(base: Object, composed: Object) -> None:
    """`ComposeError` when `composed` adds more than `MAX_SCHEMA_FIELDS` fields to `base`."""
    added = field_count(composed) - field_count(base)
    if added > MAX_SCHEMA_FIELDS:
        raise ComposeError(
            "", f"adds {added} fields to its base; a schema may add at most {MAX_SCHEMA_FIELDS}"
        )


def check_superset(old: Object, new: Object, path: str = "") -> None:
    """`ComposeError` unless `new` keeps every field of `old` with the same type."""
    for name, before in old.fields.items():
        here = _join(path, name)
        after = new.fields.get(name)
        if after is None:
            raise ComposeError(here, "was removed; a field cannot be removed")
        _check_kept(before, after, here)


def check_namespaced(fields: Object, namespace: str, path: str = "") -> None:
    """`ComposeError` unless every leaf of `fields` lies inside a `namespace` object (the
    check for a field group not yet part of any schema)."""
    for name, node in fields.fields.items():
        here = _join(path, name)
        if name == namespace:
            if not isinstance(node, Object):
                raise ComposeError(here, "is the tenant namespace and must be an object")
            continue
        inner = _inner(node, here)
        if inner is None:
            raise ComposeError(here, _outside(namespace))
        check_namespaced(inner[0], namespace, inner[1])


def kind_name(node: Type) -> str:
    """A type as a word: a scalar's kind, or `object`, `array`, `map`."""
    if isinstance(node, Scalar):
        return node.kind
    if isinstance(node, Object):
        return "object"
    return "array" if isinstance(node, Array) else "map"


def _inner(node: Type, path: str) -> tuple[Object, str] | None:
    """The object under `node` (itself, an array's items, a map's values), or None."""
    while not isinstance(node, Object):
        if isinstance(node, Array):
            node, path = node.items, path + "[]"
        elif isinstance(node, Map):
            node, path = node.values, path + "{}"
        else:
            return None
    return node, path


def _check_kept(before: Type, after: Type, path: str) -> None:
    if isinstance(before, Object) and isinstance(after, Object):
        check_superset(before, after, path)
    elif isinstance(before, Array) and isinstance(after, Array):
        _check_kept(before.items, after.items, path + "[]")
    elif isinstance(before, Map) and isinstance(after, Map):
        _check_kept(before.values, after.values, path + "{}")
    elif not (isinstance(before, Scalar) and isinstance(after, Scalar)) or (
        before.kind != after.kind
    ):
        raise ComposeError(path, _changed(before, after))
    else:
        _check_not_narrowed(before, after, path)


def _check_not_narrowed(before: Scalar, after: Scalar, path: str) -> None:
    """`ComposeError` when `after` refuses a value `before` took: an enum that lost values
    (or appeared), a bound that appeared or tightened. Records stored under `before` would
    no longer validate, and new ones like them would go to the quarantine."""
    if after.enum is not None and (before.enum is None or not set(before.enum) <= set(after.enum)):
        raise ComposeError(path, "may not narrow its allowed values (enum)")
    if after.minimum is not None and (before.minimum is None or after.minimum > before.minimum):
        raise ComposeError(path, "may not raise its minimum")
    if after.maximum is not None and (before.maximum is None or after.maximum < before.maximum):
        raise ComposeError(path, "may not lower its maximum")


def _merge_object(
    existing: Object, addition: Object, namespace: str | None, path: str, inside: bool
) -> Object:
    fields = dict(existing.fields)
    for name, node in addition.fields.items():
        here = _join(path, name)
        within = inside or name == namespace
        if name in fields:
            fields[name] = _merge_node(fields[name], node, namespace, here, within)
            continue
        if _empty(node):
            continue  # an object without fields adds nothing (and could not be stored)
        if namespace is not None and not within:
            raise ComposeError(here, _outside(namespace))
        twin = next((other for other in fields if other.lower() == name.lower()), None)
        if twin is not None:
            raise ComposeError(
                here, f"differs from {_join(path, twin)} only by case; tables cannot hold both"
            )
        if name == namespace and not isinstance(node, Object):
            raise ComposeError(here, "is the tenant namespace and must be an object")
        fields[name] = node
    return Object(fields, existing.required, existing.description)


def _empty(node: Type) -> bool:
    """True for an object (or array or map of them) with no field at all, however deep."""
    if isinstance(node, Object):
        return all(_empty(child) for child in node.fields.values())
    if isinstance(node, Array):
        return _empty(node.items)
    if isinstance(node, Map):
        return _empty(node.values)
    return False


def _merge_node(old: Type, new: Type, namespace: str | None, path: str, inside: bool) -> Type:
    if isinstance(old, Object) and isinstance(new, Object):
        return _merge_object(old, new, namespace, path, inside)
    if isinstance(old, Array) and isinstance(new, Array):
        return Array(_merge_node(old.items, new.items, namespace, path + "[]", inside))
    if isinstance(old, Map) and isinstance(new, Map):
        return Map(_merge_node(old.values, new.values, namespace, path + "{}", inside))
    if isinstance(old, Scalar) and isinstance(new, Scalar) and old.kind == new.kind:
        return old
    if namespace is None:
        reason = f"is defined twice, as {kind_name(old)} and as {kind_name(new)}"
        raise ComposeError(path, reason)
    raise ComposeError(path, _changed(old, new))


def _changed(old: Type, new: Type) -> str:
    return (
        f"is {kind_name(old)} in the schema; a field's type cannot change "
        f"(here it is {kind_name(new)})"
    )


def _outside(namespace: str) -> str:
    return f"is outside the tenant namespace: a new field must be in an object named {namespace}"


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _parts(document: Mapping[str, Any]) -> list[Any]:
    """The JSON Schema objects whose fields the field group defines, in order."""
    definitions = document.get("definitions", {})
    if not isinstance(definitions, dict):
        raise ComposeError("", "has `definitions` that is not an object")
    if len(definitions) > MAX_DEFINITIONS:
        raise ComposeError("", f"has more than {MAX_DEFINITIONS} definitions")
    all_of = document.get("allOf")
    parts: list[Any]
    if all_of is None:
        parts = list(definitions.values())
    elif not isinstance(all_of, list):
        raise ComposeError("", "has `allOf` that is not an array")
    else:
        parts = [_referred(entry, index, definitions) for index, entry in enumerate(all_of)]
        parts = [p for p in parts if p is not None]
    if "properties" in document:
        parts.append({"type": "object", "properties": document["properties"]})
    return parts


def _referred(entry: Any, index: int, definitions: Mapping[str, Any]) -> Any:
    ref = entry.get("$ref") if isinstance(entry, dict) else None
    if not isinstance(ref, str):
        raise ComposeError("", f"has allOf[{index}] without a `$ref`")
    if not ref.startswith(_LOCAL_REF):
        return None  # a class or behaviour: its fields are the base schema's
    name = ref[len(_LOCAL_REF) :]
    if name not in definitions:
        raise ComposeError("", f"has allOf[{index}] referring to no definition: {ref!r}")
    return definitions[name]


def _node(node: Any, path: str, depth: int, budget: list[int]) -> Type:
    if not isinstance(node, dict):
        raise ComposeError(path, "must be described by a JSON Schema object")
    if depth > MAX_DEPTH:
        raise ComposeError(path, f"is nested deeper than {MAX_DEPTH} levels")
    if "$ref" in node:
        raise ComposeError(path, "refers to another resource ($ref); define its fields inline")
    kind = _type_of(node, path)
    description = _description(node)
    if kind == "object":
        return _object(node, path, depth, budget, description)
    if kind == "array":
        if "items" not in node:
            raise ComposeError(path, "is an array without `items`")
        return Array(_node(node["items"], path + "[]", depth + 1, budget))
    if kind == "string":
        return _string(node, path, description)
    if kind in ("number", "integer"):
        return Scalar(
            "number" if kind == "number" else "integer",
            minimum=_bound(node, "minimum", path),
            maximum=_bound(node, "maximum", path),
            description=description,
        )
    if kind == "boolean":
        return Scalar("boolean", description=description)
    raise ComposeError(path, f"has an unsupported type {kind!r}")


def _type_of(node: Mapping[str, Any], path: str) -> str:
    kind = node.get("type")
    if kind is None and "properties" in node:
        return "object"
    if isinstance(kind, list):
        kinds = [k for k in kind if k != "null"]
        kind = kinds[0] if len(kinds) == 1 else None
    if not isinstance(kind, str):
        raise ComposeError(path, "needs one `type`")
    return kind


def _object(
    node: Mapping[str, Any], path: str, depth: int, budget: list[int], description: str
) -> Type:
    properties = node.get("properties")
    extra = node.get("additionalProperties")
    if properties is None and isinstance(extra, dict):
        return Map(_node(extra, path + "{}", depth + 1, budget))
    if properties is None:
        properties = {}
    if not isinstance(properties, dict):
        raise ComposeError(path, "has `properties` that is not an object")
    fields: dict[str, Type] = {}
    lowered: dict[str, str] = {}
    for name, child in properties.items():
        here = _join(path, name)
        if not NAME.fullmatch(name):
            raise ComposeError(
                here, "is not a valid field name (a letter or _, then letters, digits or _)"
            )
        twin = lowered.setdefault(name.lower(), name)
        if twin != name:
            raise ComposeError(
                here, f"differs from {_join(path, twin)} only by case; tables cannot hold both"
            )
        budget[0] -= 1
        if budget[0] < 0:
            raise ComposeError(here, f"is past the {MAX_FIELDS} fields a field group may define")
        found = _node(child, here, depth + 1, budget)
        if not _empty(found):  # an object without fields adds nothing (and could not be stored)
            fields[name] = found
    return Object(fields, description=description)


def _string(node: Mapping[str, Any], path: str, description: str) -> Scalar:
    form = node.get("format")
    if form in ("date", "date-time"):
        return Scalar(form, description=description)
    enum = node.get("enum")
    if enum is None:
        return Scalar("string", description=description)
    if (
        not isinstance(enum, list)
        or not enum
        or len(enum) > MAX_ENUM
        or not all(isinstance(v, str) and len(v) <= MAX_ENUM_CHARS for v in enum)
    ):
        reason = f"has an enum that is not 1 to {MAX_ENUM} strings of at most {MAX_ENUM_CHARS}"
        raise ComposeError(path, reason + " characters")
    return Scalar("string", enum=tuple(enum), description=description)


def _bound(node: Mapping[str, Any], key: str, path: str) -> float | None:
    value = node.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ComposeError(path, f"has a `{key}` that is not a number")
    return float(value)


def _description(node: Mapping[str, Any]) -> str:
    text = node.get("description")
    return text[:MAX_DESCRIPTION_CHARS] if isinstance(text, str) else ""
