"""Koppla's catalogue of ExperienceEvent types: names, old names, measures and per-type rules.

`eventType` stays free-form: a type the catalogue does not know (a custom event, or none at all)
is stored as sent, with no per-type rules. A known type may carry a few rules: the fields that the
real clients (the Magento storefront collector, Koppla's back-office connector, Adobe's documented
back-office and profile emitters) *always* send for that type, so that an event without them is a
broken event rather than a client Koppla does not know. Everything else about the shape of an
event (types, enums, `productListItems[].SKU` on every item, as XDM's productlistitem datatype
requires) is the schema's job (`koppla.xdm.validation`); the rules here never repeat it.

Old names (the 2022 back-office names, the XDM enum spelling of shipment completed, a documented
typo) are accepted on ingest and stored under the current name.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal, TypeAlias

from koppla.xdm.types import Schema
from koppla.xdm.validation import Issue, Validated, validate, validate_json

Kind: TypeAlias = Literal["storefront", "backoffice", "profile"]


@dataclass(frozen=True, slots=True)
class Required:
    """A field an event of some type must carry, named as issue paths name it.

    `commerce.order.purchaseID`: the value there must be present, not null and not `""`.
    `productListItems[0].SKU`: the list must be present and non-empty; what each item holds
    (`SKU` on every item) is checked by the schema, so it is not reported twice.
    """

    path: str
    keys: tuple[str, ...] = field(init=False, repr=False, compare=False)
    is_list: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        head, marker, _ = self.path.partition("[0].")
        object.__setattr__(self, "keys", tuple(head.split(".")))
        object.__setattr__(self, "is_list", bool(marker))

    def met_by(self, xdm: Mapping[str, Any]) -> bool:
        """True when `xdm` carries this field."""
        node: Any = xdm
        for key in self.keys:
            if not isinstance(node, Mapping):
                return False
            node = node.get(key)
        if self.is_list:
            return isinstance(node, list) and bool(node)
        return node is not None and node != ""


@dataclass(frozen=True, slots=True)
class EventType:
    """One event type Koppla knows.

    `measure` is the path of the value that counts the event (`commerce.productListAdds.value`,
    or `userAccount.login`, a plain integer), `None` for types without one (back-office and
    profile events). `required` lists the fields a body of this type must carry to be stored;
    `aliases` the older names that Koppla stores under `name`.
    """

    name: str
    kind: Kind
    title: str
    measure: str | None = None
    required: tuple[Required, ...] = ()
    aliases: tuple[str, ...] = ()
    issues: tuple[Issue, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        issues = tuple(
            Issue(r.path, "required", f"{self.name} events need {r.path}") for r in self.required
        )
        object.__setattr__(self, "issues", issues)

    def check(self, xdm: Mapping[str, Any]) -> tuple[Issue, ...]:
        """The rules of this type that `xdm` breaks (one `required` issue per missing field)."""
        if not self.required:
            return ()
        return tuple(
            issue
            for rule, issue in zip(self.required, self.issues, strict=True)
            if not rule.met_by(xdm)
        )


SKU = Required("productListItems[0].SKU")
PURCHASE_ID = Required("commerce.order.purchaseID")
REQUISITION_LIST_ID = Required("commerce.requisitionList.ID")
SITE_SEARCH = Required("siteSearch")
EMAIL = Required("personalEmail.address")


def _storefront(
    name: str, title: str, measure: str, *required: Required, aliases: tuple[str, ...] = ()
) -> EventType:
    return EventType(name, "storefront", title, measure, tuple(required), aliases)


def _commerce(name: str, title: str, *required: Required) -> EventType:
    return _storefront(name, title, f"{name}.value", *required)


# §4.1 of the domain notes, in the collector's order. Cart events need no product and no cart id:
# the collector sends `productListItems: []` when the changed-products list is empty (captured),
# and `commerce.cart.cartID` comes from the page's shopping-cart context, which may have no id yet.
STOREFRONT: tuple[EventType, ...] = (
    _storefront("web.webpagedetails.pageViews", "Page view", "web.webPageDetails.pageViews.value"),
    _commerce("commerce.productViews", "Product page view", SKU),
    _commerce("commerce.productListAdds", "Add to cart"),
    _commerce("commerce.productListOpens", "Open cart (first add)"),
    _commerce("commerce.productListRemovals", "Remove from cart"),
    _commerce("commerce.productListViews", "Shopping cart view"),
    _commerce("commerce.checkouts", "Start checkout"),
    _commerce("commerce.purchases", "Complete checkout", PURCHASE_ID),
    _storefront("userAccount.login", "Sign in", "userAccount.login"),
    _storefront("userAccount.logout", "Sign out", "userAccount.logout"),
    _storefront("userAccount.createProfile", "Create account", "userAccount.createProfile"),
    _storefront("userAccount.updateProfile", "Edit account", "userAccount.updateProfile"),
    _storefront("searchRequest", "Search request sent", "searchRequest.value", SITE_SEARCH),
    _storefront("searchResponse", "Search response received", "searchResponse.value", SITE_SEARCH),
    _commerce("commerce.requisitionListOpens", "Create requisition list", REQUISITION_LIST_ID),
    _commerce("commerce.requisitionListAdds", "Add to requisition list", REQUISITION_LIST_ID),
    EventType(
        "commerce.requisitionListRemovals",
        "storefront",
        "Remove from requisition list",
        "commerce.requisitionListRemovals.value",
        (REQUISITION_LIST_ID,),
        aliases=("commerce.requsitionListRemovals",),  # the docs' typo
    ),
    _commerce("commerce.requisitionListDeletes", "Delete requisition list", REQUISITION_LIST_ID),
)


def _backoffice(name: str, title: str, *aliases: str) -> EventType:
    return EventType(name, "backoffice", title, None, (PURCHASE_ID,), aliases)


# §5.1: every back-office order event names its order (§5.2: purchaseID in every column).
BACKOFFICE: tuple[EventType, ...] = (
    _backoffice("commerce.backofficeOrderPlaced", "Order placed", "commerce.orderPlaced"),
    _backoffice("commerce.backofficeOrderInvoiced", "Order invoiced"),
    _backoffice(
        "commerce.backofficeOrderItemsShipped",
        "Order items shipped",
        "commerce.orderLineItemShipped",
    ),
    _backoffice(
        "commerce.backofficeOrderShipmentCompleted",
        "Order shipment completed",
        "commerce.backofficeShipmentCompleted",  # the XDM enum's spelling
    ),
    _backoffice("commerce.backofficeOrderCancelled", "Order cancelled", "commerce.orderCancelled"),
    _backoffice(
        "commerce.backofficeCreditMemoIssued",
        "Order line item refunded",
        "commerce.creditMemoIssued",
    ),
    _backoffice("commerce.backofficeOrderItemsReturnInitiated", "Order items return initiated"),
    _backoffice("commerce.backofficeOrderItemsReturnCompleted", "Order items return completed"),
)

# §6.1: account created/updated carry the shopper's email; a deletion is stored whatever it holds.
PROFILE: tuple[EventType, ...] = (
    EventType("userAccount.backofficeCreateProfile", "profile", "Account created", None, (EMAIL,)),
    EventType("userAccount.backofficeUpdateProfile", "profile", "Account updated", None, (EMAIL,)),
    EventType("userAccount.backofficeDeleteProfile", "profile", "Account deleted"),
)

EVENT_TYPES: Mapping[str, EventType] = MappingProxyType(
    {t.name: t for t in (*STOREFRONT, *BACKOFFICE, *PROFILE)}
)
"""Every event type Koppla knows, by current name."""

ALIASES: Mapping[str, str] = MappingProxyType(
    {alias: t.name for t in EVENT_TYPES.values() for alias in t.aliases}
)
"""Old name → current name."""


def canonical_event_type(name: str) -> str:
    """The current name of `name`: an alias becomes its type's name; anything else is unchanged."""
    return ALIASES.get(name, name)


