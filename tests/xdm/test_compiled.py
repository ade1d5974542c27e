"""The schema as msgspec Structs: what it returns is always what the full check gives."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from koppla.xdm.compiled import Unsure, compile_structs
from koppla.xdm.event_types import validate_event
from koppla.xdm.experience_event import commerce_experience_event
from koppla.xdm.types import (
    DATE_TIME,
    INTEGER,
    NUMBER,
    STRING,
    Array,
    Map,
    Object,
    Scalar,
    Schema,
    Type,
)
from koppla.xdm.validation import Validated, compile_validator

_SCHEMA = commerce_experience_event()
_COMMERCE = compile_validator(_SCHEMA)
_STRUCTS = compile_structs(_SCHEMA)


def _alloy_event() -> dict[str, Any]:
    """A purchase as the alloy load generator sends it, after the pipeline named it."""
    item = {"SKU": "24-MB01", "name": "Joust Duffle Bag", "quantity": 2, "priceTotal": 34.0}
    return {
        "_id": "ea844056-9047-5221-95f5-893f560efe37",
        "timestamp": "2026-12-06T03:39:42.704Z",
        "eventType": "commerce.purchases",
        "identityMap": {
            "ECID": [{"id": "1" * 38, "authenticatedState": "ambiguous", "primary": True}],
            "Email": [{"id": "a@example.com", "primary": False}],
        },
        "web": {"webPageDetails": {"URL": "https://shop.test/", "name": "success"}},
        "device": {"screenHeight": 844, "screenWidth": 390, "screenOrientation": "portrait"},
        "environment": {"type": "browser", "browserDetails": {"viewportWidth": 390}},
        "placeContext": {"localTime": "2026-12-06T03:39:42.704Z", "localTimezoneOffset": 0},
        "productListItems": [item],
        "personalEmail": {"address": "a@example.com"},
        "commerce": {
            "purchases": {"value": 1},
            "order": {"purchaseID": "o-1", "priceTotal": 68, "payments": [{"paymentAmount": 68}]},
        },
    }


def _agrees(document: Any) -> None:
    """`validate_json` gives exactly the full check's outcome."""
    assert _COMMERCE.validate_json(document) == _COMMERCE.validate_fully(document)


def test_a_realistic_event_is_converted_by_the_structs_to_the_full_checks_record() -> None:
    event = _alloy_event()
    record = _STRUCTS.convert(event)  # raises Unsure if the structs stopped taking it
    assert Validated(record, (), {}, {}) == _COMMERCE.validate_fully(event)
    assert record["timestamp"] == datetime(2026, 12, 6, 3, 39, 42, 704000, tzinfo=UTC)
    assert record["commerce"]["order"]["priceTotal"] == 68.0
    assert isinstance(record["commerce"]["order"]["priceTotal"], float)
    assert record["device"]["screenHeight"] == 844


@pytest.mark.parametrize(
    "change",
    [
        {"timestamp": "2026-12-06T04:39:42.704+01:00"},  # kept as sent: the full check
        {"timestamp": "2026-12-06T03:39:42Z"},
        {"timestamp": "2026-12-06T03:39:42.704Z\n"},
        {"timestamp": "2026-02-30T03:39:42.704Z"},
        {"unknownField": 1},
        {"unknownNull": None},
        {"identityMap": {"ECID": None}},  # a null map value: dropped by the full check
        {"productListItems": [{"SKU": 5}]},
        {"productListItems": [None]},
        {"device": {"screenHeight": 2.0}},  # an integer sent as 2.0: the full check takes it
        {"device": {"screenHeight": 2**63}},
        {"environment": {"viewportHeight": -1}},
        {"environment": {"type": "toaster"}},
        {"timestamp": None},
    ],
)
def test_anything_the_structs_cannot_vouch_for_gets_the_full_check(change: dict[str, Any]) -> None:
    document = {**_alloy_event(), **change}
    with pytest.raises(Unsure):
        _STRUCTS.convert(document)
    _agrees(document)


def test_nulls_of_known_fields_are_left_out() -> None:
    document = {**_alloy_event(), "channel": None, "web": {"webReferrer": None}}
    record = _STRUCTS.convert(document)
    assert "channel" not in record and record["web"] == {}
    _agrees(document)


def _schema(**fields: Type) -> Schema:
    return Schema("https://ns.koppla.test/t", "t", "c", Object(fields))


