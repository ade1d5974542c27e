"""Pins the public API of `koppla.xdm`: changing it should be a deliberate act."""

from __future__ import annotations

import inspect

import koppla.xdm
from koppla.xdm import arrow, json_schema, validation


def test_package_exports() -> None:
    assert sorted(koppla.xdm.__all__) == [
        "Array",
        "Issue",
        "Map",
        "Object",
        "Scalar",
        "Schema",
        "SchemaRegistry",
        "Type",
        "Validated",
        "Validator",
        "builtin_registry",
        "commerce_experience_event",
        "compile_validator",
        "validate",
    ]


def test_signatures() -> None:
    assert str(inspect.signature(validation.validate)) == (
        "(schema: 'Schema', document: 'object') -> 'Validated'"
    )
    assert str(inspect.signature(arrow.to_arrow)) == (
        "(schema: 'Schema', records: 'Sequence[Mapping[str, Any]]') -> 'pa.Table'"
    )
    assert str(inspect.signature(arrow.arrow_schema)) == "(schema: 'Schema') -> 'pa.Schema'"
    assert str(inspect.signature(json_schema.to_json_schema)) == (
        "(schema: 'Schema') -> 'dict[str, Any]'"
    )
