"""Koppla's own definition of the Magento 2 tables and columns the connector reads.

Written from the facts in Magento's declarative schema (`Sales`, `Store`, `Catalog`, `Customer`
modules' db_schema.xml); only the subset Koppla reads (plus the NOT NULL columns without a
default the demo store must write). The demo store creates exactly these tables on SQLite, with
an index on each column that names an order or a parent document (Magento has the same ones;
without them every set-based read would scan whole tables). Amounts are read as floats
(`asdecimal=False`): events carry JSON numbers anyway.

The status tables: `sales_order_status_history` (the order's status trail and comments) is read
with the order; `sales_order_status_change_history` (newer Magento only) and
`sales_order_status_state` (status → state) are optional, probed once per source.

Custom order attributes: the JSON objects in `sales_order_payment.additional_information` and
`sales_order_item.additional_data` (`ADDED_COLUMNS`: a demo store made by an older Koppla gets
them added). Merchant-named extra columns are not declared here; the store source looks them up.

`eav_metadata` holds the two tables of Magento's `Eav` module Koppla reads to find the category
`name` attribute. They are not in the reference schema, so their minimal columns are written from
Magento's well-known shape; reading them is optional (see `source.StoreSource`).
"""

from __future__ import annotations

from sqlalchemy import (
    Column,
    Date,
    DateTime,
    Integer,
    MetaData,
    Numeric,
    SmallInteger,
    String,
    Table,
    Text,
    func,
)

metadata = MetaData()


def _money(name: str) -> Column[float]:
    return Column(name, Numeric(20, 4, asdecimal=False))


def _qty(name: str) -> Column[float]:
    return Column(name, Numeric(12, 4, asdecimal=False))


def _stamp(name: str) -> Column[object]:
    return Column(name, DateTime, nullable=False, server_default=func.current_timestamp())


store_website = Table(
    "store_website",
    metadata,
    Column("website_id", SmallInteger, primary_key=True, autoincrement=True),
    Column("code", String(32)),
    Column("name", String(64)),
    Column("default_group_id", SmallInteger, nullable=False, server_default="0"),
)

store_group = Table(
    "store_group",
    metadata,
    Column("group_id", SmallInteger, primary_key=True, autoincrement=True),
    Column("website_id", SmallInteger, nullable=False, server_default="0"),
    Column("name", String(255), nullable=False),
    Column("code", String(32)),
)

store = Table(
    "store",
    metadata,
    Column("store_id", SmallInteger, primary_key=True, autoincrement=True),
    Column("code", String(32)),
    Column("website_id", SmallInteger, nullable=False, server_default="0"),
    Column("group_id", SmallInteger, nullable=False, server_default="0"),
    Column("name", String(255), nullable=False),
    Column("is_active", SmallInteger, nullable=False, server_default="0"),
)

sales_order = Table(
    "sales_order",
    metadata,
    Column("entity_id", Integer, primary_key=True, autoincrement=True),
    Column("increment_id", String(50)),
    Column("state", String(32)),
    Column("status", String(32)),
    Column("store_id", SmallInteger),
    Column("customer_id", Integer),
    Column("customer_is_guest", SmallInteger),
    Column("customer_email", String(128)),
    Column("customer_firstname", String(128)),
    Column("customer_lastname", String(128)),
    Column("customer_note", Text),
    Column("is_virtual", SmallInteger),
    Column("base_currency_code", String(3)),
    Column("order_currency_code", String(3)),
    _money("base_grand_total"),
    _money("base_subtotal"),
    _money("base_tax_amount"),
    _money("base_discount_amount"),
    _money("base_shipping_amount"),
    _money("base_shipping_tax_amount"),
    _money("base_total_invoiced"),
    _money("base_total_paid"),
    _money("base_total_refunded"),
    _money("base_total_canceled"),
    _qty("total_qty_ordered"),
    Column("shipping_method", String(120)),
    Column("shipping_description", String(255)),
    Column("coupon_code", String(255)),
    _stamp("created_at"),
    _stamp("updated_at"),
)

