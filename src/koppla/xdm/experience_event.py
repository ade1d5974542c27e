"""Koppla's commerce ExperienceEvent schema: what storefront and back-office events may carry.

The XDM ExperienceEvent class plus the field groups Adobe Commerce's Data Connection asks for:
Commerce Details, Web Details, Environment and Implementation Details, Channel Details, Site
Search, User Login Process, Reference Keys, Personal Contact Details, Demographic Details (name),
Campaign Marketing Details and the identity map.
"""

from __future__ import annotations

from functools import cache

from koppla.xdm.commerce import COMMERCE, MEASURE, PRODUCT_LIST_ITEM
from koppla.xdm.context import (
    DEVICE,
    ENVIRONMENT,
    IMPLEMENTATION_DETAILS,
    PLACE_CONTEXT,
    WEB,
)
from koppla.xdm.types import (
    BOOLEAN,
    DATE_TIME,
    INTEGER,
    STRING,
    Array,
    Map,
    Object,
    Scalar,
    Schema,
    Type,
)

SCHEMA_ID = "https://ns.koppla.dev/xdm/commerce-experienceevent"
EXPERIENCE_EVENT_CLASS = "https://ns.adobe.com/xdm/context/experienceevent"

IDENTITY_ITEM = Object(
    {
        "id": STRING,
        "authenticatedState": Scalar("string", enum=("ambiguous", "authenticated", "loggedOut")),
        "primary": BOOLEAN,
    }
)

IDENTITY_MAP = Map(Array(IDENTITY_ITEM))

CHANNEL = Object(
    {
        # XDM makes the channel's `_id` required; storefront clients send `{_id, _type}`, but
        # custom events may not, so Koppla leaves it optional.
        "_id": STRING,
        "_type": STRING,
        "typeAtSource": STRING,
        "mode": Scalar("string", enum=("push", "pull", "bidirectional")),
        "mediaType": STRING,
        "mediaAction": STRING,
        "contentTypes": Array(STRING),
        "metricTypes": Array(STRING),
        "locationTypes": Array(STRING),
        "referringSource": STRING,
    }
)

SEARCH_FILTER = Object({"attribute": STRING, "value": Array(STRING), "isRange": BOOLEAN})

SITE_SEARCH = Object(
    {
        "query": STRING,
        "sort": Array(
            Object(
                {
                    "attribute": STRING,
                    "order": Scalar("string", enum=("ASC", "DESC", "RELEVANCE")),
                }
            )
        ),
        "filter": Array(SEARCH_FILTER),
        # Deviation: not in XDM's sitesearch datatype, but the Commerce event collector sends
        # the applied filters as `refinements` (same item shape as `filter`); Koppla accepts both.
        "refinements": Array(SEARCH_FILTER),
        "suggestions": Array(STRING),
        # The number of products on the returned page, not the total hit count.
        "numberOfResults": INTEGER,
    }
)

USER_ACCOUNT = Object(
    {
        "accountSwitch": INTEGER,
        "cookieConsentAccepted": BOOLEAN,
        "cookieConsentViewed": INTEGER,
        "forgotPassword": INTEGER,
        "forgotUsername": INTEGER,
        "login": INTEGER,
        "loginBiometric": BOOLEAN,
        "loginFailure": INTEGER,
        "loginLocation": STRING,
        "loginKeychain": BOOLEAN,
        "loginMultiFactor": BOOLEAN,
        "loginStatus": STRING,
        "loginThirdParty": INTEGER,
        "loginThirdPartySite": STRING,
        "loginType": STRING,
        "logout": INTEGER,
        "resetPassword": INTEGER,
        "sessionTimeout": INTEGER,
        "updateProfile": INTEGER,
        "createProfile": INTEGER,
    },
    description="User Login Process: plain integers (1 per action), not measures.",
)

PERSON = Object(
    {
        "accountID": STRING,
        "accountType": STRING,
        "personalEmailID": STRING,
        # From Demographic Details, used by back-office profile events (account created/updated).
        "name": Object(
            {
                "firstName": STRING,
                "lastName": STRING,
                "middleName": STRING,
                "fullName": STRING,
                "courtesyTitle": STRING,
                "suffix": STRING,
            }
        ),
    }
)

EMAIL_ADDRESS = Object(
    {
        "address": STRING,
        "primary": BOOLEAN,
        "label": STRING,
        "type": STRING,
        "status": STRING,
        "statusReason": STRING,
    }
)

MARKETING = Object({"trackingCode": STRING, "campaignName": STRING, "campaignGroup": STRING})


def _fields() -> dict[str, Type]:
    return {
        "_id": Scalar("string", description="Unique event id; the pipeline assigns one if absent."),
        "timestamp": DATE_TIME,
        # XDM's eventType meta:enum is advisory and lacks many Commerce types: free-form here.
        "eventType": STRING,
        "eventMergeId": STRING,
        "producedBy": STRING,
        "identityMap": IDENTITY_MAP,
        # Deprecated by Adobe, still sent by the Commerce collector (= ECID).
        "personID": STRING,
        "channel": CHANNEL,
        "web": WEB,
        "device": DEVICE,
        "environment": ENVIRONMENT,
        "placeContext": PLACE_CONTEXT,
        "implementationDetails": IMPLEMENTATION_DETAILS,
        "productListItems": Array(PRODUCT_LIST_ITEM),
        "commerce": COMMERCE,
        "personalEmail": EMAIL_ADDRESS,
        "person": PERSON,
        "userAccount": USER_ACCOUNT,
        "siteSearch": SITE_SEARCH,
        "searchRequest": MEASURE,
        "searchResponse": MEASURE,
        "marketing": MARKETING,
    }


@cache
def commerce_experience_event() -> Schema:
    """Koppla's commerce ExperienceEvent schema (one shared, immutable instance)."""
    root = Object(
        _fields(),
        required=frozenset({"_id", "timestamp"}),
        description="An XDM ExperienceEvent from a storefront or the Commerce back office.",
    )
    return Schema(
        id=SCHEMA_ID,
        title="Koppla Commerce ExperienceEvent",
        xdm_class=EXPERIENCE_EVENT_CLASS,
        root=root,
    )
