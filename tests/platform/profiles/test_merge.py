"""Merging a profile's fragments by merge policy, and AEP's merge-policy bodies."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from koppla.core.errors import InvalidInput
from koppla.platform.profiles.identity import Identity
from koppla.platform.profiles.merge import (
    Fragment,
    MergePolicy,
    merge,
    policy_from_api,
    policy_to_api,
    sources,
)

ECID = Identity("ECID", "11111111111111111111111111111111111111")
ANN = Identity("Email", "ann@example.com")
CUSTOMER = Identity("CustomerId", "42")

LATEST = MergePolicy(id="p1", name="latest")
SHOP_FIRST = MergePolicy(
    id="p2", name="shop first", attribute_merge="dataSetPrecedence", order=("shop", "crm")
)

# The shop's account record is older; the CRM's record is newer and disagrees on the name.
SHOP = Fragment(
    "shop",
    CUSTOMER,
    {
        "person": {"name": {"firstName": "Ann", "lastName": "Lee"}, "birthDayAndMonth": "04-01"},
        "personalEmail": {"address": "ann@example.com"},
        "phones": [{"number": "+15550100"}, {"number": "+15550101"}],
    },
    100,
)
CRM = Fragment(
    "crm",
    ANN,
    {
        "person": {"name": {"firstName": "Anna", "lastName": None}},
        "phones": [{"number": "+15550199"}],
        "loyalty": {"tier": "gold"},
    },
    200,
)


def test_timestamp_ordered_takes_each_value_from_the_latest_fragment_that_has_it() -> None:
    assert merge([SHOP, CRM], LATEST) == {
        "person": {"name": {"firstName": "Anna", "lastName": "Lee"}, "birthDayAndMonth": "04-01"},
        "personalEmail": {"address": "ann@example.com"},
        "phones": [{"number": "+15550199"}],
        "loyalty": {"tier": "gold"},
    }
    assert sources([SHOP, CRM], LATEST) == ["crm", "shop"]


def test_dataset_precedence_takes_each_value_from_the_first_listed_dataset_that_has_it() -> None:
    assert merge([CRM, SHOP], SHOP_FIRST) == {
        "person": {"name": {"firstName": "Ann", "lastName": "Lee"}, "birthDayAndMonth": "04-01"},
        "personalEmail": {"address": "ann@example.com"},
        "phones": [{"number": "+15550100"}, {"number": "+15550101"}],
        "loyalty": {"tier": "gold"},
    }
    assert sources([CRM, SHOP], SHOP_FIRST) == ["shop", "crm"]


def test_datasets_not_listed_come_after_the_listed_ones_and_among_themselves_latest_first() -> None:
    newest = Fragment("web", ECID, {"person": {"name": {"firstName": "A."}}}, 900)
    newer = Fragment("app", ECID, {"person": {"name": {"firstName": "Annie"}}}, 950)
    only_crm = MergePolicy(id="p", name="p", attribute_merge="dataSetPrecedence", order=("crm",))
    merged = merge([newest, SHOP, CRM, newer], only_crm)
    assert merged["person"]["name"] == {"firstName": "Anna", "lastName": "Lee"}
    lone = merge([newest, newer], only_crm)
    assert lone["person"]["name"]["firstName"] == "Annie"


def test_ties_are_decided_by_dataset_then_identity_whatever_the_input_order() -> None:
    one = Fragment("ds-a", ANN, {"tier": "silver"}, 5)
    two = Fragment("ds-b", ANN, {"tier": "gold"}, 5)
    three = Fragment("ds-b", ECID, {"tier": "bronze"}, 5)
    assert merge([one, two, three], LATEST) == merge([three, two, one], LATEST) == {"tier": "gold"}


def test_a_map_field_named_as_a_map_is_taken_whole() -> None:
    old = Fragment("shop", ANN, {"prefs": {"colour": "red", "size": "M"}}, 1)
    new = Fragment("shop", ANN, {"prefs": {"colour": "blue"}}, 2)
    assert merge([old, new], LATEST) == {"prefs": {"colour": "blue", "size": "M"}}
    assert merge([old, new], LATEST, maps={"prefs"}) == {"prefs": {"colour": "blue"}}


def test_the_winning_fragment_decides_a_field_of_two_shapes() -> None:
    scalar = Fragment("a", ANN, {"address": "1 Main St"}, 1)
    obj = Fragment("b", ANN, {"address": {"city": "Oslo"}}, 2)
    assert merge([scalar, obj], LATEST) == {"address": {"city": "Oslo"}}
    newer_scalar = Fragment("a", ANN, {"address": "1 Main St"}, 3)
    assert merge([newer_scalar, obj], LATEST) == {"address": "1 Main St"}


def test_the_identity_map_is_the_union_of_all_fragments() -> None:
    event = Fragment(
        "events",
        ECID,
        {
            "identityMap": {
                "ECID": [{"id": ECID.id, "primary": True}, {"id": "0" * 38}],
                "Email": [{"id": "Ann@Example.com", "authenticatedState": "authenticated"}],
            }
        },
        50,
    )
    account = Fragment(
        "shop",
        CUSTOMER,
        {"identityMap": {"email": [{"id": "ann@example.com"}], "CustomerId": [{"id": "42"}]}},
        10,
    )
    assert merge([account, event], LATEST) == {
        "identityMap": {
            "ECID": [{"id": ECID.id, "primary": True}],
            "Email": [{"id": "ann@example.com", "authenticatedState": "authenticated"}],
            "CustomerId": [{"id": "42"}],
        }
    }
    marked = Fragment(
        "shop", CUSTOMER, {"identityMap": {"Email": [{"id": ANN.id, "primary": True}]}}, 1
    )
    assert merge([event, marked], LATEST)["identityMap"]["Email"][0]["primary"] is True


def test_no_fragments_merge_to_an_empty_profile_with_no_sources() -> None:
    assert merge([], LATEST) == {}
    assert sources([], LATEST) == []


values = st.none() | st.integers(0, 3) | st.lists(st.integers(0, 3), max_size=2)
records = st.recursive(
    st.dictionaries(st.sampled_from("abc"), values, max_size=3),
    lambda inner: st.dictionaries(st.sampled_from("abc"), values | inner, max_size=3),
    max_leaves=8,
)
fragments = st.lists(
    st.builds(
        Fragment,
        st.sampled_from(["ds1", "ds2", "ds3"]),
        st.sampled_from([ECID, ANN]),
        records,
        st.integers(0, 5),
    ),
    max_size=5,
    unique_by=lambda f: (f.dataset_id, f.identity),  # the store keeps one per dataset and identity
)
policies = st.sampled_from(
    [LATEST, MergePolicy("p", "p", attribute_merge="dataSetPrecedence", order=("ds2", "ds1"))]
)


@given(fragments=fragments, policy=policies, data=st.data())
def test_the_merge_does_not_depend_on_the_order_of_fragments(
    fragments: list[Fragment], policy: MergePolicy, data: st.DataObject
) -> None:
    shuffled = data.draw(st.permutations(fragments))
    assert merge(shuffled, policy) == merge(fragments, policy)
    assert sources(shuffled, policy) == sources(fragments, policy)


@given(fragments=fragments)
def test_one_fragment_merges_to_itself_without_nulls(fragments: list[Fragment]) -> None:
    def without_nulls(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: without_nulls(v) for k, v in value.items() if v is not None}
        return value

    for fragment in fragments:
        assert merge([fragment], LATEST) == without_nulls(fragment.record)


# Merge policies as AEP's API reads and writes them.

BODY: dict[str, Any] = {
    "name": "Shop first",
    "schema": {"name": "_xdm.context.profile"},
    "identityGraph": {"type": "pdg"},
    "attributeMerge": {"type": "dataSetPrecedence", "order": ["shop", "crm"]},
    "default": True,
    "isActiveOnEdge": True,
}


def test_a_policy_body_is_read_and_written_back_in_aep_shape() -> None:
    policy = policy_from_api(BODY)
    assert (policy.name, policy.attribute_merge, policy.order) == (
        "Shop first",
        "dataSetPrecedence",
        ("shop", "crm"),
    )
    assert policy.default and policy.active_on_edge and policy.identity_graph == "pdg"
    stored = replace(policy, id="p9", version=3, updated_ms=1_552_086_578_123)
    assert policy_to_api(stored) == {
        "id": "p9",
        "name": "Shop first",
        "schema": {"name": "_xdm.context.profile"},
        "version": 3,
        "identityGraph": {"type": "pdg"},
        "attributeMerge": {"type": "dataSetPrecedence", "order": ["shop", "crm"]},
        "default": True,
        "isActiveOnEdge": True,
        "updateEpoch": 1_552_086_578,
    }
    assert policy_from_api(policy_to_api(stored)) == replace(stored, updated_ms=1_552_086_578_000)


def test_a_minimal_body_gets_the_documented_defaults() -> None:
    body = {**BODY, "attributeMerge": {"type": "timestampOrdered", "order": ["x"]}}
    del body["default"], body["isActiveOnEdge"]
    policy = policy_from_api(body)
    assert (policy.default, policy.active_on_edge, policy.order, policy.version) == (
        False,
        False,
        (),
        1,
    )
    assert policy_to_api(policy)["attributeMerge"] == {"type": "timestampOrdered"}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": None}, "name"),
        ({"schema": {"name": "_xdm.context.experienceevent"}}, "schema.name"),
        ({"schema": None}, "schema.name"),
        ({"identityGraph": {"type": "private"}}, "identityGraph.type"),
        ({"attributeMerge": {"type": "latest"}}, "attributeMerge.type"),
        ({"attributeMerge": {"type": "dataSetPrecedence"}}, "attributeMerge.order"),
        ({"attributeMerge": {"type": "dataSetPrecedence", "order": []}}, "attributeMerge.order"),
        ({"attributeMerge": {"type": "dataSetPrecedence", "order": [1]}}, "attributeMerge.order"),
        (
            {"attributeMerge": {"type": "dataSetPrecedence", "order": ["a", "a"]}},
            "attributeMerge.order",
        ),
        ({"default": "yes"}, "default"),
        ({"isActiveOnEdge": 1}, "isActiveOnEdge"),
        ({"version": 0}, "version"),
        ({"updateEpoch": "now"}, "updateEpoch"),
    ],
)
def test_a_wrong_body_is_refused_naming_the_field(change: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        policy_from_api({**BODY, **change})
    assert refused.value.field == field
    assert field in str(refused.value)
