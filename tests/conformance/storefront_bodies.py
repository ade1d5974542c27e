"""Representative storefront event bodies, shaped as the Magento storefront collector sends them.

Built from the domain notes: the §3.2 envelope (alloy context, `personID`, `commerceScope` on all
events but page views), the §3.3 identity map (ECID primary; `email` secondary when the event
carries `personalEmail.address`), §4.2 `productListItems` and the §4.3 per-event extras.
"""

from __future__ import annotations

import copy
from typing import Any

ECID = "12345678901234567890123456789012345678"
EMAIL = "roni_cost@example.com"
CART_ID = "cart-7"
ORDER_ID = "000000042"
REQUISITION_LIST_ID = "3"
STORE_URL = "https://shop.example"
SCOPE = {
    "environmentID": "env-1",
    "storeCode": "main_website_store",
    "storeViewCode": "default",
    "websiteCode": "base",
}

BAG = {
    "SKU": "24-MB01",
    "name": "Joust Duffle Bag",
    "quantity": 2,
    "priceTotal": 68.0,
    "productImageUrl": f"{STORE_URL}/media/mb01.jpg",
    "currencyCode": "USD",
    "discountAmount": 0,
    "selectedOptions": [],
}
TEE = {
    "SKU": "MS09-M-Blue",
    "name": "Ariel Roll Sleeve Sweatshirt",
    "quantity": 1,
    "priceTotal": 39.0,
    "productImageUrl": f"{STORE_URL}/media/ms09.jpg",
    "currencyCode": "USD",
    "discountAmount": 0,
    "selectedOptions": [
        {"attribute": "Size", "value": "M"},
        {"attribute": "Color", "value": "Blue"},
    ],
}


def envelope(event_type: str, *, page: str = "/", minute: int = 0) -> dict[str, Any]:
    """The fields alloy and the collector put on every storefront event (§3.2, §3.3)."""
    stamp = f"2026-11-29T16:{minute:02d}:22.403Z"
    return {
        "eventType": event_type,
        "timestamp": stamp,
        "identityMap": {"ECID": [{"id": ECID, "primary": True}]},
        "personID": ECID,
        "web": {"webPageDetails": {"URL": STORE_URL + page}, "webReferrer": {"URL": ""}},
        "device": {"screenHeight": 720, "screenWidth": 1280, "screenOrientation": "landscape"},
        "environment": {
            "type": "browser",
            "browserDetails": {"viewportWidth": 1280, "viewportHeight": 720},
        },
        "placeContext": {
            "localTimezoneOffset": 0,
            "localTime": stamp.replace("Z", "+00:00"),
            "ianaTimezone": "UTC",
        },
        "implementationDetails": {
            "name": "https://ns.adobe.com/experience/alloy",
            "version": "2.33.1",
            "environment": "browser",
        },
    }


def _commerce(event_type: str, page: str, **commerce: Any) -> dict[str, Any]:
    """A commerce event: the envelope, its measure `{value: 1}` and the store scope."""
    xdm = envelope(event_type, page=page)
    measure = event_type.split(".", 1)[1]
    xdm["commerce"] = {measure: {"value": 1}, **commerce, "commerceScope": dict(SCOPE)}
    return xdm


def _with_email(xdm: dict[str, Any]) -> dict[str, Any]:
    """`personalEmail.address` plus the collector's secondary `email` identity (§3.3 rule 3)."""
    xdm["personalEmail"] = {"address": EMAIL}
    xdm["identityMap"]["email"] = [{"id": EMAIL, "primary": False}]
    return xdm


def page_view() -> dict[str, Any]:
    xdm = envelope("web.webpagedetails.pageViews", page="/gear/bags.html")
    xdm["web"]["webPageDetails"].update(
        {"pageViews": {"value": 1}, "siteSection": "category", "name": "Bags"}
    )
    return xdm


def product_view() -> dict[str, Any]:
    xdm = _commerce("commerce.productViews", "/joust-duffle-bag.html")
    item = {k: BAG[k] for k in ("SKU", "name", "productImageUrl", "currencyCode")}
    xdm["productListItems"] = [{**item, "priceTotal": 34.0, "discountAmount": 0}]
    return xdm


def _cart_event(event_type: str, items: list[dict[str, Any]]) -> dict[str, Any]:
    xdm = _commerce(event_type, "/checkout/cart/", cart={"cartID": CART_ID})
    xdm["productListItems"] = copy.deepcopy(items)
    return xdm


def add_to_cart() -> dict[str, Any]:
    return _cart_event("commerce.productListAdds", [TEE, BAG])


def open_cart() -> dict[str, Any]:
    return _cart_event("commerce.productListOpens", [TEE, BAG])


def remove_from_cart() -> dict[str, Any]:
    return _cart_event("commerce.productListRemovals", [TEE, BAG])


def cart_view() -> dict[str, Any]:
    xdm = _cart_event("commerce.productListViews", [TEE, BAG])
    xdm["commerce"]["order"] = {"discountAmount": 0}
    return xdm