sales_order_item = Table(
    "sales_order_item",
    metadata,
    Column("item_id", Integer, primary_key=True, autoincrement=True),
    Column("order_id", Integer, nullable=False, server_default="0", index=True),
    Column("parent_item_id", Integer),
    Column("store_id", SmallInteger),
    Column("product_id", Integer),
    Column("product_type", String(255)),
    Column("product_options", Text),
    Column("sku", String(255)),
    Column("name", String(255)),
    Column("is_virtual", SmallInteger),
    _qty("qty_ordered"),
    _qty("qty_invoiced"),
    _qty("qty_shipped"),
    _qty("qty_refunded"),
    _qty("qty_canceled"),
    Column("base_price", Numeric(20, 4, asdecimal=False), nullable=False, server_default="0"),
    Column("base_row_total", Numeric(20, 4, asdecimal=False), nullable=False, server_default="0"),
    _money("base_tax_amount"),
    _money("base_discount_amount"),
    _stamp("created_at"),
    _stamp("updated_at"),
    Column("additional_data", Text),
)

sales_order_address = Table(
    "sales_order_address",
    metadata,
    Column("entity_id", Integer, primary_key=True, autoincrement=True),
    Column("parent_id", Integer, index=True),
    Column("address_type", String(255)),
    Column("firstname", String(255)),
    Column("lastname", String(255)),
    Column("street", String(255)),
    Column("city", String(255)),
    Column("region", String(255)),
    Column("postcode", String(255)),
    Column("country_id", String(2)),
    Column("telephone", String(255)),
    Column("email", String(255)),
)

sales_order_payment = Table(
    "sales_order_payment",
    metadata,
    Column("entity_id", Integer, primary_key=True, autoincrement=True),
    Column("parent_id", Integer, nullable=False, index=True),
    Column("method", String(128)),
    Column("po_number", String(32)),
    Column("last_trans_id", String(255)),
    _money("base_amount_ordered"),
    _money("base_amount_paid"),
    _money("base_amount_refunded"),
    _money("base_shipping_amount"),
    Column("additional_information", Text),
)

sales_invoice = Table(
    "sales_invoice",
    metadata,
    Column("entity_id", Integer, primary_key=True, autoincrement=True),
    Column("order_id", Integer, nullable=False, index=True),
    Column("store_id", SmallInteger),
    Column("increment_id", String(50)),
    Column("state", Integer),
    _money("base_grand_total"),
    _money("base_tax_amount"),
    _money("base_shipping_amount"),
    _money("base_discount_amount"),
    Column("base_currency_code", String(3)),
    Column("transaction_id", String(255)),
    _stamp("created_at"),
    _stamp("updated_at"),
)

sales_invoice_item = Table(
    "sales_invoice_item",
    metadata,
    Column("entity_id", Integer, primary_key=True, autoincrement=True),
    Column("parent_id", Integer, nullable=False, index=True),
    Column("order_item_id", Integer),
    Column("sku", String(255)),
    Column("name", String(255)),
    _qty("qty"),
    _money("base_price"),
    _money("base_row_total"),
    _money("base_discount_amount"),
)

sales_shipment = Table(
    "sales_shipment",
    metadata,
    Column("entity_id", Integer, primary_key=True, autoincrement=True),
    Column("order_id", Integer, nullable=False, index=True),
    Column("store_id", SmallInteger),
    Column("increment_id", String(50)),
    _qty("total_qty"),
    _stamp("created_at"),
    _stamp("updated_at"),
)

sales_shipment_item = Table(
    "sales_shipment_item",
    metadata,
    Column("entity_id", Integer, primary_key=True, autoincrement=True),
    Column("parent_id", Integer, nullable=False, index=True),
    Column("order_item_id", Integer),
    Column("sku", String(255)),
    Column("name", String(255)),
    _qty("qty"),
    _money("price"),
)

