"""A generated shop history with known answers, for the commerce reports' tests and benchmark.

`generate_history(shoppers, days, seed)` plans shopper journeys (one per shopper and day at most,
decided by a seeded hash, so the same arguments always give the same history), then writes out
what the storefront tag and the back-office connector would have sent for them, as Arrow tables
in a dataset's real schema (`dataset_arrow_schema` of the commerce ExperienceEvent schema), ready
for `deltalake.write_deltalake(path, table, mode="append")`. The answers the reports must give are
computed from the plan, not from the events (`Expected`).

A journey views 1-3 products (a page view and a product view each), then goes as deep as its
plan says: adds 1-2 of them to the cart (the first add also opens the cart), begins checkout,
purchases. Some journeys sign in first. Every purchase is followed 2 s later by the back-office
`commerce.backofficeOrderPlaced` of the same `purchaseID`, and every second order is invoiced an
hour later. Planted faults:

- the tracking gap: on `gap_day`, journeys starting in `[gap_start_hour, + gap_hours)` send no
  storefront event at all (the tag was broken), so their orders have no storefront purchase;
- lost purchases: a few purchasing journeys (all signed in) lose only their purchase event;
- orphans: a few storefront purchases whose order was never placed (purchase IDs `9........`).

Journeys start at least 30 minutes before midnight and last under 7 minutes, so each lies within
one UTC day. Shoppers alternate between two websites: `base` (USD) and `eu` (EUR).

Generation runs in a private in-memory DuckDB database (vectorised; about ten million events in
seconds), never in a query engine's sandbox.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from koppla.platform.datasets.conform import Nulls, conform
from koppla.platform.datasets.tables import dataset_arrow_schema
from koppla.xdm.experience_event import commerce_experience_event
from koppla.xdm.registry import builtin_registry

DEFAULT_START = datetime(2026, 3, 2, tzinfo=UTC)
PRODUCTS = 40
STORES = (
    # website, store, store view, currency
    ("base", "main_website_store", "default", "USD"),
    ("eu", "eu_store", "eu_en", "EUR"),
)
SHIPPING = 5.0


@dataclass(frozen=True, slots=True)
class DayCoverage:
    """One day's reconciliation of storefront purchases against back-office orders."""

    orders: int
    purchases: int
    matched: int
    orders_not_tracked: tuple[str, ...]
    """Purchase IDs of the orders placed that day without a storefront purchase, sorted."""
    purchases_without_order: tuple[str, ...]
    """Purchase IDs of that day's storefront purchases no order was placed for, sorted."""


@dataclass(frozen=True, slots=True)
class AbandonedCart:
    """A cart the `abandoned_carts` report must list."""

    cart_id: str
    ecid: str
    email: str | None
    last_activity: datetime
    step: str
    """`checkout` when the shopper began checkout, else `cart`."""
    skus: tuple[str, ...]
    value: float


@dataclass(frozen=True, slots=True)
class Expected:
    """The known answers over the generated history."""

    start: datetime
    end: datetime
    """The end of the history (exclusive): midnight after its last day."""
    gap_day: date
    events: int
    """Storefront events generated."""
    orders_events: int
    """Back-office events generated."""
    funnel: tuple[int, int, int, int]
    """Shoppers (ECIDs) over the whole history who viewed a product, also added to the cart,
    also began checkout, also purchased (storefront events only)."""
    coverage: Mapping[date, DayCoverage]
    revenue: Mapping[tuple[date, str, str], tuple[int, float]]
    """`(day, websiteCode, currency)` to `(orders placed, revenue)` from the back office."""
    top_products: tuple[tuple[str, str, int, float], ...]
    """`(SKU, currency, units, revenue)` of the back-office orders placed, by revenue, units,
    SKU and currency."""
    abandoned: tuple[AbandonedCart, ...]
    """The carts abandoned in the last 24 hours (idle at least 60 minutes), newest first."""


@dataclass(frozen=True, slots=True)
class Shape:
    """What history to generate: `shoppers` visiting over `days` days from `start` (a UTC
    midnight), each on about `visit_percent` % of days; the tracking gap on day index
    `gap_day` (default the middle day) from `gap_start_hour` for `gap_hours` hours."""

    shoppers: int
    days: int
    seed: int = 1
    start: datetime = DEFAULT_START
    gap_day: int | None = None
    gap_start_hour: int = 10
    gap_hours: int = 2
    visit_percent: int = 30

    def __post_init__(self) -> None:
        if self.shoppers < 1 or self.days < 1:
            raise ValueError("shoppers and days must be at least 1")
        if not 0 <= self.gap_start_hour <= self.gap_start_hour + self.gap_hours <= 23:
            raise ValueError("the gap must lie between 00:00 and 23:00")


