"""Koppla's event-type catalogue: current names, old names, measures and per-type rules."""

from __future__ import annotations

import copy
import timeit
from functools import partial
from typing import Any

import pytest

from koppla.core import codec
from koppla.xdm.event_types import (
    ALIASES,
    BACKOFFICE,
    EVENT_TYPES,
    PROFILE,
    STOREFRONT,
    EventType,
    Required,
    canonical_event_type,
    check_event,
    event_type,
)
from koppla.xdm.experience_event import commerce_experience_event
from koppla.xdm.types import Array, Map, Object, Type
from koppla.xdm.validation import Issue, validate
from tests.reference import reference_dir

STOREFRONT_NAMES = [
    "web.webpagedetails.pageViews",
    "commerce.productViews",
    "commerce.productListAdds",
    "commerce.productListOpens",
    "commerce.productListRemovals",
    "commerce.productListViews",
    "commerce.checkouts",
    "commerce.purchases",
    "userAccount.login",
    "userAccount.logout",
    "userAccount.createProfile",
    "userAccount.updateProfile",
    "searchRequest",
    "searchResponse",
    "commerce.requisitionListOpens",
    "commerce.requisitionListAdds",
    "commerce.requisitionListRemovals",
    "commerce.requisitionListDeletes",
]
BACKOFFICE_NAMES = [
    "commerce.backofficeOrderPlaced",
    "commerce.backofficeOrderInvoiced",
    "commerce.backofficeOrderItemsShipped",
    "commerce.backofficeOrderShipmentCompleted",
    "commerce.backofficeOrderCancelled",
    "commerce.backofficeCreditMemoIssued",
    "commerce.backofficeOrderItemsReturnInitiated",
    "commerce.backofficeOrderItemsReturnCompleted",
]
PROFILE_NAMES = [
    "userAccount.backofficeCreateProfile",
    "userAccount.backofficeUpdateProfile",
    "userAccount.backofficeDeleteProfile",
]


def test_the_catalogue_lists_every_documented_type_once_by_kind() -> None:
    assert [t.name for t in STOREFRONT] == STOREFRONT_NAMES
    assert [t.name for t in BACKOFFICE] == BACKOFFICE_NAMES
    assert [t.name for t in PROFILE] == PROFILE_NAMES
    assert list(EVENT_TYPES) == STOREFRONT_NAMES + BACKOFFICE_NAMES + PROFILE_NAMES
    assert {t.kind for t in STOREFRONT} == {"storefront"}
    assert {t.kind for t in BACKOFFICE} == {"backoffice"}
    assert {t.kind for t in PROFILE} == {"profile"}
    assert not set(ALIASES) & set(EVENT_TYPES)


def test_the_catalogue_is_immutable() -> None:
    with pytest.raises(TypeError):
        EVENT_TYPES["x"] = STOREFRONT[0]  # type: ignore[index]
    with pytest.raises(AttributeError):
        STOREFRONT[0].name = "x"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("old", "current"),
    [
        ("commerce.orderPlaced", "commerce.backofficeOrderPlaced"),
        ("commerce.orderLineItemShipped", "commerce.backofficeOrderItemsShipped"),
        ("commerce.orderCancelled", "commerce.backofficeOrderCancelled"),
        ("commerce.creditMemoIssued", "commerce.backofficeCreditMemoIssued"),
        ("commerce.backofficeShipmentCompleted", "commerce.backofficeOrderShipmentCompleted"),
        ("commerce.requsitionListRemovals", "commerce.requisitionListRemovals"),
    ],
)
def test_old_names_map_to_current_names(old: str, current: str) -> None:
    assert canonical_event_type(old) == current
    assert ALIASES[old] == current
    assert event_type(old) is EVENT_TYPES[current]
    assert old in EVENT_TYPES[current].aliases


def test_current_and_unknown_names_are_unchanged() -> None:
    for name in EVENT_TYPES:
        assert canonical_event_type(name) == name
    for name in (
        "acme.wishlistShared",
        "",
        "Commerce.ProductViews",
        "web.webPageDetails.pageViews",
    ):
        assert canonical_event_type(name) == name
        assert event_type(name) is None


def _schema_field(path: str) -> Type | None:
    """The schema node at a measure path, or None when the schema does not define it."""
    node: Type = commerce_experience_event().root
    for key in path.split("."):
        while isinstance(node, Array | Map):
            node = node.items if isinstance(node, Array) else node.values
        if not isinstance(node, Object) or key not in node.fields:
            return None
        node = node.fields[key]
    return node