sales_shipment_track = Table(
    "sales_shipment_track",
    metadata,
    Column("entity_id", Integer, primary_key=True, autoincrement=True),
    Column("parent_id", Integer, nullable=False),
    Column("order_id", Integer, nullable=False, index=True),
    Column("track_number", Text),
    Column("title", String(255)),
    Column("carrier_code", String(32)),
    _stamp("created_at"),
    _stamp("updated_at"),
)

sales_creditmemo = Table(
    "sales_creditmemo",
    metadata,
    Column("entity_id", Integer, primary_key=True, autoincrement=True),
    Column("order_id", Integer, nullable=False, index=True),
    Column("store_id", SmallInteger),
    Column("increment_id", String(50)),
    Column("state", Integer),
    _money("base_grand_total"),
    _money("base_shipping_amount"),
    _money("base_adjustment"),
    _money("base_tax_amount"),
    Column("base_currency_code", String(3)),
    Column("transaction_id", String(255)),
    _stamp("created_at"),
    _stamp("updated_at"),
)

sales_creditmemo_item = Table(
    "sales_creditmemo_item",
    metadata,
    Column("entity_id", Integer, primary_key=True, autoincrement=True),
    Column("parent_id", Integer, nullable=False, index=True),
    Column("order_item_id", Integer),
    Column("sku", String(255)),
    Column("name", String(255)),
    _qty("qty"),
    _money("base_price"),
    _money("base_row_total"),
    _money("base_discount_amount"),
)

sales_payment_transaction = Table(
    "sales_payment_transaction",
    metadata,
    Column("transaction_id", Integer, primary_key=True, autoincrement=True),
    Column("order_id", Integer, nullable=False, server_default="0", index=True),
    Column("payment_id", Integer, nullable=False, server_default="0"),
    Column("txn_id", String(100)),
    Column("txn_type", String(15)),
    Column("is_closed", SmallInteger, nullable=False, server_default="1"),
    Column("created_at", DateTime, nullable=False, server_default=func.current_timestamp()),
)

sales_order_status_history = Table(
    "sales_order_status_history",
    metadata,
    Column("entity_id", Integer, primary_key=True, autoincrement=True),
    Column("parent_id", Integer, nullable=False, index=True),
    Column("is_customer_notified", Integer),
    Column("is_visible_on_front", SmallInteger, nullable=False, server_default="0"),
    Column("comment", Text),
    Column("status", String(32)),
    _stamp("created_at"),
    Column("entity_name", String(32)),
)
"""The order's comments and status trail (a row per state/status change, and per comment)."""

sales_order_status_change_history = Table(
    "sales_order_status_change_history",
    metadata,
    Column("entity_id", Integer, primary_key=True, autoincrement=True),
    Column("order_id", Integer, nullable=False, index=True),
    Column("status", String(32), nullable=False),
    _stamp("created_at"),
)
"""A timestamped log of status values (newer Magento only; reading it is optional)."""

sales_order_status = Table(
    "sales_order_status",
    metadata,
    Column("status", String(32), primary_key=True),
    Column("label", String(128), nullable=False),
)

sales_order_status_state = Table(
    "sales_order_status_state",
    metadata,
    Column("status", String(32), primary_key=True),
    Column("state", String(32), primary_key=True),
    Column("is_default", SmallInteger, nullable=False, server_default="0"),
    Column("visible_on_front", SmallInteger, nullable=False, server_default="0"),
)
"""Which state each status belongs to (reading it is optional: see `snapshot.status_state`)."""

catalog_category_entity = Table(
    "catalog_category_entity",
    metadata,
    Column("entity_id", Integer, primary_key=True, autoincrement=True),
    Column("parent_id", Integer, nullable=False, server_default="0"),
    Column("path", String(255), nullable=False),
    Column("position", Integer, nullable=False),
    Column("level", Integer, nullable=False, server_default="0"),
    Column("children_count", Integer, nullable=False),
)

