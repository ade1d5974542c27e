"""Store sources: a Magento 2 database (MariaDB/MySQL) or the demo store (SQLite), read-only.

Both speak SQL through SQLAlchemy Core over the tables in `koppla.connector.schema`; the only
difference is the URL. `StoreSource.read(order_ids)` returns each order's rows, ready for
`snapshot.build_snapshot`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from sqlalchemy import Engine, Table, create_engine, event, select
from sqlalchemy.engine import Connection

from koppla.connector import schema as t
from koppla.connector.snapshot import OrderRows, Row, Scope

CHUNK = 500


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


def _rows(conn: Connection, table: Table, column: str, keys: Sequence[int]) -> list[Row]:
    if not keys:
        return []
    query = select(table).where(table.c[column].in_(keys))
    return [dict(r._mapping) for r in conn.execute(query)]


def _group(rows: Iterable[Row], key: str) -> dict[Any, list[Row]]:
    grouped: dict[Any, list[Row]] = defaultdict(list)
    for row in rows:
        grouped[row[key]].append(row)
    return grouped


class StoreSource:
    """Reads orders and store scopes from one shop database."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._scopes: dict[int, Scope] | None = None

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
        last = after
        while stores:
            query = (
                select(order.c.entity_id)
                .where(order.c.entity_id > last, order.c.store_id.in_(stores))
                .order_by(order.c.entity_id)
                .limit(CHUNK * 4)
            )
            with self.engine.connect() as conn:
                ids = [int(r[0]) for r in conn.execute(query)]
            if not ids:
                return
            yield ids
            last = ids[-1]

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
        orders = _rows(conn, t.sales_order, "entity_id", ids)
        if any(o.get("store_id") not in scopes for o in orders if o.get("store_id") is not None):
            scopes = self.scopes(refresh=True)
        items = _group(_rows(conn, t.sales_order_item, "order_id", ids), "order_id")
        addresses = _group(_rows(conn, t.sales_order_address, "parent_id", ids), "parent_id")
        payments = _group(_rows(conn, t.sales_order_payment, "parent_id", ids), "parent_id")
        txns = _group(_rows(conn, t.sales_payment_transaction, "order_id", ids), "order_id")
        invoices = _rows(conn, t.sales_invoice, "order_id", ids)
        inv_items = _rows(
            conn, t.sales_invoice_item, "parent_id", [r["entity_id"] for r in invoices]
        )
        ships = _rows(conn, t.sales_shipment, "order_id", ids)
        ship_ids = [r["entity_id"] for r in ships]
        ship_items = _rows(conn, t.sales_shipment_item, "parent_id", ship_ids)
        tracks = _group(_rows(conn, t.sales_shipment_track, "order_id", ids), "order_id")
        memos = _rows(conn, t.sales_creditmemo, "order_id", ids)
        memo_items = _rows(
            conn, t.sales_creditmemo_item, "parent_id", [r["entity_id"] for r in memos]
        )
        inv_by, ship_by, memo_by = (_group(x, "order_id") for x in (invoices, ships, memos))
        inv_parent = {r["entity_id"]: r["order_id"] for r in invoices}
        ship_parent = {r["entity_id"]: r["order_id"] for r in ships}
        memo_parent = {r["entity_id"]: r["order_id"] for r in memos}
        inv_items_by = _group(
            ({**r, "_order": inv_parent[r["parent_id"]]} for r in inv_items), "_order"
        )
        ship_items_by = _group(
            ({**r, "_order": ship_parent[r["parent_id"]]} for r in ship_items), "_order"
        )
        memo_items_by = _group(
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
            )
        return out
