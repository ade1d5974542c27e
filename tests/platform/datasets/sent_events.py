"""Varied events sent through the real edge, for the export tests: what was sent, and what an
export must give back for it."""

from __future__ import annotations

import copy
from typing import Any

import httpx

from koppla.core import codec
from koppla.platform.catalog.models import Datastream
from koppla.platform.pipeline.runner import Pipeline

ECID = "12345678901234567890123456789012345678"


def _identity(n: int) -> dict[str, Any]:
    # An event that names its ECID keeps its identityMap as sent (the edge adds none).
    return {"ECID": [{"id": f"{ECID[:-2]}{n:02d}", "authenticatedState": "ambiguous"}]}


SENT: list[dict[str, Any]] = [
    {  # a page view with few fields
        "_id": "export-page-view",
        "timestamp": "2026-12-01T08:00:00.000Z",
        "eventType": "web.webpagedetails.pageViews",
        "web": {"webPageDetails": {"name": "home", "pageViews": {"value": 1}}},
        "identityMap": _identity(1),
    },
    {  # a product view, unicode, an integer sent as 2.0 and a price sent as 19
        "_id": "export-product-view",
        "timestamp": "2026-12-01T10:00:00+02:00",
        "eventType": "commerce.productViews",
        "commerce": {"productViews": {"value": 1}},
        "productListItems": [
            {"SKU": "SMÖR-1", "name": "Smörgåsbord 🍞 «fresh»", "quantity": 2.0, "priceTotal": 19}
        ],
        "identityMap": {
            **_identity(2),
            "Email": [{"id": "ann@example.com", "authenticatedState": "authenticated"}],
        },
    },
    {  # unknown fields, at the top, nested, inside an array item and an identity
        "_id": "export-unknown-fields",
        "timestamp": "2026-12-02T23:30:00.5-05:30",
        "eventType": "web.webpagedetails.pageViews",
        "web": {
            "webPageDetails": {"name": "sale", "pageViews": {"value": 1.0}, "layout": "grid"},
            "abTest": {"variant": "B", "weights": [0.5, 0.5]},
        },
        "identityMap": {"ECID": [{"id": f"{ECID[:-2]}03", "primary": True, "source": "cookie"}]},
        "productListItems": [{"SKU": "s-1", "colour": "red"}, {"SKU": "s-2"}],
        "loyalty": {"tier": "gold", "points": 1200, "since": None},
        "emptyThings": {"list": [], "object": {}},
    },
    {  # an order: floats, an empty array, a date-time in the canonical form
        "_id": "export-order",
        "timestamp": "2026-12-03T12:00:00.123Z",
        "eventType": "commerce.purchases",
        "commerce": {
            "purchases": {"value": 1},
            "order": {
                "purchaseID": "100000042",
                "priceTotal": 42.5,
                "currencyCode": "EUR",
                "payments": [],
                "createdDate": "2026-12-03T13:00:00+01:00",
            },
        },
        "productListItems": [{"SKU": "s-9", "quantity": 3, "priceTotal": 42.5}],
        "identityMap": _identity(4),
    },
]


def expected() -> list[dict[str, Any]]:
    """What an export gives back for `SENT`: the same, numbers typed as the schema says."""
    back = copy.deepcopy(SENT)
    back[0]["web"]["webPageDetails"]["pageViews"]["value"] = 1.0
    item = back[1]["productListItems"][0]
    item["quantity"], item["priceTotal"] = 2, 19.0
    back[1]["commerce"]["productViews"]["value"] = 1.0
    back[3]["commerce"]["purchases"]["value"] = 1.0
    return back


async def land(client: httpx.AsyncClient, demo: Datastream, pipeline: Pipeline) -> None:
    """Send `SENT` to the edge as one request and run the pipeline until they are stored."""
    response = await client.post(
        f"/ee/v2/interact?configId={demo.id}",
        content=codec.dumps({"events": [{"xdm": xdm} for xdm in SENT]}),
        headers={"content-type": "text/plain; charset=UTF-8"},
    )
    assert response.status_code == 200, response.text
    stored = 0
    for _ in range(20):
        stored += pipeline.step()
        if stored >= len(SENT):
            return
    raise AssertionError(f"only {stored} of {len(SENT)} events were stored")
