"""The demo store: a Magento-shaped shop on SQLite, its generator and its simulator.

`DemoShop` writes rows the way Magento does (order + items + addresses + payment; invoice rows;
shipment + items + track; credit memo; state/status updates with `updated_at`; customers with
their default billing/shipping addresses), each business action in one transaction. Every
action appends a row to `sales_order_status_history` (the status after it, the source entity:
order, invoice, shipment or creditmemo), and every status change a row to
`sales_order_status_change_history` (an admin comment, `comment`, only the first); shipments and
credit memos may take some lines only, and the state follows Magento's state handler (a refund
of the unshipped rest completes an order, refunding everything closes it); the shop has
Magento's stock statuses in
`sales_order_status` and `sales_order_status_state`. The demo
customers 1..`CUSTOMERS` are the ones orders name: a registered shopper's order carries its
customer's email (`demo_customer`). It works on any engine whose tables have at least the columns of
`koppla.connector.schema` (the SQLite demo store, or a real Magento schema in tests).

Orders carry custom attributes as Magento keeps them: the payment's `additional_information`
JSON has the method's title and, on some orders, gift wrap, a delivery date, a gift message or a
rush priority (`order_information`); some watches and bags carry an engraving in the item's
`additional_data` (`item_information`). A demo store made by an older Koppla gets those columns
added (`add_missing_columns`).
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, Integer, Table, delete, func, inspect, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from koppla.connector import schema as t
from koppla.core import clock, codec
from koppla.core.ddl import create_all

Row = dict[str, Any]

FIRST = (
    "Ana",
    "Ben",
    "Chloe",
    "David",
    "Emma",
    "Felix",
    "Grace",
    "Hugo",
    "Iris",
    "Jonas",
    "Katja",
    "Liam",
    "Mia",
    "Noah",
    "Olga",
    "Paul",
    "Rosa",
    "Sven",
    "Tara",
    "Ulla",
)
LAST = (
    "Andersson",
    "Berg",
    "Chen",
    "Dubois",
    "Eriksson",
    "Fischer",
    "Garcia",
    "Hansen",
    "Ito",
    "Jensen",
    "Kowalski",
    "Larsen",
    "Müller",
    "Nilsson",
    "Olsen",
    "Petrov",
)
CITIES = (
    ("Stockholm", "SE", "Stockholms län", "111 22"),
    ("Austin", "US", "Texas", "78701"),
    ("Berlin", "DE", "Berlin", "10115"),
    ("Lyon", "FR", "Rhône", "69001"),
    ("Oslo", "NO", "Oslo", "0150"),
    ("Denver", "US", "Colorado", "80202"),
)
PRODUCTS = (
    ("WJ01", "Stellar Solar Jacket", 75.0, True),
    ("MH02", "Teton Pullover Hoodie", 70.0, True),
    ("WT09", "Breathe-Easy Tank", 34.0, True),
    ("MP03", "Geo Insulated Jogging Pant", 51.0, True),
    ("24-MB01", "Joust Duffle Bag", 34.0, False),
    ("24-WG02", "Didi Sport Watch", 92.0, False),
    ("24-UG06", "Affirm Water Bottle", 7.0, False),
    ("24-MG04", "Aim Analog Watch", 45.0, False),
    ("24-WB04", "Overnight Duffle", 45.0, False),
    ("24-UG01", "Quest Lumaflex Band", 19.0, False),
)
PRODUCT_IDS: dict[str, int] = {sku: n for n, (sku, *_) in enumerate(PRODUCTS, start=1)}
"""Catalog product id of each demo product (configurable parents; variants get their own ids)."""
CATEGORIES: tuple[tuple[int, int, str], ...] = (
    (1, 0, "Root Catalog"),
    (2, 1, "Default Category"),
    (3, 2, "Gear"),
    (4, 3, "Bags"),
    (5, 3, "Watches"),
    (6, 3, "Fitness Equipment"),
    (7, 2, "Men"),
    (8, 7, "Tops"),
    (9, 8, "Hoodies & Sweatshirts"),
    (10, 7, "Bottoms"),
    (11, 10, "Pants"),
    (12, 2, "Women"),
    (13, 12, "Tops"),
    (14, 13, "Jackets"),
    (15, 13, "Tanks"),
    (16, 2, "Sale"),
)
"""The demo category tree: (id, parent id, admin name), as in Magento's sample data."""
PRODUCT_CATEGORIES: dict[str, tuple[int, ...]] = {
    "WJ01": (14,),
    "MH02": (9,),
    "WT09": (15, 16),
    "MP03": (11,),
    "24-MB01": (4,),
    "24-WG02": (5,),
    "24-UG06": (6,),
    "24-MG04": (5, 16),
    "24-WB04": (4, 16),
    "24-UG01": (6,),
}
"""The categories each demo product is in (one or two each)."""
STORE_VIEW_NAMES = {4: "Taschen"}
"""Store-view (store 1) name overrides; events carry the admin (store 0) names."""
CATEGORY_ENTITY_TYPE_ID = 3
NAME_ATTRIBUTE_ID = 45
COLORS = ("Black", "Blue", "Green", "Red")
SIZES = ("XS", "S", "M", "L", "XL")
CARRIERS = (("ups", "United Parcel Service"), ("fedex", "Federal Express"), ("usps", "USPS"))
WEBSITE_CODE = "base"
WEBSITE_ID = 1
STORE_ID = 1
CUSTOMER_GROUP_ID = 1
TAX_RATE = 0.08
SHIPPING = 5.0
CUSTOMERS = 499
PAYMENT_TITLES = {
    "checkmo": "Check / Money order",
    "banktransfer": "Bank Transfer Payment",
    "braintree": "Credit Card (Braintree)",
}
"""Magento's titles of the demo payment methods (`additional_information.method_title`)."""
ENGRAVINGS = ("For Ana, with love", "Happy birthday!", "Team Koppla 2026", "Forever yours")
"""Texts shoppers have engraved (an item-level custom attribute of watches and bags)."""
ENGRAVABLE = frozenset({"24-MB01", "24-WG02", "24-MG04", "24-WB04"})
"""Demo customers 1..CUSTOMERS exist from the start; registered shoppers' orders name them."""


