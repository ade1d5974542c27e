"""Every storefront event type of the collector, from `/ee/v1/interact` to SQL.

One case per type (§4.1 of the domain notes, plus a custom event): a representative body, as the
Magento collector builds it, lands with its type, its measure and its key fields; the same type
with a broken field is quarantined with the field's path while a valid event beside it lands.
Old names are stored under their current names.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from koppla.core import codec
from koppla.platform.catalog.models import Datastream
from koppla.platform.pipeline.runner import Pipeline
from koppla.web.services import Services
from koppla.xdm.event_types import STOREFRONT, event_type
from tests.conformance import storefront_bodies as sb

pytestmark = pytest.mark.anyio

Body = dict[str, Any]


async def post(client: httpx.AsyncClient, stream: Datastream, body: Any) -> httpx.Response:
    return await client.post(
        f"/ee/v1/interact?configId={stream.id}",
        content=codec.dumps(body),
        headers={"content-type": "text/plain; charset=UTF-8", "origin": "https://shop.example"},
    )


def _keys(path: str) -> list[str | int]:
    """`a.b[1].c` as `["a", "b", 1, "c"]`."""
    keys: list[str | int] = []
    for part in path.split("."):
        name, _, index = part.partition("[")
        keys.append(name)
        if index:
            keys.append(int(index.rstrip("]")))
    return keys


def _parent(xdm: Body, keys: list[str | int]) -> Any:
    node: Any = xdm
    for key in keys[:-1]:
        node = node[key]
    return node


def drop(path: str) -> Callable[[Body], None]:
    """A mutation removing the field at `path` (`a.b[1].c` style)."""

    def apply(xdm: Body) -> None:
        keys = _keys(path)
        del _parent(xdm, keys)[keys[-1]]

    return apply


def put(path: str, value: Any) -> Callable[[Body], None]:
    """A mutation setting the field at `path` (`a.b[1].c` style) to `value`."""

    def apply(xdm: Body) -> None:
        keys = _keys(path)
        _parent(xdm, keys)[keys[-1]] = value

    return apply


@dataclass(frozen=True)
class Case:
    """One event type: how to build it, what lands, and how to break it."""

    event_type: str
    build: Callable[[], Body]
    measure: str | None
    measure_value: float | None
    fields: dict[str, Any]
    breaks: Callable[[Body], None]
    broken_path: str
    broken_code: str


CART_FIELDS = {
    "productListItems[1].SKU": "MS09-M-Blue",
    "productListItems[1].selectedOptions[2].value": "Blue",
    "productListItems[2].SKU": "24-MB01",
    "productListItems[2].quantity": 2,
    "productListItems[2].priceTotal": 68.0,
    "productListItems[2].currencyCode": "USD",
    "commerce.cart.cartID": sb.CART_ID,
    "commerce.commerceScope.storeCode": "main_website_store",
}
EMAIL_FIELDS = {
    "personalEmail.address": sb.EMAIL,
    "identityMap['Email'][1].id": sb.EMAIL,
    "identityMap['ECID'][1].id": sb.ECID,
}
REQUISITION_FIELDS = {
    "commerce.requisitionList.ID": sb.REQUISITION_LIST_ID,
    "commerce.requisitionList.name": "Weekly",
    "commerce.commerceScope.storeViewCode": "default",
    **EMAIL_FIELDS,
}

CASES = [
    Case(
        "web.webpagedetails.pageViews",
        sb.page_view,
        "web.webPageDetails.pageViews.value",
        1.0,
        {
            "web.webPageDetails.siteSection": "category",
            "web.webPageDetails.name": "Bags",
            "web.webPageDetails.URL": "https://shop.example/gear/bags.html",
            "identityMap['ECID'][1].id": sb.ECID,
            "commerce": None,
        },
        put("web.webPageDetails.pageViews.value", "1"),
        "web.webPageDetails.pageViews.value",
        "type",
    ),
    Case(
        "commerce.productViews",
        sb.product_view,
        "commerce.productViews.value",
        1.0,
        {
            "productListItems[1].SKU": "24-MB01",
            "productListItems[1].priceTotal": 34.0,
            "productListItems[1].currencyCode": "USD",
            "productListItems[1].quantity": None,
            "commerce.commerceScope.storeCode": "main_website_store",
            "identityMap['ECID'][1].id": sb.ECID,
        },
        drop("productListItems"),
        "productListItems[0].SKU",
        "required",
    ),
    Case(
        "commerce.productListAdds",
        sb.add_to_cart,
        "commerce.productListAdds.value",
        1.0,
        CART_FIELDS,
        put("productListItems[0].quantity", "2"),
        "productListItems[0].quantity",
        "type",
    ),
    Case(
        "commerce.productListOpens",
        sb.open_cart,
        "commerce.productListOpens.value",
        1.0,
        CART_FIELDS,
        drop("productListItems[1].SKU"),
        "productListItems[1].SKU",
        "required",
    ),
    Case(
        "commerce.productListRemovals",
        sb.remove_from_cart,
        "commerce.productListRemovals.value",
        1.0,
        CART_FIELDS,
        put("productListItems[1].priceTotal", "68.00"),
        "productListItems[1].priceTotal",
        "type",
    ),
    Case(
        "commerce.productListViews",
        sb.cart_view,
        "commerce.productListViews.value",
        1.0,
        {**CART_FIELDS, "commerce.order.discountAmount": 0.0},
        put("productListItems[0].currencyCode", "usd"),
        "productListItems[0].currencyCode",
        "pattern",
    ),
    Case(
        "commerce.checkouts",
        sb.start_checkout,
        "commerce.checkouts.value",
        1.0,
        {**CART_FIELDS, "commerce.order.discountAmount": 0.0},
        put("productListItems[1].quantity", 1.5),
        "productListItems[1].quantity",
        "type",
    ),
    Case(
        "commerce.purchases",
        sb.place_order,
        "commerce.purchases.value",
        1.0,
        {
            **CART_FIELDS,
            **EMAIL_FIELDS,
            "commerce.order.purchaseID": sb.ORDER_ID,
            "commerce.order.priceTotal": 112.0,
            "commerce.order.currencyCode": "USD",
            "commerce.order.orderType": "checkout",
            "commerce.order.payments[1].paymentType": "checkmo",
            "commerce.promotionID": "H20",
            "commerce.shipping.shippingAmount": 5.0,
        },
        drop("commerce.order.purchaseID"),
        "commerce.order.purchaseID",
        "required",
    ),
    Case(
        "userAccount.login",
        sb.sign_in,
        "userAccount.login",
        1,
        {**EMAIL_FIELDS, "person.accountID": "17"},
        put("userAccount.login", {"value": 1}),
        "userAccount.login",
        "type",
    ),
    Case(
        "userAccount.logout",
        sb.sign_out,
        "userAccount.logout",
        1,
        {"commerce.commerceScope.websiteCode": "base", "personalEmail": None},
        put("identityMap.ECID[0].authenticatedState", "loggedIn"),
        "identityMap.ECID[0].authenticatedState",
        "enum",
    ),
    Case(
        "userAccount.createProfile",
        sb.create_account,
        "userAccount.createProfile",
        1,
        {**EMAIL_FIELDS, "person.accountID": "17"},
        put("personalEmail.address", 17),
        "personalEmail.address",
        "type",
    ),
    Case(
        "userAccount.updateProfile",
        sb.edit_account,
        "userAccount.updateProfile",
        1,
        {**EMAIL_FIELDS, "person.accountID": "17"},
        drop("timestamp"),
        "timestamp",
        "required",
    ),
    Case(
        "searchRequest",
        sb.search_request,
        "searchRequest.value",
        1.0,
        {
            "searchRequest.id": "search-1",
            "siteSearch.query": "bag",
            "siteSearch.sort[1].order": "ASC",
            "siteSearch.refinements[1].value[2]": "50",
            "siteSearch.refinements[1].isRange": True,
            "siteSearch.refinements[2].value[1]": "Blue",
        },
        drop("siteSearch"),
        "siteSearch",
        "required",
    ),
    Case(
        "searchResponse",
        sb.search_response,
        "searchResponse.value",
        1.0,
        {
            "searchResponse.id": "search-1",
            "siteSearch.numberOfResults": 2,
            "siteSearch.suggestions[1]": "bags",
            "productListItems[2].SKU": "24-MB04",
        },
        drop("siteSearch"),
        "siteSearch",
        "required",
    ),
    Case(
        "commerce.requisitionListOpens",
        sb.create_requisition_list,
        "commerce.requisitionListOpens.value",
        1.0,
        {**REQUISITION_FIELDS, "commerce.requisitionList.description": "Restock"},
        drop("commerce.requisitionList.ID"),
        "commerce.requisitionList.ID",
        "required",
    ),
    Case(
        "commerce.requisitionListAdds",
        sb.add_to_requisition_list,
        "commerce.requisitionListAdds.value",
        1.0,
        {
            **REQUISITION_FIELDS,
            "productListItems[2].SKU": "24-MB01",
            "productListItems[2].quantity": 2,
            "productListItems[2].priceTotal": 68.0,
        },
        put("commerce.requisitionList.ID", ""),
        "commerce.requisitionList.ID",
        "required",
    ),
    Case(
        "commerce.requisitionListRemovals",
        sb.remove_from_requisition_list,
        "commerce.requisitionListRemovals.value",
        1.0,
        {**REQUISITION_FIELDS, "productListItems[1].selectedOptions[1].value": "M"},
        put("productListItems[0].quantity", "1"),
        "productListItems[0].quantity",
        "type",
    ),
    Case(
        "commerce.requisitionListDeletes",
        sb.delete_requisition_list,
        "commerce.requisitionListDeletes.value",
        1.0,
        REQUISITION_FIELDS,
        drop("commerce.requisitionList"),
        "commerce.requisitionList.ID",
        "required",
    ),
    Case(
        "acme.wishlistShared",
        sb.custom_event,
        None,
        None,
        {"productListItems[1].SKU": "24-MB01", "productListItems[1].quantity": 1, "commerce": None},
        put("productListItems[0].quantity", "2"),
        "productListItems[0].quantity",
        "type",
    ),
]


def test_every_storefront_type_has_a_case() -> None:
    covered = {case.event_type for case in CASES}
    assert {t.name for t in STOREFRONT} <= covered
    assert len(covered) == len(CASES) == len(STOREFRONT) + 1  # plus one custom event
    for case in CASES:
        known = event_type(case.event_type)
        assert (known.measure if known else None) == case.measure


def _select(case: Case) -> tuple[str, list[Any]]:
    columns = ["eventType"]
    expected: list[Any] = [case.event_type]
    if case.measure:
        columns.append(case.measure)
        expected.append(case.measure_value)
    for column, value in case.fields.items():
        columns.append(column)
        expected.append(value)
    return "SELECT " + ", ".join(columns) + " FROM demo_events", expected


@pytest.mark.parametrize("case", CASES, ids=[c.event_type for c in CASES])
async def test_a_representative_event_lands_with_its_fields(
    case: Case,
    client: httpx.AsyncClient,
    demo: Datastream,
    pipeline: Pipeline,
    services: Services,
) -> None:
    response = await post(client, demo, sb.request(case.build()))
    assert response.status_code == 200
    assert pipeline.step() == 1
    assert services.query.run("SELECT count(*) FROM quarantine").rows == [(0,)]
    sql, expected = _select(case)
    assert [list(row) for row in services.query.run(sql).rows] == [expected]


@pytest.mark.parametrize("case", CASES, ids=[c.event_type for c in CASES])
async def test_a_broken_event_is_quarantined_with_the_path_and_its_neighbour_lands(
    case: Case,
    client: httpx.AsyncClient,
    demo: Datastream,
    pipeline: Pipeline,
    services: Services,
) -> None:
    broken = case.build()
    case.breaks(broken)
    broken["_id"] = "broken-1"
    response = await post(client, demo, sb.request(case.build(), broken))
    assert response.status_code == 200
    assert pipeline.step() == 2

    landed = services.query.run("SELECT eventType, _id FROM demo_events").rows
    assert len(landed) == 1 and landed[0][0] == case.event_type and landed[0][1] != "broken-1"
    held = services.query.run("SELECT event_type, event_id, errors FROM quarantine").rows
    assert len(held) == 1
    held_type, held_id, errors = held[0]
    assert (held_type, held_id) == (case.event_type, "broken-1")
    assert (case.broken_path, case.broken_code) in {(e["path"], e["code"]) for e in errors}
    known = event_type(case.event_type)
    if known and any(rule.path == case.broken_path for rule in known.required):
        messages = {e["message"] for e in errors if e["path"] == case.broken_path}
        assert f"{case.event_type} events need {case.broken_path}" in messages


# --- old names -----------------------------------------------------------------------------------


def _order_event(name: str, purchase_id: str | None = "000000042") -> Body:
    xdm = sb.envelope(name)
    xdm["commerce"] = {"commerceScope": dict(sb.SCOPE)}
    if purchase_id is not None:
        xdm["commerce"]["order"] = {"purchaseID": purchase_id, "priceTotal": 112.0}
    xdm["personalEmail"] = {"address": sb.EMAIL}
    return xdm


async def test_old_names_sent_to_the_edge_land_under_their_current_names(
    client: httpx.AsyncClient, demo: Datastream, pipeline: Pipeline, services: Services
) -> None:
    placed = _order_event("commerce.orderPlaced")
    removal = sb.remove_from_requisition_list()
    removal["eventType"] = "commerce.requsitionListRemovals"  # the docs' typo
    unnamed = _order_event("commerce.orderCancelled", purchase_id=None)
    unnamed["_id"] = "no-order"
    body = sb.request(placed, removal, unnamed)
    assert (await post(client, demo, body)).status_code == 200
    assert pipeline.step() == 3

    rows = services.query.run(
        "SELECT eventType, commerce.order.purchaseID FROM demo_events ORDER BY 1"
    ).rows
    assert rows == [
        ("commerce.backofficeOrderPlaced", "000000042"),
        ("commerce.requisitionListRemovals", None),
    ]
    held = services.query.run("SELECT event_type, errors FROM quarantine").rows
    assert len(held) == 1
    assert held[0][0] == "commerce.backofficeOrderCancelled"
    assert [(e["path"], e["code"]) for e in held[0][1]] == [
        ("commerce.order.purchaseID", "required")
    ]


async def test_old_names_sent_by_streaming_ingestion_land_under_their_current_names(
    client: httpx.AsyncClient, demo: Datastream, pipeline: Pipeline, services: Services
) -> None:
    token = services.catalog.add_token("connector")
    dataset_id = services.catalog.dataset("demo_events").id
    old_names = [
        "commerce.orderPlaced",
        "commerce.orderLineItemShipped",
        "commerce.backofficeShipmentCompleted",
        "commerce.orderCancelled",
        "commerce.creditMemoIssued",
    ]
    messages = []
    for n, name in enumerate(old_names):
        entity = _order_event(name, purchase_id=f"00000{n}")
        entity["_id"] = f"old-{n}"
        entity["identityMap"] = {"Email": [{"id": sb.EMAIL, "primary": True}]}
        messages.append(
            {
                "header": {"imsOrgId": demo.org_id, "datasetId": dataset_id, "flowId": "f1"},
                "body": {"xdmEntity": entity},
            }
        )
    response = await client.post(
        f"/collection/batch/{demo.id}",
        json={"messages": messages},
        headers={"authorization": f"Bearer {token}"},
    )
    assert response.status_code == 207
    pipeline.step()
    rows = services.query.run(
        "SELECT _id, eventType, identityMap['Email'][1].id FROM demo_events ORDER BY 1"
    ).rows
    assert rows == [
        ("old-0", "commerce.backofficeOrderPlaced", sb.EMAIL),
        ("old-1", "commerce.backofficeOrderItemsShipped", sb.EMAIL),
        ("old-2", "commerce.backofficeOrderShipmentCompleted", sb.EMAIL),
        ("old-3", "commerce.backofficeOrderCancelled", sb.EMAIL),
        ("old-4", "commerce.backofficeCreditMemoIssued", sb.EMAIL),
    ]