def generate_history(
    shoppers: int, days: int, seed: int = 1, **shape: Any
) -> tuple[pa.Table, pa.Table, Expected]:
    """Storefront events, back-office events and the known answers of a generated history.

    `shape` takes the other fields of `Shape` (`start`, `gap_day`, ...). Everything is held in
    memory; for millions of events use `write_history`.
    """
    tables: list[pa.Table] = []

    def keep(rows: pa.RecordBatchReader) -> int:
        tables.append(rows.read_all())
        return int(tables[-1].num_rows)

    expected = _generate(Shape(shoppers, days, seed, **shape), keep, keep)
    return tables[0], tables[1], expected


def write_history(
    events_path: str, orders_path: str, shoppers: int, days: int, seed: int = 1, **shape: Any
) -> Expected:
    """Generate a history and append it to two Delta tables (the same path for both is fine),
    streaming: memory holds the plan and one batch of rows, not the whole history."""
    from deltalake import WriterProperties, write_deltalake

    from koppla.platform.datasets.storage import ROW_GROUP_ROWS

    def writer(path: str) -> Callable[[pa.RecordBatchReader], int]:
        def write(rows: pa.RecordBatchReader) -> int:
            counted = _Counted(rows)
            layout = WriterProperties(max_row_group_size=ROW_GROUP_ROWS)  # as compaction writes
            write_deltalake(path, counted.reader(), mode="append", writer_properties=layout)
            return counted.rows

        return write

    return _generate(Shape(shoppers, days, seed, **shape), writer(events_path), writer(orders_path))


class _Counted:
    """A batch reader that counts the rows passing through it."""

    def __init__(self, rows: pa.RecordBatchReader) -> None:
        self._rows = rows
        self.rows = 0

    def reader(self) -> pa.RecordBatchReader:
        def batches() -> Iterator[pa.RecordBatch]:
            for batch in self._rows:
                self.rows += batch.num_rows
                yield batch

        return pa.RecordBatchReader.from_batches(self._rows.schema, batches())


Consumer = Callable[[pa.RecordBatchReader], int]


def _generate(shape: Shape, storefront: Consumer, backoffice: Consumer) -> Expected:
    """Plan `shape`, hand the storefront and back-office events to the consumers (each returns
    the rows it took), and return the known answers."""
    start = shape.start.astimezone(UTC)
    gap = shape.days // 2 if shape.gap_day is None else shape.gap_day
    schema = dataset_arrow_schema(builtin_registry().get(commerce_experience_event().id))
    with duckdb.connect(":memory:") as db:
        db.execute("SET TimeZone = 'UTC'")
        _plan(db, shape, start, gap)
        db.execute(_STOREFRONT_PLAN)
        events = storefront(_rows(db, _STOREFRONT_EVENTS, schema))
        orders = backoffice(_rows(db, _BACKOFFICE_EVENTS, schema))
        expected = _expected(db, start, shape.days, start + timedelta(days=gap))
    return _with_counts(expected, events, orders)


def _plan(db: duckdb.DuckDBPyConnection, shape: Shape, start: datetime, gap_day: int) -> None:
    """Create the `journeys` and `lines` tables: what each shopper did, and their cart lines."""
    stores = ", ".join(
        f"({n}, '{w}', '{s}', '{v}', '{c}')" for n, (w, s, v, c) in enumerate(STORES)
    )
    db.execute(
        f"CREATE TABLE stores(n INTEGER, website VARCHAR, store VARCHAR, view VARCHAR, "
        f"currency VARCHAR); INSERT INTO stores VALUES {stores}"
    )
    db.execute(
        "CREATE TABLE products AS SELECT p, printf('SKU-%03d', p) AS sku, "
        "printf('Product %d', p) AS name, 10 + (p * 37) % 90 + 0.5 AS price "
        f"FROM range({PRODUCTS}) t(p)"
    )
    params = {
        "seed": shape.seed,
        "shoppers": shape.shoppers,
        "days": shape.days,
        "start": start,
        "gap_day": gap_day,
        "gap_from": shape.gap_start_hour * 3600,
        "gap_to": (shape.gap_start_hour + shape.gap_hours) * 3600,
        "visit": shape.visit_percent,
    }
    db.execute(_JOURNEYS, params)
    db.execute(_ORDER_IDS)
    db.execute(_LINES, {"seed": shape.seed})