@pytest.mark.parametrize("known", STOREFRONT, ids=lambda t: t.name)
def test_every_storefront_measure_is_a_field_of_the_commerce_schema(known: EventType) -> None:
    assert known.measure is not None
    assert _schema_field(known.measure) is not None
    if known.name.startswith("userAccount."):
        assert known.measure == known.name  # plain integers, not measures (§3.4)
    else:
        assert known.measure.endswith(".value")


@pytest.mark.parametrize("known", [*BACKOFFICE, *PROFILE], ids=lambda t: t.name)
def test_back_office_and_profile_types_have_no_measure(known: EventType) -> None:
    assert known.measure is None


@pytest.mark.parametrize("known", EVENT_TYPES.values(), ids=lambda t: t.name)
def test_every_required_path_is_a_field_of_the_commerce_schema(known: EventType) -> None:
    for rule in known.required:
        assert _schema_field(rule.path.replace("[0]", "")) is not None, rule.path


RULES = {
    "web.webpagedetails.pageViews": [],
    "commerce.productViews": ["productListItems[0].SKU"],
    "commerce.productListAdds": [],
    "commerce.productListOpens": [],
    "commerce.productListRemovals": [],
    "commerce.productListViews": [],
    "commerce.checkouts": [],
    "commerce.purchases": ["commerce.order.purchaseID"],
    "userAccount.login": [],
    "userAccount.logout": [],
    "userAccount.createProfile": [],
    "userAccount.updateProfile": [],
    "searchRequest": ["siteSearch"],
    "searchResponse": ["siteSearch"],
    "commerce.requisitionListOpens": ["commerce.requisitionList.ID"],
    "commerce.requisitionListAdds": ["commerce.requisitionList.ID"],
    "commerce.requisitionListRemovals": ["commerce.requisitionList.ID"],
    "commerce.requisitionListDeletes": ["commerce.requisitionList.ID"],
    **{name: ["commerce.order.purchaseID"] for name in BACKOFFICE_NAMES},
    "userAccount.backofficeCreateProfile": ["personalEmail.address"],
    "userAccount.backofficeUpdateProfile": ["personalEmail.address"],
    "userAccount.backofficeDeleteProfile": [],
}


def test_the_rules_are_the_documented_ones() -> None:
    assert {name: [r.path for r in t.required] for name, t in EVENT_TYPES.items()} == RULES


@pytest.mark.parametrize("name", list(EVENT_TYPES), ids=str)
def test_a_bare_event_of_each_type_is_told_what_it_lacks(name: str) -> None:
    found, issues = check_event({"eventType": name, "timestamp": "2026-12-01T10:00:00Z"})
    assert found == name
    assert issues == tuple(
        Issue(path, "required", f"{name} events need {path}") for path in RULES[name]
    )


FULL: dict[str, Any] = {
    "productListItems": [{"SKU": "24-MB01"}],
    "commerce": {"order": {"purchaseID": "000000042"}, "requisitionList": {"ID": "3"}},
    "siteSearch": {"query": "bag"},
    "personalEmail": {"address": "roni_cost@example.com"},
}


@pytest.mark.parametrize("name", [*EVENT_TYPES, *ALIASES], ids=str)
def test_an_event_with_its_required_fields_passes(name: str) -> None:
    assert check_event({"eventType": name, **FULL}) == (canonical_event_type(name), ())


@pytest.mark.parametrize(
    ("name", "xdm", "path"),
    [
        ("commerce.productViews", {"productListItems": []}, "productListItems[0].SKU"),
        ("commerce.productViews", {"productListItems": None}, "productListItems[0].SKU"),
        ("commerce.productViews", {"productListItems": {"SKU": "x"}}, "productListItems[0].SKU"),
        ("commerce.purchases", {"commerce": {"order": {"purchaseID": ""}}}, None),
        ("commerce.purchases", {"commerce": {"order": {"purchaseID": None}}}, None),
        ("commerce.purchases", {"commerce": {"order": "000000042"}}, None),
        ("commerce.purchases", {"commerce": {"order": {"priceTotal": 3}}}, None),
        ("commerce.requisitionListAdds", {"commerce": {"requisitionList": {"ID": ""}}}, None),
        ("commerce.orderPlaced", {"commerce": {}}, "commerce.order.purchaseID"),
        ("searchRequest", {"siteSearch": None}, "siteSearch"),
        ("userAccount.backofficeCreateProfile", {"personalEmail": {}}, "personalEmail.address"),
    ],
)
def test_missing_empty_or_misplaced_required_fields_are_reported(
    name: str, xdm: dict[str, Any], path: str | None
) -> None:
    canonical, issues = check_event({"eventType": name, **xdm})
    assert canonical is not None
    expected = path or EVENT_TYPES[canonical].required[0].path
    assert [(i.path, i.code) for i in issues] == [(expected, "required")]
    assert issues[0].message == f"{canonical} events need {expected}"