def start_checkout() -> dict[str, Any]:
    xdm = _cart_event("commerce.checkouts", [TEE, BAG])
    xdm["commerce"]["order"] = {"discountAmount": 0}
    return xdm


def place_order() -> dict[str, Any]:
    xdm = _cart_event("commerce.purchases", [TEE, BAG])
    xdm["commerce"]["order"] = {
        "purchaseID": ORDER_ID,
        "currencyCode": "USD",
        "payments": [
            {
                "paymentAmount": 112.0,
                "paymentType": "checkmo",
                "transactionID": ORDER_ID,
                "currencyCode": "USD",
            }
        ],
        "orderType": "checkout",
        "discountAmount": 0,
        "priceTotal": 112.0,
        "taxAmount": 0,
    }
    xdm["commerce"]["promotionID"] = "H20"
    xdm["commerce"]["shipping"] = {"shippingMethod": "flatrate_flatrate", "shippingAmount": 5.0}
    return _with_email(xdm)


def _account(event_type: str) -> dict[str, Any]:
    xdm = envelope(event_type, page="/customer/account/")
    xdm["userAccount"] = {event_type.split(".")[1]: 1}
    xdm["commerce"] = {"commerceScope": dict(SCOPE)}
    xdm["person"] = {"accountID": "17"}
    return _with_email(xdm)


def sign_in() -> dict[str, Any]:
    return _account("userAccount.login")


def sign_out() -> dict[str, Any]:
    xdm = envelope("userAccount.logout", page="/customer/account/logout/")
    xdm["userAccount"] = {"logout": 1}
    xdm["commerce"] = {"commerceScope": dict(SCOPE)}
    return xdm


def create_account() -> dict[str, Any]:
    return _account("userAccount.createProfile")


def edit_account() -> dict[str, Any]:
    return _account("userAccount.updateProfile")


def search_request() -> dict[str, Any]:
    xdm = envelope("searchRequest", page="/catalogsearch/result/?q=bag")
    xdm["searchRequest"] = {"id": "search-1", "value": 1}
    xdm["siteSearch"] = {
        "query": "bag",
        "sort": [{"attribute": "price", "order": "ASC"}],
        "refinements": [
            {"attribute": "price", "value": ["0", "50"], "isRange": True},
            {"attribute": "color", "value": ["Blue"], "isRange": False},
        ],
    }
    xdm["commerce"] = {"commerceScope": dict(SCOPE)}
    return xdm


def search_response() -> dict[str, Any]:
    xdm = envelope("searchResponse", page="/catalogsearch/result/?q=bag")
    xdm["searchResponse"] = {"id": "search-1", "value": 1}
    xdm["siteSearch"] = {"suggestions": ["bags", "bag pack"], "numberOfResults": 2}
    xdm["productListItems"] = [
        {"SKU": BAG["SKU"], "name": BAG["name"], "productImageUrl": BAG["productImageUrl"]},
        {"SKU": "24-MB04", "name": "Strive Shoulder Pack", "productImageUrl": "s.jpg"},
    ]
    xdm["commerce"] = {"commerceScope": dict(SCOPE)}
    return xdm


def _requisition(event_type: str, items: list[dict[str, Any]] | None) -> dict[str, Any]:
    xdm = _commerce(
        event_type,
        "/requisition_list/",
        requisitionList={"ID": REQUISITION_LIST_ID, "name": "Weekly", "description": "Restock"},
    )
    if items is not None:
        xdm["productListItems"] = [
            {k: item[k] for k in ("SKU", "name", "quantity", "priceTotal", "currencyCode")}
            | {"selectedOptions": item["selectedOptions"]}
            for item in items
        ]
    return _with_email(xdm)


def create_requisition_list() -> dict[str, Any]:
    return _requisition("commerce.requisitionListOpens", None)


def add_to_requisition_list() -> dict[str, Any]:
    return _requisition("commerce.requisitionListAdds", [TEE, BAG])


def remove_from_requisition_list() -> dict[str, Any]:
    return _requisition("commerce.requisitionListRemovals", [TEE, BAG])


def delete_requisition_list() -> dict[str, Any]:
    return _requisition("commerce.requisitionListDeletes", None)


def custom_event() -> dict[str, Any]:
    """`mse.publish.custom(...)`: the caller's XDM plus identity; no scope, any `eventType`."""
    xdm = envelope("acme.wishlistShared", page="/wishlist/")
    xdm["productListItems"] = [{"SKU": BAG["SKU"], "quantity": 1}]
    return xdm


def request(*events: dict[str, Any]) -> dict[str, Any]:
    """An `/ee/v1/interact` body carrying `events` (each an `xdm` object)."""
    return {
        "events": [{"xdm": copy.deepcopy(xdm)} for xdm in events],
        "query": {"identity": {"fetch": ["ECID", "CORE"]}},
        "meta": {"queueTimeMillis": 1, "state": {"domain": "shop.example", "cookiesEnabled": True}},
    }