_JOURNEYS = """
CREATE TABLE journeys AS
WITH base AS (
  SELECT s.i AS shopper, d.d AS day, hash($seed, s.i, d.d, 'j') AS h
  FROM range($shoppers) s(i), range($days) d(d)
  WHERE hash($seed, s.i, d.d, 'visit') % 100 < $visit
), shaped AS (
  SELECT *, (h % 84600)::INTEGER AS offset_s, 1 + ((h >> 8) % 3)::INTEGER AS n_views,
    ((h >> 16) % 100)::INTEGER AS r_depth, ((h >> 24) % 100)::INTEGER AS r_login,
    ((h >> 32) % 100)::INTEGER AS r_fault, ((h >> 40) % 2)::INTEGER AS r_adds,
    ((h >> 48) % 40)::INTEGER AS first_product
  FROM base
)
SELECT shopper, day, h,
  $start::TIMESTAMPTZ + to_days(day::INTEGER) + to_seconds(offset_s) AS started,
  printf('%038d', 10000000000 + shopper) AS ecid,
  printf('shopper%d@example.test', shopper) AS email,
  printf('cart-%d-%d', shopper, day) AS cart_id,
  (shopper % 2)::INTEGER AS store,
  n_views, least(n_views, 1 + r_adds) AS n_adds, first_product,
  CASE WHEN r_depth < 55 THEN 1 WHEN r_depth < 75 THEN 2 WHEN r_depth < 85 THEN 3 ELSE 4 END
    AS depth,
  day = $gap_day AND offset_s >= $gap_from AND offset_s < $gap_to AS in_gap,
  r_depth >= 85 AND r_fault < 4 AS lost_purchase,
  r_depth >= 85 AND r_fault >= 96 AS orphan,
  r_login < 20 OR (r_depth >= 85 AND r_fault < 4) AS signs_in
FROM shaped
"""

# Order increment ids for placed orders; orphans get ids no order has (9........).
_ORDER_IDS = """
CREATE TABLE journey_orders AS
SELECT shopper, day,
  CASE WHEN orphan THEN printf('9%08d', row_number() OVER (ORDER BY started, shopper))
       ELSE printf('%09d', row_number() OVER (ORDER BY started, shopper)) END AS purchase_id
FROM journeys WHERE depth = 4
"""

_LINES = """
CREATE TABLE lines AS
SELECT j.shopper, j.day, k.k AS k, p.sku, p.name, p.price,
  (1 + hash($seed, j.shopper, j.day, 'q', k.k) % 3)::BIGINT AS quantity,
  round(p.price * (1 + hash($seed, j.shopper, j.day, 'q', k.k) % 3), 2) AS row_total,
  k.k < j.n_adds AS in_cart
FROM journeys j, range(3) k(k), products p
WHERE k.k < j.n_views AND p.p = (j.first_product + k.k * 7) % 40
"""

_ITEM = (
    "{'SKU': l.sku, 'name': l.name, 'quantity': l.quantity, 'priceTotal': l.row_total, "
    "'currencyCode': st.currency}"
)

_VIEWED = (
    "[{'SKU': l.sku, 'name': l.name, 'quantity': NULL::BIGINT, 'priceTotal': l.price, "
    "'currencyCode': j.currency}]"
)
_ADDED = (
    "[{'SKU': l.sku, 'name': l.name, 'quantity': l.quantity, 'priceTotal': l.row_total, "
    "'currencyCode': j.currency}]"
)

