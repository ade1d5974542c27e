"""JSON Patch add/replace/remove, as the Schema Registry's PATCH applies it."""

from __future__ import annotations

import pytest

from koppla.core.errors import InvalidInput
from koppla.platform.schemas.patch import apply_patch


def test_operations_apply_in_order_to_a_copy() -> None:
    document = {"title": "A", "allOf": [{"$ref": "base"}], "definitions": {"d": {}}}
    patched = apply_patch(
        document,
        [
            {"op": "add", "path": "/allOf/-", "value": {"$ref": "group"}},
            {"op": "replace", "path": "title", "value": "B"},  # AEP's form, without the `/`
            {"op": "add", "path": "/definitions/d/properties", "value": {}},
            {"op": "remove", "path": "/allOf/0"},
        ],
    )
    assert patched == {
        "title": "B",
        "allOf": [{"$ref": "group"}],
        "definitions": {"d": {"properties": {}}},
    }
    assert document["title"] == "A" and len(document["allOf"]) == 1


@pytest.mark.parametrize(
    ("operations", "field"),
    [
        ([], "body"),
        ({"op": "add"}, "body"),
        ([{"op": "move", "path": "/a"}], "[0].op"),
        ([{"op": "add", "path": "/a"}], "[0].value"),
        ([{"op": "replace", "path": "/missing", "value": 1}], "[0].path"),
        ([{"op": "add", "path": "/allOf/5", "value": 1}], "[0].path"),
        ([{"op": "add", "path": "/nope/deeper", "value": 1}], "[0].path"),
    ],
)
def test_an_operation_that_cannot_apply_is_named(operations: object, field: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        apply_patch({"allOf": []}, operations)
    assert refused.value.field == field


def test_an_index_must_be_ascii_digits() -> None:
    import pytest

    from koppla.core.errors import InvalidInput
    from koppla.platform.schemas.patch import apply_patch

    for path in ("/allOf/²", "/allOf/01", "/allOf/٣"):
        with pytest.raises(InvalidInput, match="does not exist"):
            apply_patch({"allOf": [{"a": 1}]}, [{"op": "add", "path": path, "value": 1}])