STATUSES: tuple[tuple[str, str, str, int, int], ...] = (
    ("pending", "Pending", "new", 1, 1),
    ("pending_payment", "Pending Payment", "pending_payment", 1, 0),
    ("processing", "Processing", "processing", 1, 1),
    ("fraud", "Suspected Fraud", "processing", 0, 1),
    ("fraud", "Suspected Fraud", "payment_review", 0, 1),
    ("complete", "Complete", "complete", 1, 1),
    ("closed", "Closed", "closed", 1, 1),
    ("canceled", "Canceled", "canceled", 1, 1),
    ("holded", "On Hold", "holded", 1, 1),
    ("payment_review", "Payment Review", "payment_review", 1, 1),
)
"""Magento's stock statuses: (status, label, state, is_default, visible_on_front)."""


def create_demo_schema(engine: Engine) -> None:
    """Create the demo store's tables and their indexes (idempotent), its website, store and
    store view, its order statuses, and its catalog categories (with the EAV `name`
    attribute)."""
    create_all(t.metadata, engine)
    create_all(t.eav_metadata, engine)
    add_missing_columns(engine)
    for table in t.metadata.sorted_tables:  # a shop made by an older Koppla lacks some
        for index in table.indexes:
            index.create(engine, checkfirst=True)
    with engine.begin() as conn:
        if engine.dialect.name != "sqlite":  # ids 0 (admin scope) are real ids, as in Magento
            mode = "CONCAT(@@sql_mode, ',NO_AUTO_VALUE_ON_ZERO')"
            conn.exec_driver_sql(f"SET SESSION sql_mode = {mode}")
        _create_stores(conn)
        _create_statuses(conn)
        _create_categories(conn)


def add_missing_columns(engine: Engine) -> list[str]:
    """Add the columns of `schema.ADDED_COLUMNS` a shop made by an older Koppla lacks (the
    custom attributes' JSON columns); the `table.column` names added."""
    added: list[str] = []
    quote = engine.dialect.identifier_preparer.quote_identifier
    for table_name, column_name in t.ADDED_COLUMNS:
        with engine.begin() as conn:
            present = {str(c["name"]) for c in inspect(conn).get_columns(table_name)}
            if column_name in present:
                continue
            column = t.metadata.tables[table_name].c[column_name]
            kind = column.type.compile(dialect=engine.dialect)
            try:
                conn.exec_driver_sql(
                    f"ALTER TABLE {quote(table_name)} ADD COLUMN {quote(column_name)} {kind}"
                )
            except DBAPIError as error:  # another process added it first
                if "duplicate" not in str(error.orig).lower():
                    raise
                continue
        added.append(f"{table_name}.{column_name}")
    return added


def _create_statuses(conn: Connection) -> None:
    if _empty(conn, t.sales_order_status):
        labels = {status: label for status, label, *_rest in STATUSES}
        conn.execute(
            t.sales_order_status.insert(),
            [{"status": status, "label": label} for status, label in labels.items()],
        )
    if _empty(conn, t.sales_order_status_state):
        conn.execute(
            t.sales_order_status_state.insert(),
            [
                {"status": status, "state": state, "is_default": default, "visible_on_front": shown}
                for status, _label, state, default, shown in STATUSES
            ],
        )


def _empty(conn: Connection, table: Table) -> bool:
    return not conn.execute(select(func.count()).select_from(table)).scalar_one()


def _create_categories(conn: Connection) -> None:
    if _empty(conn, t.eav_entity_type):
        conn.execute(
            t.eav_entity_type.insert(),
            [
                {"entity_type_id": 1, "entity_type_code": "customer"},
                {"entity_type_id": CATEGORY_ENTITY_TYPE_ID, "entity_type_code": "catalog_category"},
                {"entity_type_id": 4, "entity_type_code": "catalog_product"},
            ],
        )
    if _empty(conn, t.eav_attribute):
        conn.execute(
            t.eav_attribute.insert(),
            [
                {"attribute_id": 5, "entity_type_id": 1, "attribute_code": "firstname"},
                {
                    "attribute_id": NAME_ATTRIBUTE_ID,
                    "entity_type_id": CATEGORY_ENTITY_TYPE_ID,
                    "attribute_code": "name",
                },
                {"attribute_id": 73, "entity_type_id": 4, "attribute_code": "name"},
            ],
        )
    if not _empty(conn, t.catalog_category_entity):
        return
    paths: dict[int, str] = {0: ""}
    rows = []
    for position, (cid, parent, _name) in enumerate(CATEGORIES):
        paths[cid] = f"{paths[parent]}/{cid}".lstrip("/")
        rows.append(
            {
                "entity_id": cid,
                "parent_id": parent,
                "path": paths[cid],
                "position": position,
                "level": paths[cid].count("/"),
                "children_count": sum(1 for _c, p, _n in CATEGORIES if p == cid),
            }
        )
    conn.execute(t.catalog_category_entity.insert(), rows)
    names = [
        {"attribute_id": NAME_ATTRIBUTE_ID, "store_id": 0, "entity_id": cid, "value": name}
        for cid, _parent, name in CATEGORIES
    ]
    names += [
        {"attribute_id": NAME_ATTRIBUTE_ID, "store_id": 1, "entity_id": cid, "value": name}
        for cid, name in STORE_VIEW_NAMES.items()
    ]
    conn.execute(t.catalog_category_entity_varchar.insert(), names)
    conn.execute(
        t.catalog_category_product.insert(),
        [
            {"category_id": cid, "product_id": PRODUCT_IDS[sku]}
            for sku, categories in PRODUCT_CATEGORIES.items()
            for cid in categories
        ],
    )


