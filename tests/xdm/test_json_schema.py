"""Export of Koppla's schemas as draft-06 JSON Schema."""

from __future__ import annotations

from koppla.core import codec
from koppla.xdm.experience_event import commerce_experience_event
from koppla.xdm.json_schema import DRAFT_06, to_json_schema


def test_root_document() -> None:
    schema = commerce_experience_event()
    document = to_json_schema(schema)
    assert document["$schema"] == DRAFT_06
    assert document["$id"] == schema.id
    assert document["type"] == "object"
    assert document["required"] == ["_id", "timestamp"]
    assert list(document["properties"]) == list(schema.root.fields)
    codec.dumps(document)  # serializable as it is


def test_nested_nodes() -> None:
    properties = to_json_schema(commerce_experience_event())["properties"]
    assert properties["timestamp"] == {"type": "string", "format": "date-time"}
    item = properties["identityMap"]["additionalProperties"]["items"]
    assert item["properties"]["authenticatedState"]["enum"] == [
        "ambiguous",
        "authenticated",
        "loggedOut",
    ]
    product = properties["productListItems"]["items"]
    assert product["required"] == ["SKU"]
    assert product["properties"]["currencyCode"]["pattern"] == "^[A-Z]{3}$"
    latitude = properties["placeContext"]["properties"]["geo"]["properties"]["schema:latitude"]
    assert (latitude["minimum"], latitude["maximum"]) == (-90, 90)
