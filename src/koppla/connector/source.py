"""Store sources: a Magento 2 database (MariaDB/MySQL) or the demo store (SQLite), read-only.

Both speak SQL through SQLAlchemy Core over the tables in `koppla.connector.schema`; the only
difference is the URL. `StoreSource.read(order_ids)` returns each order's rows, ready for
`snapshot.build_snapshot`.

Product categories come from the catalog (`catalog_category_product` → `catalog_category_entity`),
their names from the EAV table `catalog_category_entity_varchar` (admin store 0 values) for the
`name` attribute of the `catalog_category` entity type (`eav_attribute`/`eav_entity_type`). The
name lookup is optional: without those tables or that attribute, categories carry no name and
their path is Magento's id path. Without the catalog tables, items carry no categories.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Column, ColumnElement, Engine, Table, create_engine, event, inspect, select
from sqlalchemy.engine import Connection

from koppla.connector import schema as t
from koppla.connector.snapshot import OrderRows, Row, Scope

CHUNK = 500
ADMIN_STORE = 0
"""Store id of the admin (default) scope, whose category names the events carry."""
CATEGORY_ROOT_LEVELS = 2
"""Path entries left out of a named category path: the tree root (level 0) and the store's root
category (level 1, "Default Category"), as Magento's breadcrumbs do."""

log = logging.getLogger("koppla.connector.source")