def _create_stores(conn: Connection) -> None:
    if not _empty(conn, t.store_website):
        return
    conn.execute(
        t.store_website.insert(),
        [
            {"website_id": 0, "code": "admin", "name": "Admin", "default_group_id": 0},
            {
                "website_id": 1,
                "code": WEBSITE_CODE,
                "name": "Main Website",
                "default_group_id": 1,
            },
        ],
    )
    conn.execute(
        t.store_group.insert(),
        [
            {"group_id": 0, "website_id": 0, "name": "Default", "code": "default"},
            {
                "group_id": 1,
                "website_id": 1,
                "name": "Main Website Store",
                "code": "main_website_store",
            },
        ],
    )
    conn.execute(
        t.store.insert(),
        [
            {
                "store_id": 0,
                "code": "admin",
                "website_id": 0,
                "group_id": 0,
                "name": "Admin",
                "is_active": 1,
            },
            {
                "store_id": 1,
                "code": "default",
                "website_id": 1,
                "group_id": 1,
                "name": "Default Store View",
                "is_active": 1,
            },
        ],
    )


@dataclass(slots=True)
class Draft:
    """One order in memory: its rows, and the new rows an action adds.

    `ids` hands out the ids of the status history rows actions add (None: the database does).
    """

    order: Row
    items: list[Row]
    payment: Row
    new: dict[str, list[Row]] = field(default_factory=dict)
    ids: Ids | None = None

    def add(self, table: Table, row: Row) -> None:
        """Queue a new row for `table`."""
        self.new.setdefault(table.name, []).append(row)


class Ids:
    """Hands out entity ids per table (from the current maximum)."""

    def __init__(self, start: dict[str, int] | None = None) -> None:
        self._next = dict(start or {})

    def take(self, table: Table) -> int:
        """The next id of `table`."""
        value = self._next.get(table.name, 1)
        self._next[table.name] = value + 1
        return value

    @classmethod
    def from_db(cls, conn: Connection) -> Ids:
        """Continue after the largest id of each table."""
        start = {}
        for table in t.metadata.sorted_tables:
            pk = next(iter(table.primary_key.columns))
            if not isinstance(pk.type, Integer):  # the status tables are keyed by name
                continue
            start[table.name] = int(conn.execute(select(func.max(pk))).scalar() or 0) + 1
        return cls(start)


