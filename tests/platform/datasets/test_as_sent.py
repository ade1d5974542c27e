"""A stored row comes back as the object that was sent: no nulls, unknown fields in place,
date-times as the text sent."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from koppla.core import codec
from koppla.platform.datasets.as_sent import canonical, sent_record
from koppla.platform.datasets.tables import rows_table, stored_row
from koppla.xdm.experience_event import commerce_experience_event
from koppla.xdm.types import Array, Map, Object, Scalar, Schema, Type
from koppla.xdm.validation import validate
from tests.xdm.test_roundtrip import pairs

SCHEMA = commerce_experience_event()


def round_trip(document: dict[str, Any], schema: Schema = SCHEMA) -> dict[str, Any]:
    """`document` validated, stored as a row, converted to Arrow and read back as sent."""
    outcome = validate(schema, document)
    assert outcome.issues == ()
    table, _, bad = rows_table(schema, [stored_row(outcome, "batch-1")])
    assert bad == [] and table is not None
    [row] = table.to_pylist()
    return sent_record(row, schema)


def page_view(**extra: Any) -> dict[str, Any]:
    return {
        "_id": "e-1",
        "timestamp": "2026-12-01T10:00:00.000Z",
        "eventType": "web.webpagedetails.pageViews",
        "web": {"webPageDetails": {"name": "home"}},
        **extra,
    }


def test_a_page_view_comes_back_without_a_single_null() -> None:
    back = round_trip(page_view())
    assert back == page_view()
    assert "null" not in codec.dumps(back).decode()


def test_unknown_fields_come_back_where_they_were_sent() -> None:
    sent = page_view(
        custom={"tier": "gold", "tags": ["a", "b"], "nothing": None},
        web={"webPageDetails": {"name": "home", "layout": "wide"}, "extra": 1},
        productListItems=[{"SKU": "s-1", "colour": "red"}, {"SKU": "s-2"}],
        identityMap={"Email": [{"id": "a@example.com", "primary": True, "source": "form"}]},
    )
    assert round_trip(sent) == sent


def test_an_unknown_field_inside_a_map_key_with_dots_finds_its_key() -> None:
    sent = page_view(
        identityMap={
            "a": [{"id": "1", "x": 1}],
            "a.b": [{"id": "2", "y": 2}],
            "a[0]": [{"id": "3", "z": 3}],
        }
    )
    assert round_trip(sent) == sent


def test_date_times_come_back_as_the_text_sent() -> None:
    sent = page_view(
        timestamp="2026-12-01T10:00:00+02:00",
        placeContext={"localTime": "2026-12-01T10:00:00.123456+02:00"},
        productListItems=[{"SKU": "s", "priceTotal": 3.5}],
    )
    back = round_trip(sent)
    assert back["timestamp"] == "2026-12-01T10:00:00+02:00"
    assert back["placeContext"]["localTime"] == "2026-12-01T10:00:00.123456+02:00"


def test_a_date_time_sent_in_the_canonical_form_is_written_in_it() -> None:
    assert round_trip(page_view(timestamp="2026-12-01T08:00:00.500Z"))["timestamp"] == (
        "2026-12-01T08:00:00.500Z"
    )


def test_numbers_take_the_type_the_schema_gives_them() -> None:
    sent = page_view(productListItems=[{"SKU": "s", "quantity": 2.0, "priceTotal": 7}])
    [item] = round_trip(sent)["productListItems"]
    assert item == {"SKU": "s", "quantity": 2, "priceTotal": 7.0}
    assert isinstance(item["quantity"], int) and isinstance(item["priceTotal"], float)


def test_empty_objects_and_arrays_that_were_sent_stay() -> None:
    sent = page_view(web={}, productListItems=[], identityMap={})
    assert round_trip(sent) == sent


def test_a_known_field_sent_as_null_cannot_be_told_from_one_not_sent() -> None:
    back = round_trip(page_view(channel=None, web={"webPageDetails": {"name": None}}))
    assert "channel" not in back
    assert back["web"] == {"webPageDetails": {}}


def test_known_fields_come_in_the_schema_order_then_unknown_ones_as_sent() -> None:
    sent = {"zeta": 1, "web": {"webPageDetails": {"name": "n"}}, **page_view(), "alpha": 2}
    keys = list(round_trip(sent))
    assert keys == ["_id", "timestamp", "eventType", "web", "zeta", "alpha"]


def test_a_row_read_with_maps_as_pairs_or_dicts_gives_the_same_record() -> None:
    sent = page_view(
        timestamp="2026-12-01T10:00:00+01:00",
        identityMap={"ECID": [{"id": "1", "hint": True}]},
    )
    outcome = validate(SCHEMA, sent)
    table, _, _ = rows_table(SCHEMA, [stored_row(outcome, "b")])
    assert table is not None
    [as_pairs] = table.to_pylist()
    [as_dicts] = table.to_pylist(maps_as_pydicts="strict")
    assert sent_record(as_pairs, SCHEMA) == sent_record(as_dicts, SCHEMA) == sent


def test_canonical_matches_javascripts_to_iso_string() -> None:
    outcome = validate(SCHEMA, page_view(timestamp="2026-01-02T03:04:05.006789+00:00"))
    assert canonical(outcome.record["timestamp"]) == "2026-01-02T03:04:05.006Z"


# Property: whatever valid document is sent, with unknown fields anywhere, comes back as sent
# (numbers as the schema types them).

_TEXT = st.characters(blacklist_categories=["Cs"])  # JSON from the network has no lone surrogates
_KEYS = st.text(
    alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters=".["), max_size=5
)
_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(alphabet=_TEXT, max_size=5),
    lambda inner: st.lists(inner, max_size=2) | st.dictionaries(_KEYS, inner, max_size=2),
    max_leaves=4,
)


def _with_unknown(node: Type, sent: Any, data: st.DataObject) -> Any:
    """`sent` with unknown fields added to some of its objects (drawn from `data`)."""
    if isinstance(node, Object):
        out = {k: _with_unknown(node.fields[k], v, data) for k, v in sent.items()}
        extra = data.draw(st.dictionaries(_KEYS, _JSON, max_size=2))
        out.update({k: v for k, v in extra.items() if k not in node.fields})
        return out
    if isinstance(node, Array):
        return [_with_unknown(node.items, item, data) for item in sent]
    if isinstance(node, Map):
        return {k: _with_unknown(node.values, v, data) for k, v in sent.items()}
    return sent


def _typed(node: Type, sent: Any) -> Any:
    """What `sent_record` gives back for `sent`: numbers typed as the schema says."""
    if isinstance(node, Object):
        return {k: _typed(node.fields[k], v) if k in node.fields else v for k, v in sent.items()}
    if isinstance(node, Array):
        return [_typed(node.items, item) for item in sent]
    if isinstance(node, Map):
        return {k: _typed(node.values, v) for k, v in sent.items()}
    assert isinstance(node, Scalar)
    if node.kind == "number":
        return float(sent)
    if node.kind == "integer":
        return int(sent)
    return sent


@settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(pairs(SCHEMA.root), st.data())
def test_every_valid_document_comes_back_as_sent(
    pair: tuple[Any, Any], data: st.DataObject
) -> None:
    document = _with_unknown(SCHEMA.root, pair[0], data)
    assert round_trip(document) == _typed(SCHEMA.root, document)


def test_a_row_stored_before_its_schema_gained_a_field_comes_back_as_sent() -> None:
    from koppla.platform.schemas.compose import compose, parse_field_group

    own = {"_acme": {"type": "object", "properties": {"giftWrap": {"type": "boolean"}}}}
    grown = compose(
        SCHEMA,
        SCHEMA.id,
        "grown",
        [
            (
                "custom",
                parse_field_group(
                    {
                        "properties": {
                            "commerce": {
                                "type": "object",
                                "properties": {"order": {"type": "object", "properties": own}},
                            },
                            "productListItems": {
                                "type": "array",
                                "items": {"type": "object", "properties": own},
                            },
                            "_acme": {
                                "type": "object",
                                "properties": {
                                    "loyalty": {
                                        "type": "object",
                                        "properties": {"tier": {"type": "string"}},
                                    }
                                },
                            },
                        }
                    }
                ),
            )
        ],
        "_acme",
    )
    sent = page_view(
        commerce={"order": {"purchaseID": "1", "_acme": {"giftWrap": True, "rush": 2}}},
        productListItems=[{"SKU": "s-1", "_acme": {"giftWrap": False}}],
        _acme={"loyalty": {"tier": "gold"}},
    )
    outcome = validate(SCHEMA, sent)  # stored under the schema as it was then
    table, _, _ = rows_table(SCHEMA, [stored_row(outcome, "batch-1")])
    assert table is not None
    [row] = table.to_pylist()
    # read under the grown schema: the row holds its new fields as null
    grown_row = {**row, "_acme": None}
    assert sent_record(grown_row, grown) == sent