# The storefront events, narrow (one row per event, in time order): what they say, not yet
# in XDM shape.
_STOREFRONT_PLAN = f"""
CREATE TABLE sf AS
WITH tracked AS (
  SELECT j.shopper, j.day, j.started, j.ecid, j.email, j.cart_id, j.depth, j.signs_in,
    j.lost_purchase, st.website, st.store AS store_code, st.view, st.currency, o.purchase_id
  FROM journeys j JOIN stores st ON st.n = j.store
    LEFT JOIN journey_orders o USING (shopper, day)
  WHERE NOT j.in_gap
), carts AS (
  SELECT l.shopper, l.day, list({_ITEM} ORDER BY l.k) AS items,
    round(sum(l.row_total), 2) AS subtotal
  FROM lines l JOIN journeys j USING (shopper, day) JOIN stores st ON st.n = j.store
  WHERE l.in_cart AND j.depth >= 3 AND NOT j.in_gap GROUP BY ALL
), sf AS (
  SELECT j.*, j.started + to_seconds(l.k * 60) AS ts, 'web.webpagedetails.pageViews' AS kind,
    l.k AS n, NULL AS items, NULL::DOUBLE AS total
  FROM tracked j JOIN lines l USING (shopper, day)
  UNION ALL
  SELECT j.*, j.started + to_seconds(l.k * 60 + 1), 'commerce.productViews', l.k, {_VIEWED},
    NULL
  FROM tracked j JOIN lines l USING (shopper, day)
  UNION ALL
  SELECT j.*, j.started + to_seconds(150), 'userAccount.login', 0, NULL, NULL
  FROM tracked j WHERE j.signs_in
  UNION ALL
  SELECT j.*, j.started + to_seconds(200), 'commerce.productListOpens', 0, {_ADDED}, NULL
  FROM tracked j JOIN lines l USING (shopper, day) WHERE j.depth >= 2 AND l.k = 0
  UNION ALL
  SELECT j.*, j.started + to_seconds(200 + l.k * 30), 'commerce.productListAdds', l.k,
    {_ADDED}, NULL
  FROM tracked j JOIN lines l USING (shopper, day) WHERE j.depth >= 2 AND l.in_cart
  UNION ALL
  SELECT j.*, j.started + to_seconds(300), 'commerce.checkouts', 0, c.items, NULL
  FROM tracked j JOIN carts c USING (shopper, day) WHERE j.depth >= 3
  UNION ALL
  SELECT j.*, j.started + to_seconds(400), 'commerce.purchases', 0, c.items,
    round(c.subtotal + {SHIPPING}, 2)
  FROM tracked j JOIN carts c USING (shopper, day) WHERE j.depth = 4 AND NOT j.lost_purchase
)
SELECT shopper, day, ts, kind, n, ecid, email, cart_id, website, store_code, view, currency,
  purchase_id, items, total
FROM sf ORDER BY ts, shopper, kind, n
"""

_WITH_EMAIL = "kind IN ('userAccount.login', 'commerce.purchases')"
_CARTS = "kind IN ('commerce.productListOpens', 'commerce.productListAdds', 'commerce.checkouts')"

_STOREFRONT_EVENTS = f"""
SELECT
  printf('sf-%d-%d-%s-%d', shopper, day, kind, n) AS _id,
  ts AS timestamp,
  kind AS eventType,
  CASE WHEN {_WITH_EMAIL} THEN ['ECID', 'email'] ELSE ['ECID'] END AS identity_keys,
  CASE WHEN {_WITH_EMAIL} THEN [[{{'id': ecid, 'primary': true}}],
                                 [{{'id': email, 'primary': false}}]]
       ELSE [[{{'id': ecid, 'primary': true}}]] END AS identity_values,
  ecid AS personID,
  CASE WHEN kind = 'web.webpagedetails.pageViews' THEN
    {{'webPageDetails': {{'name': 'product', 'pageViews': {{'value': 1.0}}}}}} END AS web,
  items AS productListItems,
  CASE WHEN kind = 'web.webpagedetails.pageViews' THEN NULL ELSE {{
    'order': CASE WHEN kind = 'commerce.purchases' THEN {{
      'purchaseID': purchase_id, 'currencyCode': currency, 'priceTotal': total}} END,
    'cart': CASE WHEN {_CARTS} THEN {{'cartID': cart_id}} END,
    'productViews': CASE WHEN kind = 'commerce.productViews' THEN {{'value': 1.0}} END,
    'productListOpens': CASE WHEN kind = 'commerce.productListOpens' THEN {{'value': 1.0}} END,
    'productListAdds': CASE WHEN kind = 'commerce.productListAdds' THEN {{'value': 1.0}} END,
    'checkouts': CASE WHEN kind = 'commerce.checkouts' THEN {{'value': 1.0}} END,
    'purchases': CASE WHEN kind = 'commerce.purchases' THEN {{'value': 1.0}} END,
    'commerceScope': {{'environmentID': 'koppla-sample', 'websiteCode': website,
                      'storeCode': store_code, 'storeViewCode': view}}
  }} END AS commerce,
  CASE WHEN {_WITH_EMAIL} THEN {{'address': email}} END AS personalEmail,
  CASE WHEN kind = 'userAccount.login' THEN {{'login': 1::BIGINT}} END AS userAccount
FROM sf
"""