def event_type(name: str) -> EventType | None:
    """The catalogue entry for `name` (current name or alias), `None` for an unknown type."""
    return EVENT_TYPES.get(ALIASES.get(name, name))


def check_event(xdm: Mapping[str, Any]) -> tuple[str | None, tuple[Issue, ...]]:
    """The canonical `eventType` of an event's `xdm` and the per-type issues it has.

    The type is `None` when `eventType` is absent or not a string (the schema reports the latter).
    Unknown types come back unchanged and without issues. Pure; a dict lookup or two per event.
    """
    raw = xdm.get("eventType")
    if not isinstance(raw, str):
        return None, ()
    name = ALIASES.get(raw, raw)
    known = EVENT_TYPES.get(name)
    if known is None:
        return name, ()
    return name, known.check(xdm)


def validate_event(schema: Schema, xdm: Mapping[str, Any], *, from_json: bool = True) -> Validated:
    """Validate an ExperienceEvent as Koppla stores it: schema, then the rules of its type.

    An old `eventType` name is replaced by its current one in the returned record. This is the
    one door for event validation: the pipeline, the debugger and synchronous ingestion use it.
    `xdm` holds values as JSON decodes them (or Parquet reads them: datetimes, dates), and an
    event with nothing to report is then checked at C speed (`validate_json`). Pass
    `from_json=False` for a document built in Python that may hold a tuple where the schema
    wants an array (`validate` reports it; the fast check would take it as an array).
    """
    event_type, type_issues = check_event(xdm)
    if event_type is not None and event_type != xdm.get("eventType"):
        xdm = {**xdm, "eventType": event_type}
    outcome = validate_json(schema, xdm) if from_json else validate(schema, xdm)
    if not type_issues:
        return outcome
    return Validated(outcome.record, outcome.issues + type_issues, outcome.unknown)
