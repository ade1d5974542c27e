"""The Magento storefront collector's captured Edge requests, replayed as the browser sent them.

`edge-captures/collector-capture.json` holds what collector 1.18.0 (with its own alloy) sent for a
page view, a product page view and an add to cart, with the cookies alloy had by then. Each body is
posted to the captured path with the captured `Cookie` header and must land with the collector's
fields and the visitor's ECID. The capture's organization, `y@AdobeOrg`, is not a valid Koppla org
id, so its cookies are sent either verbatim (foreign cookies: the ECID comes from the body's
`identityMap`) or renamed to the demo organization (the edge reads the ECID from the cookie).
"""

from __future__ import annotations

import copy
from typing import Any

import httpx
import pytest

from koppla.core import codec
from koppla.platform.catalog.models import Datastream
from koppla.platform.edge import identity_cookie
from koppla.platform.pipeline.runner import Pipeline
from koppla.web.services import Services
from koppla.xdm.event_types import check_event
from tests.reference import reference_dir

pytestmark = pytest.mark.anyio

CAPTURED_ORG = "y@AdobeOrg"
ECID = "12345678901234567890123456789012345678"
SCOPE = ("env-1", "base", "main_website_store", "default")


def captured_interacts() -> list[dict[str, Any]]:
    """The captured requests whose path contains `/interact`, in the order they were sent."""
    path = reference_dir() / "edge-captures" / "collector-capture.json"
    capture: dict[str, Any] = codec.loads(path.read_bytes())
    return [r for r in capture["requests"] if "/interact" in r["path"]]


def captured(event_type: str) -> dict[str, Any]:
    """The captured request whose single event has `event_type`."""
    (request,) = [
        r for r in captured_interacts() if r["body"]["events"][0]["xdm"]["eventType"] == event_type
    ]
    return request


@pytest.fixture
def stream(demo: Datastream) -> Datastream:
    return demo


async def replay(
    client: httpx.AsyncClient,
    stream: Datastream,
    request: dict[str, Any],
    *,
    rename: bool = True,
    body: dict[str, Any] | None = None,
) -> Any:
    """Post a captured request: same path, body and `Cookie` (its org renamed to `stream`'s)."""
    query = "&".join(
        f"configId={stream.id}" if part.startswith("configId=") else part
        for part in request["query"].split("&")
    )
    headers = {
        key: value
        for key, value in request["headers"].items()
        if key.lower() in ("content-type", "origin", "cookie", "user-agent", "referer")
    }
    if rename:
        ours = identity_cookie.cookie_name(stream.org_id, "")
        headers["Cookie"] = headers["Cookie"].replace(
            identity_cookie.cookie_name(CAPTURED_ORG, ""), ours
        )
    sent = request["body"] if body is None else body
    response = await client.post(
        f"{request['path']}?{query}", content=codec.dumps(sent), headers=headers
    )
    assert response.status_code == 200, response.text
    return response.json()


def test_the_capture_holds_the_three_interact_requests_and_the_cookie_names_the_ecid() -> None:
    requests = captured_interacts()
    types = [r["body"]["events"][0]["xdm"]["eventType"] for r in requests]
    assert types == [
        "web.webpagedetails.pageViews",
        "commerce.productViews",
        "commerce.productListAdds",
    ]
    name = identity_cookie.cookie_name(CAPTURED_ORG)
    for request in requests:
        cookies = dict(
            part.strip().split("=", 1) for part in request["headers"]["Cookie"].split(";")
        )
        assert identity_cookie.decode(cookies[name]) == ECID
        xdm = request["body"]["events"][0]["xdm"]
        assert xdm["identityMap"]["ECID"][0]["id"] == ECID
        assert check_event(xdm) == (xdm["eventType"], ())


@pytest.mark.parametrize("rename", [False, True], ids=["verbatim-cookie", "renamed-cookie"])
@pytest.mark.parametrize(
    "event_type",
    ["web.webpagedetails.pageViews", "commerce.productViews", "commerce.productListAdds"],
)
async def test_each_captured_request_is_acknowledged_with_the_identity_cookie(
    event_type: str, rename: bool, client: httpx.AsyncClient, stream: Datastream
) -> None:
    answer = await replay(client, stream, captured(event_type), rename=rename)
    stores = [h for h in answer["handle"] if h["type"] == "state:store"]
    cookies = {c["key"]: c["value"] for h in stores for c in h["payload"]}
    assert identity_cookie.decode(cookies[identity_cookie.cookie_name(stream.org_id)]) == ECID
    ids = [h for h in answer["handle"] if h["type"] == "identity:result"]
    assert ids and ids[0]["payload"][0]["id"] == ECID