_BACKOFFICE_EVENTS = f"""
WITH placed AS (
  SELECT j.started, j.email, o.purchase_id, st.website, st.store AS store_code, st.view,
    st.currency, list({_ITEM} ORDER BY l.k) AS items,
    round(sum(l.row_total) + {SHIPPING}, 2) AS total
  FROM journeys j JOIN journey_orders o USING (shopper, day) JOIN stores st ON st.n = j.store
    JOIN lines l USING (shopper, day)
  WHERE j.depth = 4 AND NOT j.orphan AND l.in_cart GROUP BY ALL
), bo AS (
  SELECT *, 'commerce.backofficeOrderPlaced' AS kind, started + to_seconds(402) AS ts FROM placed
  UNION ALL
  SELECT *, 'commerce.backofficeOrderInvoiced', started + to_seconds(3600)
  FROM placed WHERE purchase_id::BIGINT % 2 = 0
)
SELECT
  printf('bo-%s-%s', purchase_id, kind) AS _id,
  ts AS timestamp,
  kind AS eventType,
  ['Email'] AS identity_keys,
  [[{{'id': email, 'primary': true}}]] AS identity_values,
  items AS productListItems,
  {{'order': {{'purchaseID': purchase_id, 'currencyCode': currency,
              'priceTotal': total, 'createdDate': started + to_seconds(402)}},
    'commerceScope': {{'environmentID': 'koppla-sample', 'websiteCode': website,
                      'storeCode': store_code, 'storeViewCode': view}}}} AS commerce,
  {{'address': email}} AS personalEmail
FROM bo
ORDER BY timestamp, _id
"""

BATCH_ROWS = 65_536


def _rows(db: duckdb.DuckDBPyConnection, sql: str, schema: pa.Schema) -> pa.RecordBatchReader:
    """The rows of `sql` in `schema`, one record batch at a time (`conform`)."""
    nulls = Nulls(BATCH_ROWS)
    reader = db.sql(sql).to_arrow_reader(BATCH_ROWS)
    batches = (conform(_with_identity_map(batch), schema, nulls) for batch in reader)
    return pa.RecordBatchReader.from_batches(schema, batches)


def _with_identity_map(batch: pa.RecordBatch) -> pa.RecordBatch:
    """`identity_keys` and `identity_values` (two parallel lists) as one `identityMap` map."""
    keys, values = batch.column("identity_keys"), batch.column("identity_values")
    offsets = keys.offsets
    if len(keys) and offsets[0].as_py() != 0:
        offsets = pc.subtract(offsets, offsets[0])
    identity = pa.MapArray.from_arrays(offsets, keys.flatten(), values.flatten())
    rest = [n for n in batch.schema.names if n not in ("identity_keys", "identity_values")]
    arrays = [batch.column(n) for n in rest] + [identity]
    return pa.RecordBatch.from_arrays(arrays, names=[*rest, "identityMap"])


def _expected(db: duckdb.DuckDBPyConnection, start: datetime, days: int, gap: datetime) -> Expected:
    end = start + timedelta(days=days)
    funnel = db.execute(
        "SELECT count(DISTINCT shopper) FILTER (WHERE depth >= 1), "
        "count(DISTINCT shopper) FILTER (WHERE depth >= 2), "
        "count(DISTINCT shopper) FILTER (WHERE depth >= 3), "
        "count(DISTINCT shopper) FILTER (WHERE depth = 4 AND NOT lost_purchase) "
        "FROM journeys WHERE NOT in_gap"
    ).fetchone()
    assert funnel is not None
    return Expected(
        start=start,
        end=end,
        gap_day=gap.date(),
        events=0,
        orders_events=0,
        funnel=(int(funnel[0]), int(funnel[1]), int(funnel[2]), int(funnel[3])),
        coverage=_coverage(db),
        revenue=_revenue(db),
        top_products=_top_products(db),
        abandoned=_abandoned(db, end),
    )