def demo_customer(customer_id: int) -> tuple[str, str, str]:
    """The first name, last name and email demo customer `customer_id` is created with."""
    first = FIRST[customer_id % len(FIRST)]
    last = LAST[(customer_id // len(FIRST)) % len(LAST)]
    return first, last, f"{first}.{last}.{customer_id}@example.com".lower()


def _street(rng: random.Random) -> str:
    return f"{rng.randrange(1, 200)} Main Street" + ("\nApt 4" if rng.random() < 0.3 else "")


def new_address(
    rng: random.Random, ids: Ids, customer_id: int, first: str, last: str, when: datetime
) -> Row:
    """A customer address row (`customer_address_entity`) in one of the demo cities."""
    city, country, region, postcode = rng.choice(CITIES)
    return {
        "entity_id": ids.take(t.customer_address_entity),
        "parent_id": customer_id,
        "is_active": 1,
        "firstname": first,
        "lastname": last,
        "company": "Koppla Demo AB" if rng.random() < 0.1 else None,
        "street": _street(rng),
        "city": city,
        "region": region,
        "postcode": postcode,
        "country_id": country,
        "telephone": f"+1555{rng.randrange(10**6):06d}",
        "created_at": when,
        "updated_at": when,
    }


def new_customer(
    rng: random.Random, ids: Ids, when: datetime, customer_id: int | None = None
) -> list[tuple[Table, Row]]:
    """A registered customer with a default billing (and shipping) address, as rows to insert."""
    cid = customer_id if customer_id is not None else ids.take(t.customer_entity)
    first, last, email = demo_customer(cid)
    billing = new_address(rng, ids, cid, first, last, when)
    shipping = billing if rng.random() < 0.8 else new_address(rng, ids, cid, first, last, when)
    born = date(1950, 1, 1) + timedelta(days=rng.randrange(50 * 365))
    customer: Row = {
        "entity_id": cid,
        "website_id": WEBSITE_ID,
        "email": email,
        "group_id": CUSTOMER_GROUP_ID,
        "store_id": STORE_ID,
        "is_active": 1,
        "prefix": None,
        "firstname": first,
        "middlename": "J." if rng.random() < 0.1 else None,
        "lastname": last,
        "suffix": None,
        "dob": born if rng.random() < 0.7 else None,
        "gender": rng.choice((1, 2, 3)),
        "default_billing": billing["entity_id"],
        "default_shipping": shipping["entity_id"],
        "created_at": when,
        "updated_at": when,
    }
    addresses = [billing] if shipping is billing else [billing, shipping]
    return [(t.customer_entity, customer), *((t.customer_address_entity, a) for a in addresses)]


def new_order(rng: random.Random, ids: Ids, when: datetime, store_id: int = 1) -> Draft:
    """A freshly placed order (state `new`, status `pending`) with items, addresses, payment.

    A registered shopper (70 %) is one of the demo customers 1..`CUSTOMERS`, with its email.
    """
    oid = ids.take(t.sales_order)
    first, last = rng.choice(FIRST), rng.choice(LAST)
    guest = rng.random() < 0.3
    email = f"{first}.{last}{rng.randrange(1000)}@example.com".lower()
    customer_id = None if guest else rng.randrange(1, CUSTOMERS + 1)
    if customer_id is not None:
        first, last, email = demo_customer(customer_id)
    items, subtotal, discount = _lines(rng, ids, oid, store_id, when)
    tax = round((subtotal - discount) * TAX_RATE, 2)
    grand = round(subtotal - discount + tax + SHIPPING, 2)
    order: Row = {
        "entity_id": oid,
        "increment_id": f"{oid:09d}",
        "state": "new",
        "status": "pending",
        "store_id": store_id,
        "customer_id": customer_id,
        "customer_is_guest": int(guest),
        "customer_email": email,
        "customer_firstname": first,
        "customer_lastname": last,
        "is_virtual": 0,
        "base_currency_code": "USD",
        "order_currency_code": "USD",
        "base_grand_total": grand,
        "base_subtotal": subtotal,
        "base_tax_amount": tax,
        "base_discount_amount": -discount,
        "base_shipping_amount": SHIPPING,
        "base_shipping_tax_amount": 0.0,
        "base_total_invoiced": None,
        "base_total_paid": None,
        "base_total_refunded": None,
        "base_total_canceled": None,
        "total_qty_ordered": sum(i["qty_ordered"] for i in items if i["parent_item_id"] is None),
        "shipping_method": "flatrate_flatrate",
        "shipping_description": "Flat Rate - Fixed",
        "coupon_code": "SAVE10" if discount else None,
        "created_at": when,
        "updated_at": when,
    }
    method = rng.choice(("checkmo", "banktransfer", "braintree"))
    payment: Row = {
        "entity_id": ids.take(t.sales_order_payment),
        "parent_id": oid,
        "method": method,
        "po_number": f"PO-{oid}" if rng.random() < 0.1 else None,
        "last_trans_id": None,
        "base_amount_ordered": grand,
        "base_amount_paid": None,
        "base_amount_refunded": None,
        "base_shipping_amount": SHIPPING,
        "additional_information": order_information(oid, method, when),
    }
    draft = Draft(order, items, payment, ids=ids)
    draft.add(t.sales_order, order)
    for item in items:
        draft.add(t.sales_order_item, item)
    draft.add(t.sales_order_payment, payment)
    _trail(draft, when, "order", status_changed=True)
    city, country, region, postcode = rng.choice(CITIES)
    street = _street(rng)
    for kind in ("billing", "shipping"):
        draft.add(
            t.sales_order_address,
            {
                "entity_id": ids.take(t.sales_order_address),
                "parent_id": oid,
                "address_type": kind,
                "firstname": first,
                "lastname": last,
                "street": street,
                "city": city,
                "region": region,
                "postcode": postcode,
                "country_id": country,
                "telephone": f"+1555{rng.randrange(10**6):06d}",
                "email": email,
            },
        )
    return draft


def order_information(order_id: int, method: str, when: datetime) -> str:
    """The payment's `additional_information` JSON: the method's title, and on some orders the
    shopper's custom choices (gift wrap, a delivery date, a gift message, a rush flag).

    Drawn from the order id, not the shop's generator, so orders of a seed stay as they were.
    """
    pick = random.Random(order_id * 7919 + 1)
    info: dict[str, Any] = {"method_title": PAYMENT_TITLES.get(method, method)}
    if pick.random() < 0.3:
        info["giftWrap"] = pick.random() < 0.8
    if pick.random() < 0.25:
        info["deliveryDate"] = (when + timedelta(days=pick.randint(3, 30))).date().isoformat()
    if pick.random() < 0.1:
        info["giftMessage"] = pick.choice(("Enjoy!", "Happy holidays", "Congratulations"))
    if pick.random() < 0.1:
        info["rushPriority"] = pick.randint(1, 3)
    return codec.dumps(info).decode()


def item_information(item_id: int, sku: str) -> str | None:
    """An order item's `additional_data` JSON: an engraving on some engravable items (watches
    and bags); None otherwise. Drawn from the item id (see `order_information`)."""
    pick = random.Random(item_id * 104729 + 7)
    if sku not in ENGRAVABLE or pick.random() >= 0.4:
        return None
    info: dict[str, Any] = {"engraving": pick.choice(ENGRAVINGS)}
    if pick.random() < 0.5:
        info["engravingFont"] = pick.choice(("serif", "script"))
    return codec.dumps(info).decode()


def _lines(
    rng: random.Random, ids: Ids, oid: int, store_id: int, when: datetime
) -> tuple[list[Row], float, float]:
    items: list[Row] = []
    subtotal = 0.0
    discount_rate = 0.1 if rng.random() < 0.25 else 0.0
    for sku, name, price, configurable in rng.sample(PRODUCTS, rng.randint(1, 3)):
        qty = float(rng.randint(1, 3))
        row_total = round(price * qty, 2)
        discount = round(row_total * discount_rate, 2)
        subtotal += row_total
        base = {
            "order_id": oid,
            "store_id": store_id,
            "qty_ordered": qty,
            "qty_invoiced": 0.0,
            "qty_shipped": 0.0,
            "qty_refunded": 0.0,
            "qty_canceled": 0.0,
            "is_virtual": 0,
            "created_at": when,
            "updated_at": when,
        }
        item_id = ids.take(t.sales_order_item)
        options = None
        full_sku = sku
        variant = None
        if configurable:
            color, size = rng.choice(COLORS), rng.choice(SIZES)
            full_sku = f"{sku}-{size}-{color}"
            variant = 1000 + 100 * PRODUCT_IDS[sku] + 10 * COLORS.index(color) + SIZES.index(size)
            options = codec.dumps(
                {
                    "attributes_info": [
                        {"label": "Color", "value": color},
                        {"label": "Size", "value": size},
                    ]
                }
            ).decode()
        items.append(
            {
                **base,
                "item_id": item_id,
                "parent_item_id": None,
                "product_id": PRODUCT_IDS[sku],
                "product_type": "configurable" if configurable else "simple",
                "product_options": options,
                "sku": full_sku,
                "name": name,
                "base_price": price,
                "base_row_total": row_total,
                "base_tax_amount": round((row_total - discount) * TAX_RATE, 2),
                "base_discount_amount": discount,
                "additional_data": item_information(item_id, sku),
            }
        )
        if configurable:
            items.append(
                {
                    **base,
                    "item_id": ids.take(t.sales_order_item),
                    "parent_item_id": item_id,
                    "product_id": variant,
                    "product_type": "simple",
                    "product_options": None,
                    "sku": full_sku,
                    "name": f"{name}-{full_sku}",
                    "base_price": 0.0,
                    "base_row_total": 0.0,
                    "base_tax_amount": 0.0,
                    "base_discount_amount": 0.0,
                    "additional_data": None,
                }
            )
    return items, round(subtotal, 2), round(subtotal * discount_rate, 2)


def _touch(
    draft: Draft, when: datetime, state: str, status: str, entity: str, comment: str | None = None
) -> None:
    """Set the order's state and status after an action on `entity`, with its history rows."""
    changed = draft.order["status"] != status
    draft.order.update(state=state, status=status, updated_at=when)
    _trail(draft, when, entity, status_changed=changed, comment=comment)


def _trail(
    draft: Draft, when: datetime, entity: str, *, status_changed: bool, comment: str | None = None
) -> None:
    """The status history row of an action (and a status change row if the status changed)."""
    order, ids = draft.order, draft.ids
    history: Row = {
        "parent_id": order["entity_id"],
        "is_customer_notified": 0,
        "is_visible_on_front": 0,
        "comment": comment,
        "status": order["status"],
        "created_at": when,
        "entity_name": entity,
    }
    if ids is not None:
        history = {"entity_id": ids.take(t.sales_order_status_history), **history}
    draft.add(t.sales_order_status_history, history)
    if status_changed:
        change: Row = {
            "order_id": order["entity_id"],
            "status": order["status"],
            "created_at": when,
        }
        if ids is not None:
            change = {"entity_id": ids.take(t.sales_order_status_change_history), **change}
        draft.add(t.sales_order_status_change_history, change)


def _top(draft: Draft) -> list[Row]:
    return [i for i in draft.items if i["parent_item_id"] is None]


def _settle(draft: Draft, when: datetime, entity: str, comment: str | None = None) -> None:
    """Magento's state handler: closed once everything is refunded, complete once fully invoiced
    with nothing left to ship (`ordered - max(shipped, refunded) - canceled`), else processing."""
    top = _top(draft)

    def need(i: Row) -> float:
        return float(i["qty_ordered"]) - float(i["qty_canceled"] or 0)

    invoiced = all(i["qty_invoiced"] >= need(i) for i in top)
    shipped = all(max(i["qty_shipped"], i["qty_refunded"]) >= need(i) for i in top)
    refunded = all(i["qty_refunded"] >= need(i) for i in top)
    if invoiced and refunded:
        _touch(draft, when, "closed", "closed", entity, comment)
    elif invoiced and shipped:
        _touch(draft, when, "complete", "complete", entity, comment)
    else:
        _touch(draft, when, "processing", "processing", entity, comment)


def _chosen(draft: Draft, only: Collection[int] | None) -> list[Row]:
    """The visible lines `only` names (item ids), or all of them."""
    return [i for i in _top(draft) if only is None or i["item_id"] in only]


def _with_children(draft: Draft, lines: list[Row]) -> list[Row]:
    """`lines` and their child rows."""
    ids = {i["item_id"] for i in lines}
    return [i for i in draft.items if i["item_id"] in ids or i["parent_item_id"] in ids]


def invoice(draft: Draft, ids: Ids, when: datetime) -> None:
    """Invoice and capture everything not yet invoiced (one `sales_invoice`, paid)."""
    inv_id = ids.take(t.sales_invoice)
    order = draft.order
    total = order["base_grand_total"]
    draft.add(
        t.sales_invoice,
        {
            "entity_id": inv_id,
            "order_id": order["entity_id"],
            "store_id": order["store_id"],
            "increment_id": f"{inv_id:09d}",
            "state": 2,
            "base_grand_total": total,
            "base_tax_amount": order["base_tax_amount"],
            "base_shipping_amount": SHIPPING,
            "base_discount_amount": order["base_discount_amount"],
            "base_currency_code": "USD",
            "transaction_id": None,
            "created_at": when,
            "updated_at": when,
        },
    )
    for item in _top(draft):
        draft.add(
            t.sales_invoice_item,
            {
                "entity_id": ids.take(t.sales_invoice_item),
                "parent_id": inv_id,
                "order_item_id": item["item_id"],
                "sku": item["sku"],
                "name": item["name"],
                "qty": item["qty_ordered"],
                "base_price": item["base_price"],
                "base_row_total": item["base_row_total"],
                "base_discount_amount": item["base_discount_amount"],
            },
        )
    for item in draft.items:
        item.update(qty_invoiced=item["qty_ordered"], updated_at=when)
    order.update(base_total_invoiced=total, base_total_paid=total)
    draft.payment.update(base_amount_paid=total, last_trans_id=f"txn-{inv_id}")
    draft.add(
        t.sales_payment_transaction,
        {
            "transaction_id": ids.take(t.sales_payment_transaction),
            "order_id": order["entity_id"],
            "payment_id": draft.payment["entity_id"],
            "txn_id": f"txn-{inv_id}",
            "txn_type": "capture",
            "is_closed": 1,
            "created_at": when,
        },
    )
    _settle(draft, when, "invoice", f"Captured amount of ${total:.2f} offline.")


def ship(
    draft: Draft,
    ids: Ids,
    when: datetime,
    rng: random.Random,
    only: Collection[int] | None = None,
) -> None:
    """Ship everything not yet shipped, or only the visible lines `only` names (item ids)
    (`sales_shipment` + items + one track)."""
    ship_id = ids.take(t.sales_shipment)
    order = draft.order
    top = [i for i in _chosen(draft, only) if i["qty_shipped"] < i["qty_ordered"]]
    draft.add(
        t.sales_shipment,
        {
            "entity_id": ship_id,
            "order_id": order["entity_id"],
            "store_id": order["store_id"],
            "increment_id": f"{ship_id:09d}",
            "total_qty": sum(i["qty_ordered"] for i in top),
            "created_at": when,
            "updated_at": when,
        },
    )
    for item in top:
        draft.add(
            t.sales_shipment_item,
            {
                "entity_id": ids.take(t.sales_shipment_item),
                "parent_id": ship_id,
                "order_item_id": item["item_id"],
                "sku": item["sku"],
                "name": item["name"],
                "qty": item["qty_ordered"] - item["qty_shipped"],
                "price": item["base_price"],
            },
        )
    carrier, title = rng.choice(CARRIERS)
    draft.add(
        t.sales_shipment_track,
        {
            "entity_id": ids.take(t.sales_shipment_track),
            "parent_id": ship_id,
            "order_id": order["entity_id"],
            "track_number": f"1Z{rng.randrange(10**12):012d}",
            "title": title,
            "carrier_code": carrier,
            "created_at": when,
            "updated_at": when,
        },
    )
    for item in _with_children(draft, top):
        item.update(qty_shipped=item["qty_ordered"], updated_at=when)
    _settle(draft, when, "shipment")


def refund(draft: Draft, ids: Ids, when: datetime, only: Collection[int] | None = None) -> None:
    """Refund offline what is invoiced and not yet refunded, or only of the visible lines `only`
    names (item ids) (`sales_creditmemo`); refunding the rest closes the order."""
    memo_id = ids.take(t.sales_creditmemo)
    order = draft.order
    top = [i for i in _chosen(draft, only) if i["qty_refunded"] < i["qty_invoiced"]]
    rest = [i for i in _top(draft) if i not in top and i["qty_refunded"] < i["qty_invoiced"]]
    paid = order["base_total_paid"] or order["base_grand_total"]
    left = round(paid - (order["base_total_refunded"] or 0.0), 2)
    if rest:  # a partial refund: the lines' share of what was paid
        share = sum(i["base_row_total"] for i in top) / order["base_subtotal"]
        total = round(min(left, paid * share), 2)
    else:
        total = left
    draft.add(
        t.sales_creditmemo,
        {
            "entity_id": memo_id,
            "order_id": order["entity_id"],
            "store_id": order["store_id"],
            "increment_id": f"{memo_id:09d}",
            "state": 2,
            "base_grand_total": total,
            "base_shipping_amount": 0.0 if rest else SHIPPING,
            "base_adjustment": 0.0,
            "base_tax_amount": order["base_tax_amount"] if not rest else 0.0,
            "base_currency_code": "USD",
            "transaction_id": None,
            "created_at": when,
            "updated_at": when,
        },
    )
    for item in top:
        draft.add(
            t.sales_creditmemo_item,
            {
                "entity_id": ids.take(t.sales_creditmemo_item),
                "parent_id": memo_id,
                "order_item_id": item["item_id"],
                "sku": item["sku"],
                "name": item["name"],
                "qty": item["qty_invoiced"] - item["qty_refunded"],
                "base_price": item["base_price"],
                "base_row_total": item["base_row_total"],
                "base_discount_amount": item["base_discount_amount"],
            },
        )
    for item in _with_children(draft, top):
        item.update(qty_refunded=item["qty_invoiced"], updated_at=when)
    refunded = round((order["base_total_refunded"] or 0.0) + total, 2)
    order.update(base_total_refunded=refunded)
    draft.payment.update(base_amount_refunded=refunded)
    _settle(draft, when, "creditmemo", f"We refunded ${total:.2f} offline.")


def cancel(draft: Draft, when: datetime) -> None:
    """Cancel an order nothing of which was invoiced."""
    for item in draft.items:
        item.update(qty_canceled=item["qty_ordered"] - item["qty_invoiced"], updated_at=when)
    draft.order.update(base_total_canceled=draft.order["base_grand_total"])
    _touch(draft, when, "canceled", "canceled", "order")


def hold(draft: Draft, when: datetime) -> None:
    """Put the order on hold."""
    _touch(draft, when, "holded", "holded", "order")


def comment(draft: Draft, when: datetime, text: str = "Called the shopper.") -> None:
    """An admin's comment: a status history row carrying the order's status at that time."""
    draft.order.update(updated_at=when)
    _trail(draft, when, "order", status_changed=False, comment=text)


LIFECYCLES = ("new", "processing", "complete", "closed", "canceled", "holded")


def live(draft: Draft, ids: Ids, when: datetime, rng: random.Random, end: str) -> None:
    """Take a new order through the actions that lead to state `end`."""
    step = timedelta(hours=rng.randint(1, 48))
    if end == "canceled":
        cancel(draft, when + step)
    elif end == "holded":
        hold(draft, when + step)
    elif end in ("processing", "complete", "closed"):
        invoice(draft, ids, when + step)
        if end != "processing":
            ship(draft, ids, when + 2 * step, rng)
        if end == "closed":
            refund(draft, ids, when + 3 * step)


class DemoShop:
    """Writes orders into a shop database the way Magento does."""

    def __init__(self, engine: Engine, seed: int | None = None) -> None:
        self.engine = engine
        self.rng = random.Random(seed)

    def generate(
        self, orders: int, progress: Callable[[int], None] | None = None, chunk: int = 2000
    ) -> None:
        """Add `orders` orders placed over the last 90 days, in every state, in bulk.

        A shop without customers first gets the demo customers 1..`CUSTOMERS`.
        """
        now = clock.now().replace(tzinfo=None, microsecond=0)
        self.generate_customers(now)
        done = 0
        while done < orders:
            count = min(chunk, orders - done)
            with self.engine.begin() as conn:
                ids = Ids.from_db(conn)
                rows: dict[str, list[Row]] = {}
                for _ in range(count):
                    when = (
                        now - timedelta(days=90) + timedelta(seconds=self.rng.randrange(80 * 86400))
                    )
                    draft = new_order(self.rng, ids, when)
                    live(draft, ids, when, self.rng, self.rng.choice(LIFECYCLES))
                    for name, new in draft.new.items():
                        rows.setdefault(name, []).extend(new)
                for table in t.metadata.sorted_tables:
                    if rows.get(table.name):
                        conn.execute(table.insert(), rows[table.name])
            done += count
            if progress is not None:
                progress(count)

    def generate_customers(self, now: datetime | None = None) -> int:
        """Create the demo customers 1..`CUSTOMERS` if the shop has none; return how many."""
        now = now or clock.now().replace(tzinfo=None, microsecond=0)
        with self.engine.begin() as conn:
            if not _empty(conn, t.customer_entity):
                return 0
            ids = Ids.from_db(conn)
            rows: dict[str, list[Row]] = {}
            for cid in range(1, CUSTOMERS + 1):
                joined = timedelta(seconds=self.rng.randrange(300 * 86400))
                when = now - timedelta(days=400) + joined
                for table, row in new_customer(self.rng, ids, when, cid):
                    rows.setdefault(table.name, []).append(row)
            for table in (t.customer_entity, t.customer_address_entity):
                conn.execute(table.insert(), rows[table.name])
        return CUSTOMERS

    def create_customer(self) -> int:
        """Register one new customer now; return its entity id."""
        when = clock.now().replace(tzinfo=None, microsecond=0)
        with self.engine.begin() as conn:
            rows = new_customer(self.rng, Ids.from_db(conn), when)
            for table, row in rows:
                conn.execute(table.insert(), [row])
        return int(rows[0][1]["entity_id"])

    def edit_customer(self, customer_id: int, what: str = "name") -> None:
        """Change a customer's last name (`name`) or default billing street and city (`address`)."""
        when = clock.now().replace(tzinfo=None, microsecond=0)
        entity, address = t.customer_entity, t.customer_address_entity
        with self.engine.begin() as conn:
            customer = conn.execute(select(entity).where(entity.c.entity_id == customer_id)).one()
            if what == "name":
                names = [n for n in LAST if n != customer.lastname]
                conn.execute(
                    update(entity)
                    .where(entity.c.entity_id == customer_id)
                    .values(lastname=self.rng.choice(names), updated_at=when)
                )
            elif what == "address":
                city, country, region, postcode = self.rng.choice(CITIES)
                street = f"{self.rng.randrange(200, 400)} Harbour Road"
                conn.execute(
                    update(address)
                    .where(address.c.entity_id == customer.default_billing)
                    .values(
                        street=street,
                        city=city,
                        region=region,
                        postcode=postcode,
                        country_id=country,
                        updated_at=when,
                    )
                )
            else:
                raise ValueError(f"unknown customer edit {what!r}")

    def delete_customer(self, customer_id: int) -> None:
        """Delete a customer and its addresses (Magento's foreign key cascades the same way)."""
        entity, address = t.customer_entity, t.customer_address_entity
        with self.engine.begin() as conn:
            conn.execute(delete(address).where(address.c.parent_id == customer_id))
            conn.execute(delete(entity).where(entity.c.entity_id == customer_id))
            conn.execute(  # Magento's foreign key sets the orders' customer to NULL
                update(t.sales_order)
                .where(t.sales_order.c.customer_id == customer_id)
                .values(customer_id=None)
            )

    def place(self, when: datetime | None = None) -> int:
        """Place one order now (or at `when`, UTC); return its entity id."""
        when = when or clock.now().replace(tzinfo=None, microsecond=0)
        with self.engine.begin() as conn:
            draft = new_order(self.rng, Ids.from_db(conn), when)
            _write(conn, draft)
        return int(draft.order["entity_id"])

    def act(
        self,
        order_id: int,
        action: str,
        when: datetime | None = None,
        only: Collection[int] | None = None,
    ) -> None:
        """Apply `invoice`, `ship`, `refund`, `cancel`, `hold` or `comment` to an order now (or
        at `when`, UTC); `ship` and `refund` take only the visible lines `only` names (item
        ids) when given."""
        when = when or clock.now().replace(tzinfo=None, microsecond=0)
        with self.engine.begin() as conn:
            draft = _load(conn, order_id)
            ids = Ids.from_db(conn)
            draft.ids = ids
            if action == "invoice":
                invoice(draft, ids, when)
            elif action == "ship":
                ship(draft, ids, when, self.rng, only)
            elif action == "refund":
                refund(draft, ids, when, only)
            elif action == "cancel":
                cancel(draft, when)
            elif action == "hold":
                hold(draft, when)
            elif action == "comment":
                comment(draft, when)
            else:
                raise ValueError(f"unknown action {action!r}")
            _write(conn, draft, existing=True)

    def simulate_once(self) -> tuple[str, int]:
        """One random business action on the shop (mostly moving orders forward; now and then
        a customer registers or edits a name or an address; rarely one is deleted)."""
        customer_action = self._customer_action(self.rng.random())
        if customer_action is not None:
            return customer_action
        with self.engine.connect() as conn:
            open_orders = conn.execute(
                select(t.sales_order.c.entity_id, t.sales_order.c.state)
                .where(t.sales_order.c.state.in_(("new", "processing", "complete")))
                .order_by(t.sales_order.c.entity_id.desc())
                .limit(50)
            ).all()
        choice = self.rng.random()
        if choice < 0.35 or not open_orders:
            return "place", self.place()
        oid, state = self.rng.choice(open_orders)
        action = {
            "new": "invoice" if choice < 0.85 else "cancel",
            "processing": "ship",
            "complete": "refund",
        }[state]
        if state == "complete" and choice < 0.8:
            return "place", self.place()
        self.act(int(oid), action)
        return action, int(oid)

    def _customer_action(self, roll: float) -> tuple[str, int] | None:
        if roll >= 0.09:
            return None
        if roll < 0.03:
            return "register", self.create_customer()
        entity = t.customer_entity
        with self.engine.connect() as conn:
            recent = conn.execute(
                select(entity.c.entity_id).order_by(entity.c.entity_id.desc()).limit(50)
            ).all()
        if not recent:
            return "register", self.create_customer()
        cid = int(self.rng.choice(recent)[0])
        if roll < 0.085:
            what = "name" if roll < 0.06 else "address"
            self.edit_customer(cid, what)
            return f"edit_{what}", cid
        if len(recent) < 2:
            return None
        # never the newest: its id would be the next one registered, under the same name
        cid = int(self.rng.choice(recent[1:])[0])
        self.delete_customer(cid)
        return "delete_customer", cid

    def simulate(self, stop: threading.Event, every_s: float = 1.0) -> int:
        """Keep the shop busy until `stop` is set; return the number of actions taken."""
        actions = 0
        while not stop.wait(every_s):
            self.simulate_once()
            actions += 1
        return actions


def _load(conn: Connection, order_id: int) -> Draft:
    order = conn.execute(select(t.sales_order).where(t.sales_order.c.entity_id == order_id)).one()
    items = conn.execute(
        select(t.sales_order_item)
        .where(t.sales_order_item.c.order_id == order_id)
        .order_by(t.sales_order_item.c.item_id)
    ).all()
    payment = conn.execute(
        select(t.sales_order_payment).where(t.sales_order_payment.c.parent_id == order_id)
    ).one()
    return Draft(dict(order._mapping), [dict(i._mapping) for i in items], dict(payment._mapping))


def _write(conn: Connection, draft: Draft, *, existing: bool = False) -> None:
    if existing:
        o, p, i = t.sales_order, t.sales_order_payment, t.sales_order_item
        conn.execute(
            update(o)
            .where(o.c.entity_id == draft.order["entity_id"])
            .values(**_without(draft.order, "entity_id"))
        )
        conn.execute(
            update(p)
            .where(p.c.entity_id == draft.payment["entity_id"])
            .values(**_without(draft.payment, "entity_id"))
        )
        for item in draft.items:
            conn.execute(
                update(i).where(i.c.item_id == item["item_id"]).values(**_without(item, "item_id"))
            )
    for table in t.metadata.sorted_tables:
        rows = draft.new.get(table.name)
        if rows:
            conn.execute(table.insert(), rows)


def _without(row: Row, key: str) -> Row:
    return {k: v for k, v in row.items() if k != key}
