"""Customer profile events and records (domain.md §6): pure builders from customer snapshots.

`profile_event` builds `userAccount.backofficeCreateProfile` / `...UpdateProfile` /
`...DeleteProfile` ExperienceEvents (§6.1); `profile_record` builds the XDM Individual Profile
record (§6.2). Both identify the customer by the Commerce customer id (namespace `CustomerId`,
primary) and the email (secondary). Their `_id`s are derived from the environment, the website,
the customer id, the kind, the snapshot hash and the customer's `updated_at`: a resend names them
as before, and every real change (even back to an earlier state) is a new event and record.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from koppla.connector.events import EventContext, address, commerce_scope, prune
from koppla.connector.redaction import identity
from koppla.core.ids import derived_uuid

Snapshot = Mapping[str, Any]
Document = dict[str, Any]

CREATE_PROFILE = "userAccount.backofficeCreateProfile"
UPDATE_PROFILE = "userAccount.backofficeUpdateProfile"
DELETE_PROFILE = "userAccount.backofficeDeleteProfile"
RECORD = "profileRecord"

CUSTOMER_NAMESPACE = "CustomerId"
"""identityMap namespace of the Commerce customer id ("Commerce Customer ID", §3.3)."""

WEB_CHANNEL = {
    "_id": "https://ns.adobe.com/xdm/channels/web",
    "_type": "https://ns.adobe.com/xdm/channel-types/web",
}


def profile_id(ctx: EventContext, snap: Snapshot, digest: str, kind: str) -> str:
    """The deterministic `_id` of a profile event (`kind` = its eventType) or record."""
    return derived_uuid(
        "koppla-connector-profile",
        ctx.environment_id,
        ctx.website_code,
        str(snap["customerId"]),
        kind,
        digest,
        str(snap.get("updatedAt") or ""),
    )


def identity_map(snap: Snapshot, ctx: EventContext) -> Document:
    """`CustomerId` (primary) and the email (secondary; hashed with `redact`)."""
    out: Document = {CUSTOMER_NAMESPACE: [{"id": str(snap["customerId"]), "primary": True}]}
    email = snap.get("email")
    if email:
        namespace, value = identity(str(email), redact=ctx.redact)
        out[namespace] = [{"id": value, "primary": False}]
    return out


def _email(snap: Snapshot, ctx: EventContext) -> str | None:
    email = snap.get("email")
    return identity(str(email), redact=ctx.redact)[1] if email else None


def profile_event(
    snap: Snapshot, digest: str, event_type: str, ctx: EventContext, when: str | None = None
) -> Document:
    """A profile event, stamped `when` (default: the customer's `updated_at`)."""
    event = {
        "_id": profile_id(ctx, snap, digest, event_type),
        "timestamp": when or snap["updatedAt"],
        "eventType": event_type,
        "identityMap": identity_map(snap, ctx),
        "person": {"name": {"firstName": snap.get("firstName"), "lastName": snap.get("lastName")}},
        "personalEmail": {"address": _email(snap, ctx)},
        "commerce": {"commerceScope": commerce_scope(snap, ctx)},
    }
    pruned: Document = prune(event)
    return pruned


def _address(raw: Mapping[str, Any] | None) -> Document | None:
    """The order events' `address`, with every street line and `primary: false` (§6.2)."""
    base = address(raw)
    if base is None or raw is None:
        return None
    lines = list(raw.get("multiLineStreet") or [])
    return {
        **base,
        "street3": lines[2] if len(lines) > 2 else None,
        "street4": ", ".join(lines[3:]) or None,
        "primary": False,
    }


def _phone(raw: Mapping[str, Any] | None) -> Document | None:
    number = raw.get("telephone") if raw else None
    return {"number": number, "primary": False} if number else None


def profile_record(snap: Snapshot, digest: str, ctx: EventContext) -> Document:
    """The customer's Individual Profile record; with `redact`, without addresses and phones."""
    billing, shipping = snap.get("billingAddress"), snap.get("shippingAddress")
    record: Document = {
        "_id": profile_id(ctx, snap, digest, RECORD),
        "identityMap": identity_map(snap, ctx),
        "channel": dict(WEB_CHANNEL),
        "person": {
            "name": {
                "firstName": snap.get("firstName"),
                "middleName": snap.get("middleName"),
                "lastName": snap.get("lastName"),
            },
            "birthDate": snap.get("birthDate"),
        },
        "personalEmail": {"address": _email(snap, ctx)},
        "userAccount": {"startDate": snap.get("createdAt")},
        "extSourceSystemAudit": {"lastUpdatedDate": snap.get("updatedAt")},
    }
    if not ctx.redact:
        record.update(
            billingAddress=_address(billing),
            billingAddressPhone=_phone(billing),
            shippingAddress=_address(shipping),
            shippingAddressPhone=_phone(shipping),
        )
    pruned: Document = prune(record)
    return pruned
