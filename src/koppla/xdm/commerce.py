"""Koppla's definition of XDM commerce data: `productListItems[]` and the `commerce` object.

Written from the facts in Adobe's XDM datatypes (productlistitem, commerce, order, paymentitem,
refunditem, return, returnitem, shipping, billing, address, cart, requisitionlist, commercescope,
categorydata, measure), with the deviations real Commerce clients need marked at each field.
"""

from __future__ import annotations

from koppla.xdm.types import (
    BOOLEAN,
    DATE,
    DATE_TIME,
    INTEGER,
    NUMBER,
    STRING,
    Array,
    Object,
    Scalar,
)

CURRENCY_CODE = Scalar("string", pattern="^[A-Z]{3}$", description="ISO 4217 alphabetic code.")
COUNTRY_CODE = Scalar("string", pattern="^[A-Z]{2}$", description="ISO 3166-1 alpha-2 code.")
STATE_PROVINCE = Scalar(
    "string", pattern="([A-Z]{2}-[A-Z0-9]{1,3}|)", description="ISO 3166-2 subdivision code."
)
LATITUDE = Scalar("number", minimum=-90, maximum=90)
LONGITUDE = Scalar("number", minimum=-180, maximum=180)

MEASURE = Object(
    {"id": STRING, "value": NUMBER},
    required=frozenset({"value"}),
    description="An XDM measure: a quantifiable metric, `{value: 1}` for an action flag.",
)

ADDRESS = Object(
    {
        "_id": STRING,
        "primary": BOOLEAN,
        "label": STRING,
        "street1": STRING,
        "street2": STRING,
        "street3": STRING,
        "street4": STRING,
        "city": STRING,
        "region": STRING,
        "state": STRING,
        "stateProvince": STATE_PROVINCE,
        "postalCode": STRING,
        "postOfficeBox": STRING,
        "country": STRING,
        "countryCode": COUNTRY_CODE,
        "dmaID": INTEGER,
        "msaID": INTEGER,
        "schema:description": STRING,
        "schema:latitude": LATITUDE,
        "schema:longitude": LONGITUDE,
        "schema:elevation": NUMBER,
        "status": STRING,
        "statusReason": STRING,
        "lastVerifiedDate": DATE,
    },
    description="A postal address (XDM common/address).",
)

PAYMENT_ITEM = Object(
    {
        "transactionID": STRING,
        "paymentAmount": NUMBER,
        # XDM lists paymentType values only as an advisory meta:enum; Commerce sends the raw
        # Magento method code (e.g. `checkmo`), so Koppla keeps it free-form.
        "paymentType": STRING,
        "currencyCode": CURRENCY_CODE,
    }
)

REFUND_ITEM = Object(
    {
        "transactionID": STRING,
        "refundAmount": NUMBER,
        "refundReason": Scalar("string", enum=("return", "price_adjustment")),
        # Deviation: XDM enforces an enum here; Koppla keeps it free-form like `paymentType`,
        # because Commerce credit memos carry the raw Magento payment method code.
        "refundPaymentType": STRING,
        "currencyCode": CURRENCY_CODE,
    }
)

RETURN = Object({"returnID": STRING, "returnStatus": STRING, "purchaseID": STRING})

RETURN_ITEM = Object(
    {
        "returnStatus": STRING,
        "returnReason": STRING,
        "returnItemCondition": STRING,
        "returnResolution": STRING,
        "returnQuantityRequested": INTEGER,
        "returnQuantityAuthorized": INTEGER,
        # XDM's own misspelling, kept because Adobe's schema and examples use it.
        "returnQuanitityAuthorized": INTEGER,
        "returnQuantityReceived": INTEGER,
        "returnQuantityApproved": INTEGER,
    }
)

ORDER = Object(
    {
        "purchaseID": STRING,
        "purchaseOrderNumber": STRING,
        "payments": Array(PAYMENT_ITEM),
        # Back-office docs write `commerce.refunds[]`; XDM puts refunds on the order.
        "refunds": Array(REFUND_ITEM),
        "returns": RETURN,
        "currencyCode": CURRENCY_CODE,
        "taxAmount": NUMBER,
        "discountAmount": NUMBER,
        "priceTotal": NUMBER,
        "orderType": Scalar("string", enum=("checkout", "instant_purchase")),
        "createdDate": DATE_TIME,
        "lastUpdatedDate": DATE_TIME,
        "cancelDate": DATE_TIME,
        "refundTotal": NUMBER,
    }
)

SHIPPING = Object(
    {
        "shippingMethod": STRING,
        "shippingAmount": NUMBER,
        "currencyCode": CURRENCY_CODE,
        "shippingDestination": Scalar("string", enum=("home", "store")),
        "shipDate": DATE_TIME,
        "address": ADDRESS,
        # Deviation: XDM types trackingNumber as a number, but carrier tracking numbers are
        # strings (letters, leading zeros, more digits than a float holds), so Koppla uses string.
        "trackingNumber": Scalar(
            "string", description="Carrier tracking number (string in Koppla)."
        ),
        "trackingURL": STRING,
    }
)

BILLING = Object({"address": ADDRESS})

CART = Object({"cartID": STRING, "cartSource": STRING})

REQUISITION_LIST = Object({"ID": STRING, "name": STRING, "description": STRING})

COMMERCE_SCOPE = Object(
    {"environmentID": STRING, "websiteCode": STRING, "storeCode": STRING, "storeViewCode": STRING}
)

CATEGORY_DATA = Object({"categoryID": STRING, "categoryName": STRING, "categoryPath": STRING})

SELECTED_OPTION = Object({"attribute": STRING, "value": STRING})

PRODUCT_LIST_ITEM = Object(
    {
        "SKU": STRING,
        "_id": STRING,
        "product": STRING,
        "name": STRING,
        "productImageUrl": STRING,
        "productAddMethod": STRING,
        "currencyCode": CURRENCY_CODE,
        "quantity": INTEGER,
        "priceTotal": NUMBER,
        "selectedOptions": Array(SELECTED_OPTION),
        "discountAmount": NUMBER,
        "refundAmount": NUMBER,
        "productCategories": Array(CATEGORY_DATA),
        "returnItem": RETURN_ITEM,
        # Not in the XDM productlistitem datatype, but Adobe's Commerce Details example uses it
        # and back-office events carry the Commerce line item id (docs call it `id`).
        "lineItemId": STRING,
    },
    required=frozenset({"SKU"}),
    description="One product in a list (cart, order, view, search results).",
)

_MEASURE_NAMES = (
    "cartAbandons",
    "checkouts",
    "productListAdds",
    "productListOpens",
    "productListRemovals",
    "productListReopens",
    "productListViews",
    "productViews",
    "purchases",
    "saveForLaters",
    "inStorePurchase",
    "instantPurchase",
    "requisitionListOpens",
    "requisitionListDeletes",
    "requisitionListAdds",
    "requisitionListRemovals",
)

COMMERCE = Object(
    {
        "order": ORDER,
        "promotionID": STRING,
        **{name: MEASURE for name in _MEASURE_NAMES},
        "cart": CART,
        "shipping": SHIPPING,
        "billing": BILLING,
        "requisitionList": REQUISITION_LIST,
        "commerceScope": COMMERCE_SCOPE,
    },
    description="Commerce actions (measures) and the order, cart, shipping and billing they touch.",
)
