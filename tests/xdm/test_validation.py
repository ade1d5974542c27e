"""Validation: every issue with its path and code, and the normalized record."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from koppla.xdm.experience_event import commerce_experience_event
from koppla.xdm.types import INTEGER, NUMBER, STRING, Array, Map, Object, Scalar, Schema
from koppla.xdm.validation import Issue, Validated, compile_validator, describe, validate


def _event(**fields: Any) -> dict[str, Any]:
    return {"_id": "e-1", "timestamp": "2026-11-29T16:19:39.159Z", **fields}


def _codes(result: Validated) -> list[tuple[str, str]]:
    return [(issue.path, issue.code) for issue in result.issues]


def _schema(root: Object) -> Schema:
    return Schema(id="urn:test", title="t", xdm_class="urn:test", root=root)


def test_valid_event_has_no_issues() -> None:
    result = validate(commerce_experience_event(), _event(eventType="commerce.productViews"))
    assert result.ok
    assert result.issues == ()
    assert result.unknown == {}


def test_mixed_bad_event_reports_exactly_three_issues() -> None:
    document = {
        "_id": "e-1",
        "eventType": "commerce.productListAdds",
        "productListItems": [{"SKU": "24-MB01", "quantity": "2"}],
        "identityMap": {"ECID": [{"id": "123", "authenticatedState": "bogus"}]},
    }
    result = validate(commerce_experience_event(), document)
    assert sorted(_codes(result)) == [
        ("identityMap.ECID[0].authenticatedState", "enum"),
        ("productListItems[0].quantity", "type"),
        ("timestamp", "required"),
    ]
    quantity = next(i for i in result.issues if i.path == "productListItems[0].quantity")
    assert quantity.message == 'expected integer, got string "2"'


def test_nested_array_paths() -> None:
    payments = [{"currencyCode": "USD"}, {"currencyCode": "usd", "paymentAmount": "3"}]
    result = validate(
        commerce_experience_event(), _event(commerce={"order": {"payments": payments}})
    )
    assert _codes(result) == [
        ("commerce.order.payments[1].currencyCode", "pattern"),
        ("commerce.order.payments[1].paymentAmount", "type"),
    ]
    assert result.issues[1].message == 'expected number, got string "3"'


def test_non_object_root_is_a_type_issue_at_the_empty_path() -> None:
    result = validate(commerce_experience_event(), ["not", "an", "object"])
    assert result.issues == (Issue("", "type", "expected object, got array"),)
    assert result.record == {}


def test_missing_required_fields_and_null_required_fields() -> None:
    result = validate(commerce_experience_event(), {"_id": None})
    assert sorted(_codes(result)) == [("_id", "required"), ("timestamp", "required")]


def test_measure_requires_value() -> None:
    result = validate(commerce_experience_event(), _event(commerce={"productViews": {"id": "x"}}))
    assert _codes(result) == [("commerce.productViews.value", "required")]


def test_dates_are_parsed_to_utc() -> None:
    result = validate(
        commerce_experience_event(),
        _event(placeContext={"localTime": "2026-11-29T18:19:39.112+02:00"}),
    )
    assert result.record["timestamp"] == datetime(2026, 11, 29, 16, 19, 39, 159000, tzinfo=UTC)
    assert result.record["placeContext"]["localTime"] == datetime(
        2026, 11, 29, 16, 19, 39, 112000, tzinfo=UTC
    )


def test_date_times_sent_in_another_form_keep_their_text() -> None:
    result = validate(
        commerce_experience_event(),
        _event(placeContext={"localTime": "2026-12-04T17:56:45.187+01:00"}),
    )
    assert result.record["placeContext"]["localTime"] == datetime(
        2026, 12, 4, 16, 56, 45, 187000, tzinfo=UTC
    )
    assert result.datetimes == {"placeContext.localTime": "2026-12-04T17:56:45.187+01:00"}


@pytest.mark.parametrize(
    "text",
    [
        "2026-12-04T17:56:45.187+01:00",
        "2026-12-04T11:26:45.187-05:30",
        "2026-12-04T16:56:45.187+00:00",
        "2026-12-04T16:56:45Z",
        "2026-12-04T16:56:45.187000Z",
        "2026-12-04T16:56:45.187123456Z",
        "2026-12-04 16:56:45.187Z",
        "2026-12-04T16:56:45,187Z",
        "20261204T165645.187000Z",
        "2026-W49-5T16:56:45.187Z",
        "2026-12-04t16:56:45.187z",
    ],
)
def test_every_non_canonical_form_is_kept_as_sent(text: str) -> None:
    result = validate(commerce_experience_event(), {"_id": "e", "timestamp": text})
    assert result.ok
    assert result.datetimes == {"timestamp": text}


def test_the_canonical_utc_form_is_not_repeated() -> None:
    result = validate(commerce_experience_event(), _event())
    assert result.record["timestamp"] == datetime(2026, 11, 29, 16, 19, 39, 159000, tzinfo=UTC)
    assert result.datetimes == {}


def test_sent_date_times_use_issue_paths_in_arrays_and_maps() -> None:
    moment = Scalar("date-time")
    schema = _schema(Object({"items": Array(Object({"at": moment})), "m": Map(moment)}))
    document = {
        "items": [{"at": "2026-12-04T16:56:45.187Z"}, {"at": "2026-12-04T17:56:45+01:00"}],
        "m": {"shipped": "2026-12-04T11:26:45.187-05:30"},
    }
    result = validate(schema, document)
    assert result.ok
    assert result.datetimes == {
        "items[1].at": "2026-12-04T17:56:45+01:00",
        "m.shipped": "2026-12-04T11:26:45.187-05:30",
    }


def test_an_invalid_date_time_keeps_no_text() -> None:
    result = validate(commerce_experience_event(), {"_id": "e", "timestamp": "2026-12-04T17:56"})
    assert _codes(result) == [("timestamp", "format")]
    assert result.datetimes == {}


@pytest.mark.parametrize(
    "text", ["yesterday", "2026-11-29", "2026-11-29T16:19:39", "2026-13-01T00:00Z"]
)
def test_bad_or_offsetless_date_times_are_format_issues(text: str) -> None:
    result = validate(commerce_experience_event(), {"_id": "e", "timestamp": text})
    assert _codes(result) == [("timestamp", "format")]


def test_dates() -> None:
    schema = _schema(Object({"d": Scalar("date")}))
    assert validate(schema, {"d": "2026-02-01"}).record == {"d": date(2026, 2, 1)}
    assert _codes(validate(schema, {"d": "2026-02-30"})) == [("d", "format")]
    assert _codes(validate(schema, {"d": 20260201})) == [("d", "type")]


def test_numbers_and_integers_are_normalized() -> None:
    schema = _schema(Object({"n": NUMBER, "i": INTEGER}))
    result = validate(schema, {"n": 34, "i": 2.0})
    assert result.record == {"n": 34.0, "i": 2}
    assert type(result.record["n"]) is float
    assert type(result.record["i"]) is int


def test_non_integral_float_is_not_an_integer() -> None:
    result = validate(_schema(Object({"i": INTEGER})), {"i": 2.5})
    assert result.issues == (Issue("i", "type", "expected integer, got number 2.5"),)


@pytest.mark.parametrize("flag", [True, False])
def test_booleans_are_not_numbers(flag: bool) -> None:
    result = validate(
        _schema(Object({"n": NUMBER, "i": INTEGER, "s": STRING})), {"n": flag, "i": flag}
    )
    assert _codes(result) == [("n", "type"), ("i", "type")]


def test_range() -> None:
    schema = _schema(Object({"lat": Scalar("number", minimum=-90, maximum=90)}))
    assert validate(schema, {"lat": 45}).ok
    assert _codes(validate(schema, {"lat": 91})) == [("lat", "range")]
    assert _codes(validate(schema, {"lat": -90.5})) == [("lat", "range")]


def test_integer_outside_int64_is_a_range_issue() -> None:
    result = validate(_schema(Object({"i": INTEGER})), {"i": 2**63})
    assert _codes(result) == [("i", "range")]


def test_unknown_fields_are_removed_and_collected_with_their_paths() -> None:
    document = _event(
        _tenant={"loyalty": 3},
        productListItems=[{"SKU": "a", "color": "red"}],
        identityMap={"email": [{"id": "a@b.c", "hashed": True}]},
    )
    result = validate(commerce_experience_event(), document)
    assert result.ok
    assert result.unknown == {
        "_tenant": {"loyalty": 3},
        "productListItems[0].color": "red",
        "identityMap.email[0].hashed": True,
    }
    assert result.record["productListItems"] == [{"SKU": "a"}]
    assert "_tenant" not in result.record


def test_null_optional_fields_are_dropped() -> None:
    result = validate(
        commerce_experience_event(), _event(eventType=None, web={"webReferrer": None})
    )
    assert result.ok
    assert "eventType" not in result.record
    assert result.record["web"] == {}


def test_invalid_array_items_keep_their_position() -> None:
    schema = _schema(Object({"xs": Array(INTEGER)}))
    result = validate(schema, {"xs": [1, "2", None, 4]})
    assert _codes(result) == [("xs[1]", "type"), ("xs[2]", "type")]
    assert result.record == {"xs": [1, None, None, 4]}


def test_map_values_are_checked() -> None:
    schema = _schema(Object({"m": Map(INTEGER)}))
    result = validate(schema, {"m": {"a": 1, "b": "x", "c": None}})
    assert _codes(result) == [("m.b", "type")]
    assert result.record == {"m": {"a": 1}}
    assert _codes(validate(schema, {"m": [1]})) == [("m", "type")]


def test_every_problem_is_reported() -> None:
    document = {
        "_id": 7,
        "timestamp": "nope",
        "device": {"screenOrientation": "sideways", "screenHeight": "720"},
        "productListItems": [{"name": "no sku"}, {"SKU": "b", "currencyCode": "US"}],
        "userAccount": {"login": True},
    }
    result = validate(commerce_experience_event(), document)
    assert sorted(_codes(result)) == [
        ("_id", "type"),
        ("device.screenHeight", "type"),
        ("device.screenOrientation", "enum"),
        ("productListItems[0].SKU", "required"),
        ("productListItems[1].currencyCode", "pattern"),
        ("timestamp", "format"),
        ("userAccount.login", "type"),
    ]


def test_tracking_number_is_a_string_in_koppla() -> None:
    shipping = {"trackingNumber": "1Z999AA10123456784", "shippingAmount": 5}
    result = validate(commerce_experience_event(), _event(commerce={"shipping": shipping}))
    assert result.ok
    assert result.record["commerce"]["shipping"]["trackingNumber"] == "1Z999AA10123456784"


def test_event_type_is_free_form() -> None:
    event = _event(eventType="commerce.backofficeOrderInvoiced")
    assert validate(commerce_experience_event(), event).ok


def test_compiled_validator_matches_validate() -> None:
    schema = commerce_experience_event()
    document = _event(productListItems=[{"SKU": "a", "quantity": 1}])
    assert compile_validator(schema).validate(document) == validate(schema, document)


@pytest.mark.parametrize(
    ("value", "text"),
    [(None, "null"), (True, "boolean true"), (3, "number 3"), ("x", 'string "x"'), ({}, "object")],
)
def test_describe(value: object, text: str) -> None:
    assert describe(value) == text


def _field_names(node: Any, names: set[str]) -> set[str]:
    if isinstance(node, Object):
        for name, child in node.fields.items():
            names.add(name)
            _field_names(child, names)
    elif isinstance(node, Array):
        _field_names(node.items, names)
    elif isinstance(node, Map):
        _field_names(node.values, names)
    return names


_COMMERCE = compile_validator(commerce_experience_event())
_NAMES = sorted(_field_names(commerce_experience_event().root, set()))
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
            "2026-13-01T10:00:00.000Z",
            "commerce.productViews",
            "web.webpagedetails.pageViews",
            "USD",
            "Email",
        ]
    ),
)
_DOCUMENTS = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.one_of(st.sampled_from(_NAMES), st.text(max_size=4)), inner, max_size=6),
    ),
    max_leaves=40,
)


_VALID = _event(
    eventType="commerce.backofficeOrderPlaced",
    commerce={
        "order": {"purchaseID": "1", "priceTotal": 3, "payments": [{"paymentAmount": 3}]},
        "commerceScope": {"websiteCode": "base"},
    },
    productListItems=[{"SKU": "a", "quantity": 2.0, "priceTotal": 1.5}],
    identityMap={"Email": [{"id": "a@example.com", "primary": True}]},
    personalEmail={"address": "a@example.com"},
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


def _mutated(base: Any, path: tuple[Any, ...], new: Any, extra_key: str | None) -> Any:
    if not path:
        if extra_key is not None and isinstance(base, dict):
            return {**base, extra_key: new}
        return new
    head, rest = path[0], path[1:]
    if isinstance(base, dict):
        return {**base, head: _mutated(base[head], rest, new, extra_key)}
    copy = list(base)
    copy[head] = _mutated(base[head], rest, new, extra_key)
    return copy


@settings(max_examples=600, deadline=None)
@given(
    st.sampled_from(_paths(_VALID)),
    _DOCUMENTS,
    st.one_of(st.none(), st.sampled_from(_NAMES), st.text(max_size=3)),
)
def test_the_fast_path_gives_exactly_what_the_full_check_gives(
    path: tuple[Any, ...], new: Any, extra_key: str | None
) -> None:
    """A valid event with one value replaced (or one key added) anywhere: both paths agree."""
    document = _mutated(_VALID, path, new, extra_key)
    assert _COMMERCE.validate(document) == _COMMERCE.validate_fully(document)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.one_of(st.sampled_from(_NAMES), st.text(max_size=4)), _DOCUMENTS))
def test_the_fast_path_agrees_on_arbitrary_documents(document: dict[str, Any]) -> None:
    assert _COMMERCE.validate(document) == _COMMERCE.validate_fully(document)


def test_an_unknown_null_field_is_still_recorded() -> None:
    document = {**_VALID, "zz": None}
    result = _COMMERCE.validate(document)
    assert result.unknown == {"zz": None} and result == _COMMERCE.validate_fully(document)
    assert _COMMERCE.validate(_VALID).ok


def test_the_fast_path_gives_exactly_what_the_full_check_gives_on_real_events() -> None:
    good = _event(
        commerce={
            "order": {"purchaseID": "1", "priceTotal": 3, "payments": [{"paymentAmount": 3}]}
        },
        productListItems=[{"SKU": "a", "quantity": 2.0}],
        identityMap={"Email": [{"id": "a@example.com", "primary": True}]},
    )
    fast = _COMMERCE.validate(good)
    assert fast == _COMMERCE.validate_fully(good) and fast.ok
    for broken in (
        {**good, "timestamp": "2026-12-01T11:00:00+01:00"},  # kept as sent: full check
        {**good, "unknownField": 1},
        {**good, "productListItems": [{"SKU": 5}]},
        {**good, "identityMap": {"Email": [None]}},
    ):
        assert _COMMERCE.validate(broken) == _COMMERCE.validate_fully(broken)
