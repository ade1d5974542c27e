"""The schema DSL and the shape of Koppla's commerce ExperienceEvent definition."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest

from koppla.xdm.experience_event import (
    EXPERIENCE_EVENT_CLASS,
    SCHEMA_ID,
    commerce_experience_event,
)
from koppla.xdm.types import INTEGER, NUMBER, STRING, Array, Map, Object, Scalar, Schema, Type


def _at(root: Object, path: str) -> Type:
    node: Type = root
    for part in path.split("."):
        while isinstance(node, Array):
            node = node.items
        assert isinstance(node, Object), path
        node = node.fields[part]
    return node


def test_object_fields_are_read_only_and_ordered() -> None:
    node = Object({"b": STRING, "a": INTEGER})
    assert list(node.fields) == ["b", "a"]
    with pytest.raises(TypeError):
        node.fields["c"] = STRING  # type: ignore[index]


def test_required_fields_must_be_defined() -> None:
    with pytest.raises(ValueError, match="required fields not defined"):
        Object({"a": STRING}, required=frozenset({"b"}))


def test_types_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        STRING.kind = "number"  # type: ignore[misc]


def test_schema_has_identity_semantics() -> None:
    root = Object({"a": STRING})
    one = Schema(id="urn:a", title="a", xdm_class="urn:c", root=root)
    two = Schema(id="urn:a", title="a", xdm_class="urn:c", root=root)
    assert one != two
    assert len({one, two, one}) == 2


def test_commerce_experience_event_is_built_once() -> None:
    schema = commerce_experience_event()
    assert schema is commerce_experience_event()
    assert schema.id == SCHEMA_ID
    assert schema.xdm_class == EXPERIENCE_EVENT_CLASS
    assert schema.root.required == frozenset({"_id", "timestamp"})


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("timestamp", Scalar("date-time")),
        ("eventType", STRING),
        ("productListItems.quantity", INTEGER),
        ("productListItems.priceTotal", Scalar("number")),
        ("commerce.order.orderType", Scalar("string", enum=("checkout", "instant_purchase"))),
        ("commerce.order.payments.paymentType", STRING),
        ("commerce.shipping.shipDate", Scalar("date-time")),
        ("userAccount.login", INTEGER),
        ("siteSearch.numberOfResults", INTEGER),
        ("siteSearch.refinements.value", Array(STRING)),
        ("placeContext.localTimezoneOffset", INTEGER),
        ("environment.browserDetails.viewportWidth", INTEGER),
        ("placeContext.activePOIs.beaconInteractionDetails.beaconMajor", Scalar("number")),
        ("placeContext.POIinteraction.poiDetail.geoInteractionDetails.geoShape.ceiling", NUMBER),
    ],
)
def test_field_types(path: str, expected: Type) -> None:
    assert _at(commerce_experience_event().root, path) == expected


def test_commerce_measures_require_a_value() -> None:
    root = commerce_experience_event().root
    for name in ("productViews", "productListAdds", "purchases", "requisitionListRemovals"):
        measure = _at(root, f"commerce.{name}")
        assert isinstance(measure, Object)
        assert measure.required == frozenset({"value"})


def test_identity_map_is_a_map_of_identity_item_arrays() -> None:
    identity_map = commerce_experience_event().root.fields["identityMap"]
    assert isinstance(identity_map, Map)
    assert isinstance(identity_map.values, Array)
    item = identity_map.values.items
    assert isinstance(item, Object)
    assert list(item.fields) == ["id", "authenticatedState", "primary"]


def _objects(node: Type, path: str = "") -> Iterator[tuple[str, Object]]:
    if isinstance(node, Array):
        yield from _objects(node.items, path)
    elif isinstance(node, Map):
        yield from _objects(node.values, path)
    elif isinstance(node, Object):
        yield path, node
        for name, child in node.fields.items():
            yield from _objects(child, f"{path}.{name}" if path else name)


def test_no_two_fields_of_an_object_differ_only_in_case() -> None:
    # Delta Lake (like Spark and AEP's data lake) refuses such siblings, so no dataset could store
    # an event: Adobe's deprecated `POIID` beside `poiID` is the case in point.
    clashes = [
        f"{path}: {sorted(node.fields)}"
        for path, node in _objects(commerce_experience_event().root)
        if len({name.lower() for name in node.fields}) != len(node.fields)
    ]
    assert clashes == []