catalog_category_entity_varchar = Table(
    "catalog_category_entity_varchar",
    metadata,
    Column("value_id", Integer, primary_key=True, autoincrement=True),
    Column("attribute_id", SmallInteger, nullable=False, server_default="0"),
    Column("store_id", SmallInteger, nullable=False, server_default="0"),
    Column("entity_id", Integer, nullable=False, server_default="0"),
    Column("value", String(255)),
)

catalog_category_product = Table(
    "catalog_category_product",
    metadata,
    Column("entity_id", Integer, primary_key=True, autoincrement=True),
    Column("category_id", Integer, nullable=False, server_default="0"),
    Column("product_id", Integer, nullable=False, server_default="0"),
)

customer_entity = Table(
    "customer_entity",
    metadata,
    Column("entity_id", Integer, primary_key=True, autoincrement=True),
    Column("website_id", SmallInteger),
    Column("email", String(255)),
    Column("group_id", SmallInteger, nullable=False, server_default="0"),
    Column("store_id", SmallInteger, server_default="0"),
    Column("is_active", SmallInteger, nullable=False, server_default="1"),
    Column("prefix", String(40)),
    Column("firstname", String(255)),
    Column("middlename", String(255)),
    Column("lastname", String(255)),
    Column("suffix", String(40)),
    Column("dob", Date),
    Column("gender", SmallInteger),
    Column("default_billing", Integer),
    Column("default_shipping", Integer),
    _stamp("created_at"),
    _stamp("updated_at"),
)

customer_address_entity = Table(
    "customer_address_entity",
    metadata,
    Column("entity_id", Integer, primary_key=True, autoincrement=True),
    Column("parent_id", Integer),
    Column("is_active", SmallInteger, nullable=False, server_default="1"),
    Column("firstname", String(255), nullable=False),
    Column("lastname", String(255), nullable=False),
    Column("company", String(255)),
    Column("street", Text, nullable=False),
    Column("city", String(255), nullable=False),
    Column("region", String(255)),
    Column("postcode", String(255)),
    Column("country_id", String(255), nullable=False),
    Column("telephone", String(255), nullable=False),
    _stamp("created_at"),
    _stamp("updated_at"),
)

ADDED_COLUMNS: tuple[tuple[str, str], ...] = (
    ("sales_order_payment", "additional_information"),
    ("sales_order_item", "additional_data"),
)
"""`(table, column)` added after the first demo stores were made; `create_demo_schema` adds them
where missing."""

eav_metadata = MetaData()

eav_entity_type = Table(
    "eav_entity_type",
    eav_metadata,
    Column("entity_type_id", SmallInteger, primary_key=True, autoincrement=True),
    Column("entity_type_code", String(50), nullable=False),
)

eav_attribute = Table(
    "eav_attribute",
    eav_metadata,
    Column("attribute_id", SmallInteger, primary_key=True, autoincrement=True),
    Column("entity_type_id", SmallInteger, nullable=False, server_default="0"),
    Column("attribute_code", String(255), nullable=False),
)

TRACKED_TABLES: dict[str, str] = {
    "sales_order": "entity_id",
    "sales_invoice": "order_id",
    "sales_shipment": "order_id",
    "sales_shipment_track": "order_id",
    "sales_creditmemo": "order_id",
    "sales_payment_transaction": "order_id",
    "sales_order_status_history": "parent_id",
    "sales_order_status_change_history": "order_id",
}
"""Each table whose changes touch an order, and the column holding the affected order id.

`sales_order_status_change_history` exists on newer Magento only; change tracking skips a table
the shop database does not have."""

CUSTOMER_TRACKED_TABLES: dict[str, str] = {
    "customer_entity": "entity_id",
    "customer_address_entity": "parent_id",
}
"""Each table whose changes touch a customer, and the column holding the affected customer id."""