async def test_the_captured_cookie_alone_names_the_visitor(
    client: httpx.AsyncClient, stream: Datastream, pipeline: Pipeline, services: Services
) -> None:
    request = captured("commerce.productListAdds")
    body = copy.deepcopy(request["body"])
    for event in body["events"]:
        del event["xdm"]["identityMap"], event["xdm"]["personID"]
    await replay(client, stream, request, body=body)
    assert pipeline.step() == 1
    rows = services.query.run("SELECT identityMap['ECID'][1].id, personID FROM demo_events").rows
    assert rows == [(ECID, None)]


async def test_the_captured_page_view_lands(
    client: httpx.AsyncClient, stream: Datastream, pipeline: Pipeline, services: Services
) -> None:
    await replay(client, stream, captured("web.webpagedetails.pageViews"))
    assert pipeline.step() == 1
    rows = services.query.run(
        "SELECT eventType, web.webPageDetails.pageViews.value, web.webPageDetails.siteSection, "
        "web.webPageDetails.name, web.webPageDetails.URL, identityMap['ECID'][1].id, "
        "identityMap['ECID'][1].\"primary\", personID, commerce, "
        "implementationDetails.name, timestamp::VARCHAR FROM demo_events"
    ).rows
    assert rows == [
        (
            "web.webpagedetails.pageViews",
            1.0,
            "pdp",
            "Joust Duffle Bag",
            "https://shop.cdp.test/collector-page.html?edge=edge.cdp.test&commerce=1",
            ECID,
            True,
            ECID,
            None,
            "https://ns.adobe.com/experience/alloy",
            "2026-11-29 16:21:21.928+00",
        )
    ]


async def test_the_captured_product_view_lands(
    client: httpx.AsyncClient, stream: Datastream, pipeline: Pipeline, services: Services
) -> None:
    await replay(client, stream, captured("commerce.productViews"))
    assert pipeline.step() == 1
    rows = services.query.run(
        "SELECT eventType, commerce.productViews.value, len(productListItems), "
        "productListItems[1].SKU, productListItems[1].name, productListItems[1].priceTotal, "
        "productListItems[1].currencyCode, productListItems[1].discountAmount, "
        "commerce.commerceScope.environmentID, commerce.commerceScope.websiteCode, "
        "commerce.commerceScope.storeCode, commerce.commerceScope.storeViewCode, "
        "identityMap['ECID'][1].id FROM demo_events"
    ).rows
    assert rows == [
        (
            "commerce.productViews",
            1.0,
            1,
            "24-MB01",
            "Joust Duffle Bag",
            34.0,
            "USD",
            0.0,
            *SCOPE,
            ECID,
        )
    ]


async def test_the_captured_add_to_cart_lands_with_its_empty_product_list(
    client: httpx.AsyncClient, stream: Datastream, pipeline: Pipeline, services: Services
) -> None:
    await replay(client, stream, captured("commerce.productListAdds"))
    assert pipeline.step() == 1
    assert services.query.run("SELECT count(*) FROM quarantine").rows == [(0,)]
    rows = services.query.run(
        "SELECT eventType, commerce.productListAdds.value, commerce.cart.cartID, "
        "len(productListItems), commerce.commerceScope.environmentID, "
        "commerce.commerceScope.websiteCode, commerce.commerceScope.storeCode, "
        "commerce.commerceScope.storeViewCode, identityMap['ECID'][1].id, personID "
        "FROM demo_events"
    ).rows
    assert rows == [("commerce.productListAdds", 1.0, "cart-1", 0, *SCOPE, ECID, ECID)]


async def test_the_three_captured_requests_land_once_each_when_replayed_twice(
    client: httpx.AsyncClient, stream: Datastream, pipeline: Pipeline, services: Services
) -> None:
    for _ in range(2):
        for request in captured_interacts():
            await replay(client, stream, request)
        pipeline.step()
    rows = services.query.run(
        "SELECT eventType, count(*), min(identityMap['ECID'][1].id) FROM demo_events "
        "GROUP BY 1 ORDER BY 1"
    ).rows
    assert rows == [
        ("commerce.productListAdds", 1, ECID),
        ("commerce.productViews", 1, ECID),
        ("web.webpagedetails.pageViews", 1, ECID),
    ]