def test_what_the_schema_checks_is_not_reported_twice() -> None:
    # Item fields are the schema's job (XDM's productlistitem requires SKU on every item), and a
    # wrongly typed value that is present is the schema's `type` issue, not a missing field.
    xdm = {
        "_id": "e1",
        "timestamp": "2026-12-01T10:00:00Z",
        "eventType": "commerce.productViews",
        "productListItems": [{"name": "no sku"}, {"quantity": "2"}],
    }
    assert check_event(xdm) == ("commerce.productViews", ())
    paths = [(i.path, i.code) for i in validate(commerce_experience_event(), xdm).issues]
    assert ("productListItems[0].SKU", "required") in paths
    assert ("productListItems[1].SKU", "required") in paths
    purchase = {"eventType": "commerce.purchases", "commerce": {"order": {"purchaseID": 42}}}
    assert check_event(purchase) == ("commerce.purchases", ())


@pytest.mark.parametrize(
    "xdm",
    [
        {},
        {"eventType": None},
        {"eventType": 3},
        {"eventType": ["commerce.purchases"]},
    ],
)
def test_an_absent_or_non_string_type_is_none_without_issues(xdm: dict[str, Any]) -> None:
    assert check_event(xdm) == (None, ())


@pytest.mark.parametrize("name", ["acme.wishlistShared", "", "commerce.saveForLaters"])
def test_unknown_types_are_kept_as_sent_without_rules(name: str) -> None:
    assert check_event({"eventType": name}) == (name, ())


def test_check_event_does_not_touch_the_event() -> None:
    xdm = {"eventType": "commerce.orderPlaced", "commerce": {"order": {}}}
    before = copy.deepcopy(xdm)
    check_event(xdm)
    assert xdm == before


def test_required_parses_object_and_list_paths() -> None:
    assert Required("commerce.order.purchaseID").keys == ("commerce", "order", "purchaseID")
    assert not Required("commerce.order.purchaseID").is_list
    assert Required("productListItems[0].SKU").keys == ("productListItems",)
    assert Required("productListItems[0].SKU").is_list


def test_check_event_takes_a_few_microseconds() -> None:
    purchase = {"eventType": "commerce.purchases", "commerce": {"order": {"purchaseID": "1"}}}
    view = {"eventType": "commerce.productViews", "productListItems": [{"SKU": "24-MB01"}]}
    for xdm in (purchase, view, {"eventType": "web.webpagedetails.pageViews"}):
        best = min(timeit.repeat(partial(check_event, xdm), number=2000, repeat=5)) / 2000
        assert best < 20e-6  # typically 1-3 µs; generous for slow CI machines


def _collector_events() -> list[dict[str, Any]]:
    path = reference_dir() / "edge-captures" / "collector-capture.json"
    capture: dict[str, Any] = codec.loads(path.read_bytes())
    return [
        event["xdm"]
        for request in capture["requests"]
        if "/interact" in request["path"]
        for event in request["body"]["events"]
    ]


def test_the_captured_collector_events_pass() -> None:
    events = _collector_events()
    assert [xdm["eventType"] for xdm in events] == [
        "web.webpagedetails.pageViews",
        "commerce.productViews",
        "commerce.productListAdds",
    ]
    for xdm in events:
        assert check_event(xdm) == (xdm["eventType"], ())
    add_to_cart = events[2]
    assert add_to_cart["productListItems"] == []  # the collector sends an empty list: accepted


def test_the_captured_alloy_page_view_passes() -> None:
    path = reference_dir() / "edge-captures" / "alloy-request-sample.json"
    body: dict[str, Any] = codec.loads(path.read_bytes())
    xdm = body["events"][0]["xdm"]
    assert check_event(xdm) == ("web.webpagedetails.pageViews", ())
