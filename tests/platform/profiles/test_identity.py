"""Identities: normalisation, parsing, and reading a record's identityMap."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from koppla.platform.profiles.identity import (
    MAX_ID_CHARS,
    MAX_NAMESPACE_CHARS,
    Identity,
    identities_of,
    namespace_symbol,
    normalise,
)

ECID = "11111111111111111111111111111111111111"


@pytest.mark.parametrize(
    ("namespace", "value", "expected"),
    [
        ("Email", " Ann@Example.COM ", Identity("Email", "ann@example.com")),
        ("email", "ann@example.com", Identity("Email", "ann@example.com")),
        ("phone", "+1 (555) 010-0100", Identity("Phone", "+15550100100")),
        ("Phone", "555.010/0100", Identity("Phone", "5550100100")),
        ("email_lc_sha256", "ABCDEF", Identity("Email_LC_SHA256", "abcdef")),
        ("Phone_SHA256", "ABCDEF", Identity("Phone_SHA256", "abcdef")),
        ("customerid", " 42 ", Identity("CustomerId", "42")),
        (" ecid ", f" {ECID} ", Identity("ECID", ECID)),
        ("loyaltyId", " AB-12 ", Identity("loyaltyId", "AB-12")),
    ],
)
def test_identities_are_normalised_the_one_way_the_graph_links_them(
    namespace: str, value: str, expected: Identity
) -> None:
    assert normalise(namespace, value) == expected


@pytest.mark.parametrize(
    ("namespace", "value"),
    [
        ("Email", "   "),
        ("Phone", " - () "),
        ("ECID", "0" * 38),
        ("ECID", " 0000 "),
        ("CustomerId", "x" * (MAX_ID_CHARS + 1)),
        ("n" * (MAX_NAMESPACE_CHARS + 1), "x"),
        ("  ", "x"),
        ("loyalty:tier", "gold"),  # `namespace:id` text could not be read back
    ],
)
def test_what_cannot_identify_a_person_is_left_out(namespace: str, value: str) -> None:
    assert normalise(namespace, value) is None


def test_an_id_of_the_longest_allowed_length_is_kept() -> None:
    assert normalise("CustomerId", "x" * MAX_ID_CHARS) == Identity("CustomerId", "x" * MAX_ID_CHARS)


def test_standard_namespaces_are_spelled_as_aep_does_and_custom_ones_as_sent() -> None:
    assert [namespace_symbol(n) for n in ("ECID", "ecid", "EMAIL", "customerID")] == [
        "ECID",
        "ECID",
        "Email",
        "CustomerId",
    ]
    assert namespace_symbol(" Loyalty ") == "Loyalty"


def test_an_identity_is_parsed_from_its_text() -> None:
    assert Identity.parse("email: Ann@Example.com") == Identity("Email", "ann@example.com")
    assert str(Identity("CustomerId", "42")) == "CustomerId:42"


@pytest.mark.parametrize("text", ["ann@example.com", ":x", "email:", "ecid:000", "email:   "])
def test_text_that_names_no_usable_identity_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r"usable identity|namespace:id"):
        Identity.parse(text)


namespaces = st.sampled_from(["ECID", "Email", "Phone", "CustomerId", "loyalty", "a:b"])
ids = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1, max_size=40)


@given(namespace=namespaces, value=ids)
def test_normalising_twice_changes_nothing_and_text_round_trips(namespace: str, value: str) -> None:
    once = normalise(namespace, value)
    if once is not None:
        assert normalise(once.namespace, once.id) == once
        assert Identity.parse(str(once)) == once


def _map(**items: Any) -> dict[str, Any]:
    return {"identityMap": items}


def test_the_item_marked_primary_comes_first() -> None:
    record = _map(
        ECID=[{"id": ECID}],
        Email=[{"id": "ann@example.com", "primary": True}],
        CustomerId=[{"id": "42"}],
    )
    assert identities_of(record) == [
        Identity("Email", "ann@example.com"),
        Identity("ECID", ECID),
        Identity("CustomerId", "42"),
    ]


def test_without_a_marked_primary_the_documented_namespace_order_decides() -> None:
    record = _map(ECID=[{"id": ECID}], Email=[{"id": "a@x.io"}, {"id": "b@x.io"}])
    assert identities_of(record)[0] == Identity("Email", "a@x.io")
    assert identities_of(_map(loyalty=[{"id": "L1"}], ECID=[{"id": ECID}]))[0] == Identity(
        "ECID", ECID
    )
    assert identities_of(_map(loyalty=[{"id": "L1"}], points=[{"id": "P"}]))[0] == Identity(
        "loyalty", "L1"
    )


def test_one_identity_spelled_two_ways_is_returned_once_keeping_its_primary_mark() -> None:
    record = {
        "identityMap": {
            "ECID": [{"id": ECID}],
            "Email": [{"id": "Ann@Example.com"}],
            "email": [{"id": "ann@example.com ", "primary": True}],
        }
    }
    assert identities_of(record) == [Identity("Email", "ann@example.com"), Identity("ECID", ECID)]


def test_an_unusable_primary_falls_back_to_the_namespace_order() -> None:
    record = _map(ECID=[{"id": "0" * 38, "primary": True}, {"id": ECID}], CustomerId=[{"id": "7"}])
    assert identities_of(record) == [Identity("CustomerId", "7"), Identity("ECID", ECID)]


@pytest.mark.parametrize(
    "record",
    [
        {},
        {"identityMap": None},
        {"identityMap": []},
        {"identityMap": {"ECID": {"id": ECID}}},
        {"identityMap": {"ECID": ["x", None, {"id": 5}, {"no": "id"}]}},
        {"identityMap": {5: [{"id": ECID}]}},
    ],
)
def test_malformed_identity_maps_give_nothing_and_never_raise(record: dict[Any, Any]) -> None:
    assert identities_of(record) == []


def test_malformed_items_are_skipped_next_to_good_ones() -> None:
    record = _map(ECID=[None, {"id": ECID}], Email="ann@example.com")
    assert identities_of(record) == [Identity("ECID", ECID)]