def _with_counts(expected: Expected, events: int, orders: int) -> Expected:
    fields: dict[str, Any] = {n: getattr(expected, n) for n in Expected.__slots__}
    fields.update(events=events, orders_events=orders)
    return Expected(**fields)


def _coverage(db: duckdb.DuckDBPyConnection) -> dict[date, DayCoverage]:
    rows = db.execute(
        "SELECT (j.started)::DATE AS day, "
        "  list(o.purchase_id ORDER BY o.purchase_id) FILTER (WHERE NOT j.orphan) AS orders, "
        "  list(o.purchase_id ORDER BY o.purchase_id) "
        "    FILTER (WHERE NOT j.in_gap AND NOT j.lost_purchase) AS purchases, "
        "  list(o.purchase_id ORDER BY o.purchase_id) "
        "    FILTER (WHERE NOT j.orphan AND (j.in_gap OR j.lost_purchase)) AS untracked, "
        "  list(o.purchase_id ORDER BY o.purchase_id) "
        "    FILTER (WHERE j.orphan AND NOT j.in_gap) AS orphans "
        "FROM journeys j JOIN journey_orders o USING (shopper, day) GROUP BY 1"
    ).fetchall()
    out = {}
    for day, orders, purchases, untracked, orphans in rows:
        placed, bought = orders or [], purchases or []
        out[day] = DayCoverage(
            orders=len(placed),
            purchases=len(bought),
            matched=len(placed) - len(untracked or []),
            orders_not_tracked=tuple(untracked or []),
            purchases_without_order=tuple(orphans or []),
        )
    return out


def _revenue(db: duckdb.DuckDBPyConnection) -> dict[tuple[date, str, str], tuple[int, float]]:
    rows = db.execute(
        "SELECT j.started::DATE, st.website, st.currency, count(DISTINCT j.shopper), "
        f"  round(sum(l.row_total) + {SHIPPING} * count(DISTINCT j.shopper), 2) "
        "FROM journeys j JOIN lines l USING (shopper, day) JOIN stores st ON st.n = j.store "
        "WHERE j.depth = 4 AND NOT j.orphan AND l.in_cart GROUP BY ALL"
    ).fetchall()
    return {(d, w, c): (int(n), float(total)) for d, w, c, n, total in rows}


def _top_products(db: duckdb.DuckDBPyConnection) -> tuple[tuple[str, str, int, float], ...]:
    rows = db.execute(
        "SELECT l.sku, st.currency, sum(l.quantity) AS units, "
        "  round(sum(l.row_total), 2) AS revenue "
        "FROM journeys j JOIN lines l USING (shopper, day) JOIN stores st ON st.n = j.store "
        "WHERE j.depth = 4 AND NOT j.orphan AND l.in_cart GROUP BY 1, 2 "
        "ORDER BY revenue DESC, units DESC, 1, 2"
    ).fetchall()
    return tuple((str(s), str(c), int(u), float(r)) for s, c, u, r in rows)


def _abandoned(db: duckdb.DuckDBPyConnection, end: datetime) -> tuple[AbandonedCart, ...]:
    rows = db.execute(
        "WITH known AS (SELECT DISTINCT shopper FROM journeys "
        "  WHERE NOT in_gap AND (signs_in OR (depth = 4 AND NOT lost_purchase))), "
        "carts AS (SELECT j.*, CASE WHEN depth >= 3 THEN started + to_seconds(300) "
        "  ELSE started + to_seconds(200 + (n_adds - 1) * 30) END AS last_at "
        "  FROM journeys j WHERE depth IN (2, 3) AND NOT in_gap) "
        "SELECT c.cart_id, c.ecid, CASE WHEN k.shopper IS NOT NULL THEN c.email END, c.last_at, "
        "  CASE WHEN c.depth >= 3 THEN 'checkout' ELSE 'cart' END, "
        "  list(l.sku ORDER BY l.sku), round(sum(l.row_total), 2) "
        "FROM carts c JOIN lines l USING (shopper, day) LEFT JOIN known k USING (shopper) "
        "WHERE l.in_cart AND c.last_at >= $from AND c.last_at < $idle "
        "GROUP BY ALL ORDER BY c.last_at DESC, c.cart_id",
        {"from": end - timedelta(hours=24), "idle": end - timedelta(minutes=60)},
    ).fetchall()
    return tuple(
        AbandonedCart(str(c), str(e), m, t, str(s), tuple(skus), float(v))
        for c, e, m, t, s, skus, v in rows
    )