def test_enum_and_pattern_together_take_only_the_enum_values_the_pattern_finds() -> None:
    both = _schema(kind=Scalar("string", enum=("ab", "cd"), pattern="^a"), n=NUMBER)
    validator = compile_validator(both)
    for value in ("ab", "cd", "ef", 3):
        document = {"kind": value}
        assert validator.validate_json(document) == validator.validate_fully(document)
    assert compile_structs(both).convert({"kind": "ab", "n": 1}) == {"kind": "ab", "n": 1.0}


def test_ranges_and_required_fields_are_the_full_checks() -> None:
    ranged = Object(
        {
            "low": Scalar("integer", minimum=0.5, maximum=3.5),
            "x": Scalar("number", minimum=-1, maximum=1),
            "must": STRING,
        },
        required=frozenset({"must"}),
    )
    validator = compile_validator(_schema(o=ranged))
    for inner in (
        {"must": "m", "low": 1, "x": 0.5},
        {"must": "m", "low": 0},
        {"must": "m", "low": 4},
        {"must": "m", "x": 1.5},
        {"must": None},
        {"low": 1},
    ):
        document = {"o": inner}
        assert validator.validate_json(document) == validator.validate_fully(document)


def test_a_schema_with_date_times_as_array_items_is_checked_without_structs() -> None:
    stamps = _schema(at=Array(DATE_TIME), by=Map(INTEGER))
    validator = compile_validator(stamps)
    assert validator.structs is None
    document = {"at": ["2026-12-06T03:39:42.704Z"], "by": {"a": 1}}
    outcome = validator.validate_json(document)
    assert outcome == validator.validate_fully(document) and outcome.ok


def test_dates_from_json_and_from_parquet() -> None:
    dated = compile_validator(_schema(day=Scalar("date")))
    for value in ("2026-12-06", date(2026, 12, 6), "20261206", datetime(2026, 12, 6), 3):
        document = {"day": value}
        assert dated.validate_json(document) == dated.validate_fully(document)


def test_validate_event_takes_a_tuple_as_an_array_unless_told_the_document_is_not_json() -> None:
    document = {**_alloy_event(), "productListItems": ({"SKU": "a"},)}
    assert validate_event(_SCHEMA, document).ok
    strict = validate_event(_SCHEMA, document, from_json=False)
    assert [(i.path, i.code) for i in strict.issues] == [("productListItems", "type")]


def _field_names(node: Type, names: set[str]) -> set[str]:
    if isinstance(node, Object):
        for name, child in node.fields.items():
            names.add(name)
            _field_names(child, names)
    elif isinstance(node, Array):
        _field_names(node.items, names)
    elif isinstance(node, Map):
        _field_names(node.values, names)
    return names


_NAMES = sorted(_field_names(_SCHEMA.root, set()))
_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=8),
    st.sampled_from(
        [
            "2026-12-01T10:00:00.000Z",
            "2026-12-01T10:00:00Z",
            "2026-12-01T11:00:00+01:00",
            "2026-12-01",
            "commerce.productViews",
            "browser",
            "USD",
            "Email",
        ]
    ),
)
_JSON = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.one_of(st.sampled_from(_NAMES), st.text(max_size=4)), inner, max_size=6),
    ),
    max_leaves=40,
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            out += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            out += _paths(item, (*prefix, index))
    return out


def _replaced(base: Any, path: tuple[Any, ...], new: Any, extra_key: str | None) -> Any:
    if not path:
        if extra_key is not None and isinstance(base, dict):
            return {**base, extra_key: new}
        return new
    head, rest = path[0], path[1:]
    if isinstance(base, dict):
        return {**base, head: _replaced(base[head], rest, new, extra_key)}
    copy = list(base)
    copy[head] = _replaced(base[head], rest, new, extra_key)
    return copy


@settings(max_examples=600, deadline=None)
@given(
    st.sampled_from(_paths(_alloy_event())),
    _JSON,
    st.one_of(st.none(), st.sampled_from(_NAMES), st.text(max_size=3)),
)
def test_a_realistic_event_with_one_value_replaced_anywhere_agrees(
    path: tuple[Any, ...], new: Any, extra_key: str | None
) -> None:
    _agrees(_replaced(_alloy_event(), path, new, extra_key))


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.one_of(st.sampled_from(_NAMES), st.text(max_size=4)), _JSON))
def test_arbitrary_json_documents_agree(document: dict[str, Any]) -> None:
    _agrees(document)
