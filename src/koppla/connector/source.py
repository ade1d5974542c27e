"""Store sources: a Magento 2 database (MariaDB/MySQL) or the demo store (SQLite), read-only.

Both speak SQL through SQLAlchemy Core over the tables in `koppla.connector.schema`; the only
difference is the URL. `StoreSource.read(order_ids)` returns each order's rows, ready for
`snapshot.build_snapshot`: set-based, one query per table per chunk of `ORDER_CHUNK` orders
(document lines come joined to their document, so they need no second list of ids), and only
the columns the snapshot reads (`COLUMNS`). A chunk of ids that is nearly a range is read as
the range (`BETWEEN`), the rest filtered out here.

The status trail comes from `sales_order_status_history` and, where Magento has it (newer
releases), `sales_order_status_change_history`; the status → state map from
`sales_order_status_state` when it exists (else `snapshot.DEFAULT_STATUS_STATES`). Both optional
tables are probed once per source; the map is read again when a status it does not know shows
up (at most once a minute).

Product categories come from the catalog (`catalog_category_product` → `catalog_category_entity`),
their names from the EAV table `catalog_category_entity_varchar` (admin store 0 values) for the
`name` attribute of the `catalog_category` entity type (`eav_attribute`/`eav_entity_type`). The
name lookup is optional: without those tables or that attribute, categories carry no name and
their path is Magento's id path. Without the catalog tables, items carry no categories.

Custom attributes (`koppla.connector.custom_attributes`) come with the rows: the JSON objects in
`sales_order_payment.additional_information` and `sales_order_item.additional_data`, and the
extra `sales_order` / `sales_order_item` columns the merchant names (`CustomColumns`), read in
the same queries only when named. Named columns are looked up once per source; one the shop's
table lacks is logged, reported by `missing_custom_columns`, and left out (the rest is read).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Column,
    ColumnElement,
    DateTime,
    Engine,
    FromClause,
    Select,
    Table,
    create_engine,
    event,
    func,
    inspect,
    literal_column,
    select,
)
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from koppla.connector import schema as t
from koppla.connector.custom_attributes import (
    ITEM_JSON,
    ORDER_JSON,
    Attributes,
    CustomColumns,
    ProblemLog,
    TypedColumn,
    column_kind,
    from_columns,
    from_json,
    merged,
)
from koppla.connector.snapshot import OrderRows, Row, Scope, resolve_status_states
from koppla.core import clock, codec

CHUNK = 500
ORDER_CHUNK = 2000
"""Orders read per query (per table)."""
ORDER_PAGE = 4000
"""Order ids per page of a full reindex (one feed step, one state commit, each)."""
STATUS_REFRESH_S = 60.0
"""Least time between two reads of the status → state map for an unknown status."""

COLUMNS: dict[str, tuple[str, ...]] = {
    "sales_order": (
        "entity_id",
        "increment_id",
        "state",
        "status",
        "store_id",
        "customer_id",
        "customer_email",
        "is_virtual",
        "base_currency_code",
        "base_grand_total",
        "base_subtotal",
        "base_tax_amount",
        "base_discount_amount",
        "base_shipping_amount",
        "base_shipping_tax_amount",
        "base_total_invoiced",
        "base_total_paid",
        "base_total_refunded",
        "base_total_canceled",
        "total_qty_ordered",
        "shipping_method",
        "shipping_description",
        "coupon_code",
        "created_at",
        "updated_at",
    ),
    "sales_order_item": (
        "item_id",
        "order_id",
        "parent_item_id",
        "product_id",
        "product_type",
        "product_options",
        "sku",
        "name",
        "is_virtual",
        "qty_ordered",
        "qty_invoiced",
        "qty_shipped",
        "qty_refunded",
        "qty_canceled",
        "base_price",
        "base_row_total",
        "base_tax_amount",
        "base_discount_amount",
        "updated_at",
        "additional_data",
    ),
    "sales_order_address": (
        "entity_id",
        "parent_id",
        "address_type",
        "firstname",
        "lastname",
        "street",
        "city",
        "region",
        "postcode",
        "country_id",
        "telephone",
    ),
    "sales_order_payment": (
        "entity_id",
        "parent_id",
        "method",
        "po_number",
        "last_trans_id",
        "base_amount_paid",
        "additional_information",
    ),
    "sales_invoice": (
        "entity_id",
        "order_id",
        "increment_id",
        "state",
        "base_grand_total",
        "base_tax_amount",
        "base_shipping_amount",
        "created_at",
    ),
    "sales_invoice_item": (
        "parent_id",
        "order_item_id",
        "sku",
        "name",
        "qty",
        "base_price",
        "base_row_total",
        "base_discount_amount",
    ),
    "sales_shipment": ("entity_id", "order_id", "increment_id", "created_at", "updated_at"),
    "sales_shipment_item": ("parent_id", "order_item_id", "sku", "name", "qty", "price"),
    "sales_shipment_track": (
        "entity_id",
        "parent_id",
        "order_id",
        "track_number",
        "title",
        "carrier_code",
    ),
    "sales_creditmemo": (
        "entity_id",
        "order_id",
        "increment_id",
        "state",
        "base_grand_total",
        "base_shipping_amount",
        "base_adjustment",
        "base_tax_amount",
        "base_currency_code",
        "transaction_id",
        "created_at",
    ),
    "sales_creditmemo_item": (
        "parent_id",
        "order_item_id",
        "sku",
        "name",
        "qty",
        "base_price",
        "base_row_total",
        "base_discount_amount",
    ),
    "sales_payment_transaction": ("transaction_id", "order_id", "txn_id", "txn_type", "created_at"),
    "sales_order_status_history": ("entity_id", "parent_id", "status", "created_at"),
    "sales_order_status_change_history": ("entity_id", "order_id", "status", "created_at"),
}
"""The columns read of each order table: what `snapshot.build_snapshot` uses."""
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
    engine: Engine,
    id_column: Column[Any],
    condition: ColumnElement[bool],
    after: int = 0,
    page: int = CHUNK * 4,
) -> Iterator[list[int]]:
    """The ids meeting `condition`, ascending, `page` at a time (keyset paging)."""
    last = after
    while True:
        query = select(id_column).where(id_column > last, condition).order_by(id_column).limit(page)
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
    return dicts(conn, select(table).where(table.c[column].in_(keys)))


def dicts(conn: Connection, query: Select[Any]) -> list[Row]:
    """The rows of `query` as dicts (fetched at once; cheaper than `Row._mapping`)."""
    result = conn.execute(query)
    keys = tuple(result.keys())
    return [dict(zip(keys, row, strict=True)) for row in result.all()]


def fetch(
    conn: Connection,
    columns: Sequence[ColumnElement[Any]],
    where: ColumnElement[bool],
    *,
    join: FromClause | None = None,
    as_json: bool = False,
) -> list[Row]:
    """The rows of `columns` meeting `where` (from `join` if given), as dicts by column key.

    `as_json` (MySQL/MariaDB): the server renders each row as one `JSON_OBJECT`, parsed here in
    C, instead of the driver decoding every value in Python (PyMySQL is pure Python: 4x
    faster). The rows are the same: numbers arrive as JSON numbers (DECIMAL as floats, as
    `Numeric(asdecimal=False)` reads them) and date-times are parsed back into `datetime`
    (MySQL's zero date stays text, as the driver leaves it).
    """
    if not as_json:
        query = select(*columns)
        return dicts(conn, (query.select_from(join) if join is not None else query).where(where))
    pairs: list[ColumnElement[Any]] = []
    for column in columns:
        pairs += [literal_column(f"'{column.key}'"), column]  # keys: Koppla's own names
    query = select(func.json_object(*pairs))
    if join is not None:
        query = query.select_from(join)
    loads = codec.loads
    rows: list[dict[str, Any]] = [loads(raw) for raw in conn.execute(query.where(where)).scalars()]
    stamps = [str(c.key) for c in columns if isinstance(c.type, DateTime)]
    for row in rows:
        for key in stamps:
            value = row[key]
            if value.__class__ is str:
                row[key] = _datetime(value)
    return list(rows)


def _datetime(text: str) -> datetime | str:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return text  # a zero date: text, as the driver hands it over


def json_rows(conn: Connection) -> bool:
    """Whether to read rows as JSON objects: on MySQL/MariaDB with `JSON_OBJECT`."""
    if conn.dialect.name not in ("mysql", "mariadb"):
        return False
    try:
        conn.execute(select(func.json_object(literal_column("'a'"), 1))).scalar()
    except DBAPIError:
        log.info("store source: no JSON_OBJECT in the shop database; reading rows plainly")
        return False
    return True


def id_filter(column: Column[Any], ids: Sequence[int]) -> ColumnElement[bool]:
    """`column` is one of `ids`: as `BETWEEN` when the sorted ids nearly fill their range
    (the caller drops what it did not ask for), else as `IN`."""
    low, high = min(ids), max(ids)
    if high - low < 2 * len(ids):
        return column.between(low, high)
    return column.in_(ids)


def _columns(table: Table) -> list[Column[Any]]:
    return [table.c[name] for name in COLUMNS[table.name]]


def group_by(
    rows: Iterable[Row], key: str, only: Collection[Any] | None = None
) -> dict[Any, list[Row]]:
    """`rows` grouped by their value of `key`, each group in input order; with `only`, the
    rows whose value is not in it are left out."""
    grouped: dict[Any, list[Row]] = {}
    for row in rows:
        value = row[key]
        if only is not None and value not in only:
            continue
        found = grouped.get(value)
        if found is None:
            grouped[value] = [row]
        else:
            found.append(row)
    return grouped


@dataclass(frozen=True, slots=True)
class StatusAccess:
    """Which status tables the shop database has (probed once per source)."""

    history: bool
    change_history: bool
    status_state: bool


def probe_status(conn: Connection) -> StatusAccess:
    """Whether the status history, status change history and status → state tables exist
    (Magento always has the first; a demo shop made by an older Koppla does not)."""
    present = set(inspect(conn).get_table_names())
    access = StatusAccess(
        history=t.sales_order_status_history.name in present,
        change_history=t.sales_order_status_change_history.name in present,
        status_state=t.sales_order_status_state.name in present,
    )
    if not access.history:
        log.info("store source: no sales_order_status_history; state times are inferred")
    if not access.status_state:
        log.info("store source: no sales_order_status_state; statuses map to default states")
    return access


def read_status_states(conn: Connection) -> dict[str, str]:
    """The shop's status → state map (`snapshot.resolve_status_states`)."""
    table = t.sales_order_status_state
    query = select(table.c.status, table.c.state, table.c.is_default)
    return resolve_status_states((str(a), str(b), int(c or 0)) for a, b, c in conn.execute(query))


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
    links = dicts(
        conn,
        select(link.c.product_id, link.c.category_id, category.c.path)
        .join(category, category.c.entity_id == link.c.category_id)
        .where(link.c.product_id.in_(product_ids)),
    )
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


@dataclass(frozen=True, slots=True)
class CustomAccess:
    """The merchant-named columns found in the shop's tables, typed, and the ones not found
    (`sales_order.gift_note`)."""

    order: tuple[TypedColumn, ...] = ()
    item: tuple[TypedColumn, ...] = ()
    missing: tuple[str, ...] = ()


def probe_custom(conn: Connection, custom: CustomColumns) -> CustomAccess:
    """Look the merchant-named columns up in the shop's `sales_order` and `sales_order_item`
    (names match regardless of case, as in MySQL); each one missing is logged."""
    if not custom:
        return CustomAccess()
    found: dict[str, tuple[TypedColumn, ...]] = {}
    missing: list[str] = []
    for table, names, setting in (
        (t.sales_order, custom.order, "custom_order_columns"),
        (t.sales_order_item, custom.item, "custom_item_columns"),
    ):
        if not names:
            found[table.name] = ()
            continue
        present = {str(c["name"]).lower(): c for c in inspect(conn).get_columns(table.name)}
        kept: list[TypedColumn] = []
        for name in names:
            column = present.get(name.lower())
            if column is None:
                missing.append(f"{table.name}.{name}")
                log.warning(
                    "custom attributes: the shop's %s has no column %r (named in %s); it is "
                    "left out",
                    table.name,
                    name,
                    setting,
                )
                continue
            kept.append(TypedColumn(name, column_kind(column["type"]), str(column["name"])))
        found[table.name] = tuple(kept)
    return CustomAccess(found[t.sales_order.name], found[t.sales_order_item.name], tuple(missing))


def custom_selects(conn: Connection, table: Table, columns: Sequence[TypedColumn]) -> list[Any]:
    """The select expressions of merchant-named `columns` of `table`, each labelled with its
    row key (`custom_attributes.row_key`) and read untyped (the value is typed afterwards)."""
    quote = conn.dialect.identifier_preparer.quote_identifier
    return [literal_column(f"{quote(table.name)}.{quote(c.column)}").label(c.key) for c in columns]


class StoreSource:
    """Reads orders and store scopes from one shop database."""

    def __init__(self, engine: Engine, custom: CustomColumns | None = None) -> None:
        self.engine = engine
        self._custom = custom or CustomColumns()
        self._custom_access: CustomAccess | None = None
        self._problems = ProblemLog()
        self._scopes: dict[int, Scope] | None = None
        self._catalog: CatalogAccess | None = None
        self._status: StatusAccess | None = None
        self._states: dict[str, str] | None = None
        self._states_read = 0.0
        self._json: bool | None = None

    def use_custom_columns(self, custom: CustomColumns) -> None:
        """Read these merchant-named columns from the next read on (settings changed)."""
        if custom != self._custom:
            self._custom = custom
            self._custom_access = None

    def custom_access(self, conn: Connection) -> CustomAccess:
        """The merchant-named columns found and missing (probed on first use, then cached)."""
        if self._custom_access is None:
            self._custom_access = probe_custom(conn, self._custom)
        return self._custom_access

    def missing_custom_columns(self) -> list[str]:
        """The merchant-named columns the shop's tables lack (`sales_order.gift_note`), for a
        connection check or a status report."""
        with self.engine.connect() as conn:
            return list(self.custom_access(conn).missing)

    def catalog(self, conn: Connection) -> CatalogAccess:
        """What the database offers for categories (probed on first use, then cached)."""
        if self._catalog is None:
            self._catalog = probe_catalog(conn)
        return self._catalog

    def status(self, conn: Connection) -> StatusAccess:
        """Which optional status tables the database has (probed on first use, then cached)."""
        if self._status is None:
            self._status = probe_status(conn)
        return self._status

    def status_states(self, conn: Connection, seen: Iterable[str] = ()) -> dict[str, str]:
        """The status → state map (cached; read again when a status in `seen` is not in it,
        at most every `STATUS_REFRESH_S`)."""
        if not self.status(conn).status_state:
            return {}
        stale = self._states is None or (
            any(status not in self._states for status in seen)
            and clock.monotonic() - self._states_read >= STATUS_REFRESH_S
        )
        if stale:
            self._states = read_status_states(conn)
            self._states_read = clock.monotonic()
        return self._states or {}

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
        """Every order id of the given websites, in pages of `ORDER_PAGE`, ascending."""
        stores = self.store_ids(website_codes)
        order = t.sales_order
        if stores:
            yield from keyset_ids(
                self.engine, order.c.entity_id, order.c.store_id.in_(stores), after, ORDER_PAGE
            )

    def count_orders(self, website_codes: Iterable[str]) -> int:
        """How many orders the given websites have."""
        stores = self.store_ids(website_codes)
        query = select(func.count()).where(t.sales_order.c.store_id.in_(stores))
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def read(self, order_ids: Sequence[int]) -> dict[int, OrderRows]:
        """The rows of each existing order in `order_ids` whose store still exists."""
        found: dict[int, OrderRows] = {}
        scopes = self.scopes()
        ids = sorted(set(order_ids))
        for start in range(0, len(ids), ORDER_CHUNK):
            chunk = ids[start : start + ORDER_CHUNK]
            with self.engine.connect() as conn:
                found.update(self._read_chunk(conn, chunk, scopes))
        return found

    def _read_chunk(
        self, conn: Connection, ids: list[int], scopes: dict[int, Scope]
    ) -> dict[int, OrderRows]:
        if self._json is None:
            self._json = json_rows(conn)
        as_json = self._json
        custom = self.custom_access(conn)
        wanted = set(ids)
        order = t.sales_order
        order_columns = [*_columns(order), *custom_selects(conn, order, custom.order)]
        orders = [
            o
            for o in fetch(conn, order_columns, id_filter(order.c.entity_id, ids), as_json=as_json)
            if o["entity_id"] in wanted
        ]
        if any(o["store_id"] not in scopes for o in orders if o["store_id"] is not None):
            scopes = self.scopes(refresh=True)
        ids = [o["entity_id"] for o in orders if o["store_id"] in scopes]
        if not ids:
            return {}
        wanted = set(ids)

        def of_orders(
            table: Table, column: str, extra: Sequence[TypedColumn] = ()
        ) -> dict[int, list[Row]]:
            where = id_filter(table.c[column], ids)
            columns = [*_columns(table), *custom_selects(conn, table, extra)]
            return group_by(fetch(conn, columns, where, as_json=as_json), column, wanted)

        def lines_of(table: Table, parent: Table) -> dict[int, list[Row]]:
            columns = [*_columns(table), parent.c.order_id.label("_order")]
            join = table.join(parent, parent.c.entity_id == table.c.parent_id)
            where = id_filter(parent.c.order_id, ids)
            rows = fetch(conn, columns, where, join=join, as_json=as_json)
            return group_by(rows, "_order", wanted)

        items = of_orders(t.sales_order_item, "order_id", custom.item)
        products = sorted(
            {
                i["product_id"]
                for rows in items.values()
                for i in rows
                if i["product_id"] is not None
            }
        )
        categories = read_categories(conn, self.catalog(conn), products)
        addresses = of_orders(t.sales_order_address, "parent_id")
        payments = of_orders(t.sales_order_payment, "parent_id")
        txns = of_orders(t.sales_payment_transaction, "order_id")
        invoices = of_orders(t.sales_invoice, "order_id")
        inv_items = lines_of(t.sales_invoice_item, t.sales_invoice)
        ships = of_orders(t.sales_shipment, "order_id")
        ship_items = lines_of(t.sales_shipment_item, t.sales_shipment)
        tracks = of_orders(t.sales_shipment_track, "order_id")
        memos = of_orders(t.sales_creditmemo, "order_id")
        memo_items = lines_of(t.sales_creditmemo_item, t.sales_creditmemo)
        access = self.status(conn)
        trail: dict[int, list[Row]] = {}
        changes: dict[int, list[Row]] = {}
        if access.history:
            trail = of_orders(t.sales_order_status_history, "parent_id")
        if access.change_history:
            changes = of_orders(t.sales_order_status_change_history, "order_id")
        statuses = {r["status"] for rows in (*trail.values(), *changes.values()) for r in rows}
        states = self.status_states(conn, (s for s in statuses if s))
        out: dict[int, OrderRows] = {}
        none: tuple[Row, ...] = ()
        for order_row in orders:
            oid = order_row["entity_id"]
            scope = scopes.get(order_row["store_id"])
            if scope is None:
                continue
            pays = payments.get(oid)
            order_items = items.get(oid)
            if order_items is not None:
                order_items.sort(key=_item_id)
            order_txns = txns.get(oid)
            if order_txns is not None:
                order_txns.sort(key=_transaction_id)
            out[oid] = OrderRows(
                order=order_row,
                scope=scope,
                items=order_items or none,
                addresses=addresses.get(oid, none),
                payment=pays[0] if pays else None,
                invoices=invoices.get(oid, none),
                invoice_items=inv_items.get(oid, none),
                shipments=ships.get(oid, none),
                shipment_items=ship_items.get(oid, none),
                tracks=tracks.get(oid, none),
                creditmemos=memos.get(oid, none),
                creditmemo_items=memo_items.get(oid, none),
                transactions=order_txns or none,
                categories=categories,
                status_history=trail.get(oid, none),
                status_changes=changes.get(oid, none),
                status_states=states,
                order_attributes=self._order_attributes(order_row, pays, custom),
                item_attributes=self._item_attributes(order_items or none, custom),
            )
        return out

    def _order_attributes(
        self, order: Row, payments: list[Row] | None, custom: CustomAccess
    ) -> Attributes:
        """The order's custom attributes: its payment's JSON object, then its named columns."""
        raw = payments[0].get(ORDER_JSON[1]) if payments else None
        attributes = self._parsed(raw, ORDER_JSON, order.get("entity_id"))
        return merged(attributes, from_columns(order, custom.order))

    def _item_attributes(self, items: Sequence[Row], custom: CustomAccess) -> dict[int, Attributes]:
        """Each item's custom attributes by item id (items without any left out)."""
        out: dict[int, Attributes] = {}
        for item in items:
            raw = item.get(ITEM_JSON[1])
            found = merged(
                self._parsed(raw, ITEM_JSON, item.get("order_id")),
                from_columns(item, custom.item),
            )
            if found:
                out[item["item_id"]] = found
        return out

    def _parsed(self, raw: object, where: tuple[str, str], order_id: object) -> Attributes:
        if raw is None:
            return {}
        attributes, problem = from_json(raw)
        if problem is not None:
            self._problems.note(where, problem, order_id)
        return attributes


def _item_id(row: Row) -> Any:
    return row["item_id"]


def _transaction_id(row: Row) -> Any:
    return row["transaction_id"]
