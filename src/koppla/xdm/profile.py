"""Koppla's commerce profile schema: the XDM Individual Profile record a shop sends per customer.

The Individual Profile class with the field groups Adobe Commerce's Data Connection asks for
(domain.md §6.2): Demographic Details (`person`), Personal Contact Details (email, addresses and
phones), User Account Details (`userAccount`), the identity map, and the custom identity
attributes of release 3.3.0 (`hashedPID`, `hashedSID`, `primaryID`, `secondaryID`). Records are
not events: no `timestamp` is required, and `_id`, when absent, is derived from the content.
"""

from __future__ import annotations

from functools import cache

from koppla.xdm.commerce import ADDRESS
from koppla.xdm.experience_event import CHANNEL, EMAIL_ADDRESS, IDENTITY_MAP
from koppla.xdm.types import BOOLEAN, DATE, DATE_TIME, INTEGER, STRING, Object, Schema, Type

PROFILE_SCHEMA_ID = "https://ns.koppla.dev/xdm/commerce-profile"
PROFILE_CLASS = "https://ns.adobe.com/xdm/context/profile"

PHONE = Object(
    {
        "primary": BOOLEAN,
        "number": STRING,
        "countryCode": STRING,
        "extension": STRING,
        "status": STRING,
    }
)

PERSON = Object(
    {
        "name": Object(
            {
                "firstName": STRING,
                "middleName": STRING,
                "lastName": STRING,
                "fullName": STRING,
                "courtesyTitle": STRING,
                "suffix": STRING,
            }
        ),
        "birthDate": DATE,
        "birthYear": INTEGER,
        "gender": STRING,
    }
)

USER_ACCOUNT = Object(
    {
        "ID": STRING,
        "startDate": DATE_TIME,
        "accountStatus": STRING,
    },
    description="User Account Details: `startDate` is when the shop account was created.",
)

AUDIT = Object(
    {"createdDate": DATE_TIME, "lastUpdatedDate": DATE_TIME, "lastActivityDate": DATE_TIME}
)


def _fields() -> dict[str, Type]:
    return {
        "_id": STRING,
        "identityMap": IDENTITY_MAP,
        "channel": CHANNEL,
        "person": PERSON,
        "personalEmail": EMAIL_ADDRESS,
        "mobilePhone": PHONE,
        "homePhone": PHONE,
        "homeAddress": ADDRESS,
        "billingAddress": ADDRESS,
        "billingAddressPhone": PHONE,
        "shippingAddress": ADDRESS,
        "shippingAddressPhone": PHONE,
        "userAccount": USER_ACCOUNT,
        "extSourceSystemAudit": AUDIT,
        "hashedPID": STRING,
        "hashedSID": STRING,
        "primaryID": STRING,
        "secondaryID": STRING,
    }


@cache
def commerce_profile() -> Schema:
    """Koppla's commerce profile schema (one shared, immutable instance)."""
    root = Object(
        _fields(),
        description="An XDM Individual Profile record of one shop customer.",
    )
    return Schema(
        id=PROFILE_SCHEMA_ID,
        title="Koppla Commerce Profile",
        xdm_class=PROFILE_CLASS,
        root=root,
    )