def connect(dsn: str) -> Engine:
    """An engine for a shop database; sessions run in UTC (Magento stores UTC timestamps)."""
    if dsn.startswith("sqlite"):
        engine = create_engine(dsn, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite(dbapi_connection: Any, _record: Any) -> None:
            cur = dbapi_connection.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    engine = create_engine(dsn, pool_pre_ping=True, pool_recycle=3600)

    @event.listens_for(engine, "connect")
    def _utc(dbapi_connection: Any, _record: Any) -> None:
        cur = dbapi_connection.cursor()
        cur.execute("SET time_zone = '+00:00'")
        cur.close()

    return engine


def keyset_ids(
    engine: Engine, id_column: Column[Any], condition: ColumnElement[bool], after: int = 0
) -> Iterator[list[int]]:
    """The ids meeting `condition`, ascending, `CHUNK * 4` at a time (keyset paging)."""
    last = after
    while True:
        query = (
            select(id_column)
            .where(id_column > last, condition)
            .order_by(id_column)
            .limit(CHUNK * 4)
        )
        with engine.connect() as conn:
            ids = [int(r[0]) for r in conn.execute(query)]
        if not ids:
            return
        yield ids
        last = ids[-1]


def rows_where(conn: Connection, table: Table, column: str, keys: Sequence[int]) -> list[Row]:
    """Every row of `table` whose `column` is one of `keys`, as dicts."""
    if not keys:
        return []
    query = select(table).where(table.c[column].in_(keys))
    return [dict(r._mapping) for r in conn.execute(query)]


def group_by(rows: Iterable[Row], key: str) -> dict[Any, list[Row]]:
    """`rows` grouped by their value of `key`, each group in input order."""
    grouped: dict[Any, list[Row]] = defaultdict(list)
    for row in rows:
        grouped[row[key]].append(row)
    return grouped


@dataclass(frozen=True, slots=True)
class CatalogAccess:
    """What the shop database offers for categories (probed once per source)."""

    categories: bool
    name_attribute_id: int | None = None


def probe_catalog(conn: Connection) -> CatalogAccess:
    """Whether the category tables exist, and the id of the category `name` attribute if known."""
    present = set(inspect(conn).get_table_names())
    needed = {t.catalog_category_product.name, t.catalog_category_entity.name}
    if not needed <= present:
        log.info("store source: no catalog category tables; events carry no categories")
        return CatalogAccess(categories=False)
    eav = {t.eav_attribute.name, t.eav_entity_type.name, t.catalog_category_entity_varchar.name}
    attribute = None
    if eav <= present:
        attr, kind = t.eav_attribute, t.eav_entity_type
        attribute = conn.execute(
            select(attr.c.attribute_id)
            .join(kind, kind.c.entity_type_id == attr.c.entity_type_id)
            .where(kind.c.entity_type_code == "catalog_category", attr.c.attribute_code == "name")
            .limit(1)
        ).scalar()
    if attribute is None:
        log.info("store source: category name attribute not found; categories carry ids only")
        return CatalogAccess(categories=True)
    return CatalogAccess(categories=True, name_attribute_id=int(attribute))


def product_categories(
    links: Iterable[Row], names: Mapping[int, str] | None = None
) -> dict[int, list[Row]]:
    """Each product's categories as `{id, name, path}`, from link rows and category names.

    `links` are rows of `product_id`, `category_id` and the category's id `path` (`1/2/3/4`);
    `names` maps category ids to their names (None: names unknown). `path` is the names along
    the path below the root levels joined with `/` (`Gear/Bags`) when every one is known, else
    Magento's id path. `name` is None when unknown.
    """
    known = names or {}
    out: dict[int, list[Row]] = defaultdict(list)
    for link in sorted(links, key=lambda r: (int(r["product_id"]), int(r["category_id"]))):
        category = int(link["category_id"])
        path = str(link["path"])
        parts = [p for p in path.split("/") if p]
        shown = parts[CATEGORY_ROOT_LEVELS:] or parts[-1:]
        labels = [known.get(int(p)) if p.isdigit() else None for p in shown]
        named = "/".join(str(x) for x in labels) if labels and all(labels) else path
        out[int(link["product_id"])].append(
            {"id": category, "name": known.get(category), "path": named}
        )
    return dict(out)


def read_categories(
    conn: Connection, access: CatalogAccess, product_ids: Sequence[int]
) -> dict[int, list[Row]]:
    """The categories of `product_ids`: one query for the links, one for the names (if known)."""
    if not access.categories or not product_ids:
        return {}
    link, category = t.catalog_category_product, t.catalog_category_entity
    links = [
        dict(r._mapping)
        for r in conn.execute(
            select(link.c.product_id, link.c.category_id, category.c.path)
            .join(category, category.c.entity_id == link.c.category_id)
            .where(link.c.product_id.in_(product_ids))
        )
    ]
    if not links or access.name_attribute_id is None:
        return product_categories(links)
    ids = sorted(
        {int(p) for r in links for p in str(r["path"]).split("/") if p.isdigit()}
        | {int(r["category_id"]) for r in links}
    )
    value = t.catalog_category_entity_varchar
    names = {
        int(entity): str(name)
        for entity, name in conn.execute(
            select(value.c.entity_id, value.c.value).where(
                value.c.attribute_id == access.name_attribute_id,
                value.c.store_id == ADMIN_STORE,
                value.c.entity_id.in_(ids),
            )
        )
        if name
    }
    return product_categories(links, names)


class StoreSource:
    """Reads orders and store scopes from one shop database."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._scopes: dict[int, Scope] | None = None
        self._catalog: CatalogAccess | None = None

    def catalog(self, conn: Connection) -> CatalogAccess:
        """What the database offers for categories (probed on first use, then cached)."""
        if self._catalog is None:
            self._catalog = probe_catalog(conn)
        return self._catalog

    def scopes(self, *, refresh: bool = False) -> dict[int, Scope]:
        """Each store view id and its website/store/view codes (cached; `refresh` re-reads)."""
        if self._scopes is None or refresh:
            query = (
                select(
                    t.store.c.store_id, t.store.c.code, t.store_group.c.code, t.store_website.c.code
                )
                .join(t.store_group, t.store_group.c.group_id == t.store.c.group_id)
                .join(t.store_website, t.store_website.c.website_id == t.store.c.website_id)
            )
            with self.engine.connect() as conn:
                self._scopes = {
                    int(sid): Scope(str(web or ""), str(group or ""), str(view or ""))
                    for sid, view, group, web in conn.execute(query)
                }
        return self._scopes

    def store_ids(self, website_codes: Iterable[str]) -> list[int]:
        """The store views of the given websites."""
        wanted = set(website_codes)
        return sorted(sid for sid, scope in self.scopes().items() if scope.website_code in wanted)

    def order_ids(self, website_codes: Iterable[str], after: int = 0) -> Iterator[list[int]]:
        """Every order id of the given websites, in chunks, ascending."""
        stores = self.store_ids(website_codes)
        order = t.sales_order
        if stores:
            yield from keyset_ids(
                self.engine, order.c.entity_id, order.c.store_id.in_(stores), after
            )

    def count_orders(self, website_codes: Iterable[str]) -> int:
        """How many orders the given websites have."""
        from sqlalchemy import func

        stores = self.store_ids(website_codes)
        query = select(func.count()).where(t.sales_order.c.store_id.in_(stores))
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def read(self, order_ids: Sequence[int]) -> dict[int, OrderRows]:
        """The rows of each existing order in `order_ids` whose store still exists."""
        found: dict[int, OrderRows] = {}
        scopes = self.scopes()
        for start in range(0, len(order_ids), CHUNK):
            chunk = list(order_ids[start : start + CHUNK])
            with self.engine.connect() as conn:
                found.update(self._read_chunk(conn, chunk, scopes))
        return found

    def _read_chunk(
        self, conn: Connection, ids: list[int], scopes: dict[int, Scope]
    ) -> dict[int, OrderRows]:
        orders = rows_where(conn, t.sales_order, "entity_id", ids)
        if any(o.get("store_id") not in scopes for o in orders if o.get("store_id") is not None):
            scopes = self.scopes(refresh=True)
        item_rows = rows_where(conn, t.sales_order_item, "order_id", ids)
        items = group_by(item_rows, "order_id")
        products = sorted({int(i["product_id"]) for i in item_rows if i["product_id"] is not None})
        categories = read_categories(conn, self.catalog(conn), products)
        addresses = group_by(rows_where(conn, t.sales_order_address, "parent_id", ids), "parent_id")
        payments = group_by(rows_where(conn, t.sales_order_payment, "parent_id", ids), "parent_id")
        txns = group_by(rows_where(conn, t.sales_payment_transaction, "order_id", ids), "order_id")
        invoices = rows_where(conn, t.sales_invoice, "order_id", ids)
        inv_items = rows_where(
            conn, t.sales_invoice_item, "parent_id", [r["entity_id"] for r in invoices]
        )
        ships = rows_where(conn, t.sales_shipment, "order_id", ids)
        ship_ids = [r["entity_id"] for r in ships]
        ship_items = rows_where(conn, t.sales_shipment_item, "parent_id", ship_ids)
        tracks = group_by(rows_where(conn, t.sales_shipment_track, "order_id", ids), "order_id")
        memos = rows_where(conn, t.sales_creditmemo, "order_id", ids)
        memo_items = rows_where(
            conn, t.sales_creditmemo_item, "parent_id", [r["entity_id"] for r in memos]
        )
        inv_by, ship_by, memo_by = (group_by(x, "order_id") for x in (invoices, ships, memos))
        inv_parent = {r["entity_id"]: r["order_id"] for r in invoices}
        ship_parent = {r["entity_id"]: r["order_id"] for r in ships}
        memo_parent = {r["entity_id"]: r["order_id"] for r in memos}
        inv_items_by = group_by(
            ({**r, "_order": inv_parent[r["parent_id"]]} for r in inv_items), "_order"
        )
        ship_items_by = group_by(
            ({**r, "_order": ship_parent[r["parent_id"]]} for r in ship_items), "_order"
        )
        memo_items_by = group_by(
            ({**r, "_order": memo_parent[r["parent_id"]]} for r in memo_items), "_order"
        )
        out: dict[int, OrderRows] = {}
        for order in orders:
            oid = int(order["entity_id"])
            scope = scopes.get(order.get("store_id"))  # type: ignore[arg-type]
            if scope is None:
                continue
            pays = payments.get(oid, [])
            out[oid] = OrderRows(
                order=order,
                scope=scope,
                items=sorted(items.get(oid, []), key=lambda r: r["item_id"]),
                addresses=addresses.get(oid, []),
                payment=pays[0] if pays else None,
                invoices=inv_by.get(oid, []),
                invoice_items=inv_items_by.get(oid, []),
                shipments=ship_by.get(oid, []),
                shipment_items=ship_items_by.get(oid, []),
                tracks=tracks.get(oid, []),
                creditmemos=memo_by.get(oid, []),
                creditmemo_items=memo_items_by.get(oid, []),
                transactions=sorted(txns.get(oid, []), key=lambda r: r["transaction_id"]),
                categories=categories,
            )
        return out
