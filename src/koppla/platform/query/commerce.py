"""Commerce reports: ready-made, documented SQL over the storefront and back-office events.

Each `Report` names its parameters and builds one SELECT for the query engine from validated
values, so a report runs under the same guard, limits and scope as any query. Parameter values
reach the SQL only as literals Koppla formats itself (integers, UTC timestamps) or as fragments
chosen from a fixed set; table names only as quoted identifiers. Nothing from the caller is
pasted into SQL as text.

Definitions shared by the reports (docs/commerce-reports.md says more):

- the shopper of a storefront event is its ECID: `personID` (Adobe's collector sets it to the
  ECID on every event), or with `identity=ecid` `personID` else `identityMap['ECID'][1].id`
  (the all-zero ECID the collector sends when it has none is nobody);
- an order is a `commerce.backofficeOrderPlaced` event, named by `commerce.order.purchaseID`
  (the order increment id); a storefront purchase is a `commerce.purchases` event, named by the
  same field; the reconciliation matches the two on it;
- days are UTC days; a window is `[since, until)`, by default the `days` days before now.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from koppla.core import clock
from koppla.core.errors import InvalidInput, NotFound
from koppla.platform.query.engine import QueryEngine, Scope
from koppla.platform.query.result import QueryResult

Value = int | str | datetime | None
"""A validated parameter value: an int, a choice, a UTC timestamp, or None (not given)."""

ParameterKind = Literal["int", "timestamp", "choice"]

VIEWS = "commerce.productViews"
ADDS = "commerce.productListAdds"
OPENS = "commerce.productListOpens"
REMOVALS = "commerce.productListRemovals"
CART_VIEWS = "commerce.productListViews"
CHECKOUTS = "commerce.checkouts"
PURCHASES = "commerce.purchases"
PLACED = "commerce.backofficeOrderPlaced"
NO_ECID = "000000000000000000000000000000000000"

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
_INTEGER = re.compile(r"^[+-]?[0-9]{1,12}$")
_MAX_TIMESTAMP_TEXT = 40
_MATCH_MARGIN = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class CommerceTables:
    """Where the events are: the storefront events table and the back-office events table.

    Both are dataset names as the query engine knows them; they may be the same table (the
    demo datastream lands both kinds in `demo_events`).
    """

    events: str
    orders: str

    def __post_init__(self) -> None:
        for field in ("events", "orders"):
            name = getattr(self, field)
            if not isinstance(name, str) or not _IDENTIFIER.fullmatch(name):
                raise InvalidInput(
                    f"{field} must be a dataset name (letters, digits and '_', at most 128), "
                    f"got {name!r}",
                    field=field,
                )


@dataclass(frozen=True, slots=True)
class Parameter:
    """One report parameter: its name, kind, default (None: see the description), meaning.

    Integers must lie in `[low, high]`; a choice must be one of `choices`.
    """

    name: str
    kind: ParameterKind
    default: int | str | None
    description: str
    low: int = 1
    high: int = 3660
    choices: tuple[str, ...] = ()


Build = Callable[[CommerceTables, Mapping[str, Value]], str]


@dataclass(frozen=True, slots=True)
class Report:
    """A ready-made query: what it answers, its parameters, and how its SQL is built."""

    name: str
    title: str
    description: str
    parameters: tuple[Parameter, ...]
    build: Build

    def sql(
        self,
        tables: CommerceTables,
        params: Mapping[str, object] | None = None,
        *,
        now: datetime | None = None,
    ) -> str:
        """The report's SELECT for `tables` and the raw `params` (validated by `resolve`)."""
        return self.build(tables, resolve(self, params or {}, now=now))


def resolve(
    report: Report, raw: Mapping[str, object], *, now: datetime | None = None
) -> dict[str, Value]:
    """Every parameter of `report` as a validated value: given ones parsed, others defaulted.

    Text from a command line or a URL is accepted for every kind. `InvalidInput` names the
    parameter and the rule for an unknown name or a bad value. `until` defaults to `now`
    (the clock's now); `since` to `until` less `days`.
    """
    known = {p.name: p for p in report.parameters}
    for name in raw:
        if name not in known:
            accepted = ", ".join(known) or "none"
            raise InvalidInput(
                f"report {report.name} has no parameter {name!r} (its parameters: {accepted})",
                field=str(name),
            )
    values: dict[str, Value] = {}
    for parameter in report.parameters:
        given = raw.get(parameter.name)
        values[parameter.name] = parameter.default if given is None else _parse(parameter, given)
    return _with_window(values, clock.now() if now is None else now)


def _parse(parameter: Parameter, given: object) -> Value:
    if parameter.kind == "int":
        return _int(parameter, given)
    if parameter.kind == "timestamp":
        return _timestamp(parameter, given)
    return _choice(parameter, given)


def _int(parameter: Parameter, given: object) -> int:
    if isinstance(given, bool) or not isinstance(given, int | str):
        raise _bad(parameter, f"must be a whole number, got {given!r}")
    if isinstance(given, str):
        if not _INTEGER.fullmatch(given.strip()):
            raise _bad(parameter, f"must be a whole number, got {given[:40]!r}")
        given = int(given.strip())
    if not parameter.low <= given <= parameter.high:
        raise _bad(parameter, f"must be between {parameter.low} and {parameter.high}, got {given}")
    return given


def _timestamp(parameter: Parameter, given: object) -> datetime:
    if isinstance(given, datetime):
        moment = given
    elif isinstance(given, str) and len(given) <= _MAX_TIMESTAMP_TEXT:
        try:
            moment = datetime.fromisoformat(given.strip())
        except ValueError:
            raise _bad(parameter, _TIMESTAMP_RULE + f", got {given!r}") from None
    else:
        raise _bad(parameter, _TIMESTAMP_RULE + f", got {str(given)[:40]!r}")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    moment = moment.astimezone(UTC)
    if not 1970 <= moment.year <= 9999:
        raise _bad(parameter, f"must lie between the years 1970 and 9999, got {moment.year}")
    return moment


_TIMESTAMP_RULE = "must be an ISO 8601 date or time (2026-03-02 or 2026-03-02T10:00:00Z)"


def _choice(parameter: Parameter, given: object) -> str:
    if not isinstance(given, str) or given not in parameter.choices:
        shown = given[:40] if isinstance(given, str) else given
        allowed = ", ".join(parameter.choices)
        raise _bad(parameter, f"must be one of {allowed}, got {shown!r}")
    return given


def _bad(parameter: Parameter, why: str) -> InvalidInput:
    return InvalidInput(f"parameter {parameter.name} {why}", field=parameter.name)


def _with_window(values: dict[str, Value], now: datetime) -> dict[str, Value]:
    """Fill `until` (now) and `since` (`until` - `days` or - `hours`) when the report has them."""
    if "until" not in values:
        return values
    until = values["until"] if isinstance(values["until"], datetime) else now.astimezone(UTC)
    values["until"] = until
    if "since" in values:
        since = values["since"]
        if not isinstance(since, datetime):
            days = values.get("days")
            since = until - timedelta(days=days if isinstance(days, int) else 7)
        if since >= until:
            raise InvalidInput(
                f"parameter since ({since.isoformat()}) must be before until ({until.isoformat()})",
                field="since",
            )
        values["since"] = since
    return values


def quote(name: str) -> str:
    """`name` as a quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def literal(moment: datetime) -> str:
    """A UTC moment as a DuckDB `TIMESTAMPTZ` literal (formatted here, never caller text)."""
    text = moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    return f"TIMESTAMPTZ '{text}+00'"


def _moment(values: Mapping[str, Value], name: str) -> datetime:
    value = values[name]
    if not isinstance(value, datetime):
        raise InvalidInput(f"parameter {name} is missing", field=name)
    return value


def _number(values: Mapping[str, Value], name: str) -> int:
    value = values[name]
    if not isinstance(value, int):
        raise InvalidInput(f"parameter {name} is missing", field=name)
    return value


def _types(*names: str) -> str:
    return ", ".join(f"'{name}'" for name in names)


SHOPPER = (
    "CASE WHEN personID IS NULL OR regexp_full_match(personID, '0*') "
    "THEN identityMap['ECID'][1].id ELSE personID END"
)
"""The storefront event's shopper (its ECID), from `personID` or else (none, empty or all
zeros) the identity map."""
_SHOPPER_BY = {"personID": "nullif(personID, '')", "ecid": SHOPPER}
_IDENTITY = Parameter(
    "identity",
    "choice",
    "personID",
    "Where the shopper's ECID is read: `personID` (set by Adobe's storefront collector on "
    "every event; fast) or `ecid` (personID, else identityMap's ECID; for tags that do not "
    "set personID, and several times slower).",
    choices=tuple(_SHOPPER_BY),
)


def _shopper(values: Mapping[str, Value]) -> str:
    return _SHOPPER_BY[str(values["identity"])]


DAY = "timezone('UTC', {0})::DATE"

_DAYS = Parameter("days", "int", 7, "Days before `until` the window covers (when no `since`).")
_SINCE = Parameter("since", "timestamp", None, "Window start (inclusive); default `until` - days.")
_UNTIL = Parameter("until", "timestamp", None, "Window end (exclusive); default now.")
_WINDOW = (_DAYS, _SINCE, _UNTIL)


def _window(values: Mapping[str, Value]) -> str:
    return (
        f"timestamp >= {literal(_moment(values, 'since'))} "
        f"AND timestamp < {literal(_moment(values, 'until'))}"
    )


# ---- funnel ---------------------------------------------------------------------------------

_STEPS = (
    ("viewed a product", VIEWS, "viewed"),
    ("added to cart", ADDS, "added"),
    ("began checkout", CHECKOUTS, "checked_out"),
    ("purchased", PURCHASES, "purchased"),
)


def funnel_sql(tables: CommerceTables, values: Mapping[str, Value]) -> str:
    """Shoppers reaching each step of the funnel in the window (see `FUNNEL`)."""
    flags = ",\n    ".join(
        f"bool_or(eventType = '{event}') AS {flag}" for _stage, event, flag in _STEPS
    )
    reached = [" AND ".join(flag for _s, _e, flag in _STEPS[: n + 1]) for n in range(4)]
    counts = ",\n    ".join(
        [f"count(*) FILTER (WHERE {cond}) AS r{n}" for n, cond in enumerate(reached)]
        + [f"count(*) FILTER (WHERE {flag}) AS d{n}" for n, (_s, _e, flag) in enumerate(_STEPS)]
    )
    stages = ", ".join(f"'{stage}'" for stage, _e, _f in _STEPS)
    events = ", ".join(f"'{event}'" for _s, event, _f in _STEPS)
    return f"""WITH _shoppers AS (
  SELECT {_shopper(values)} AS shopper,
    {flags}
  FROM {quote(tables.events)}
  WHERE {_window(values)}
    AND eventType IN ({events})
  GROUP BY 1
), _counts AS (
  SELECT
    {counts}
  FROM _shoppers
  WHERE shopper IS NOT NULL AND shopper NOT IN ('', '{NO_ECID}')
), _steps AS (
  SELECT unnest([1, 2, 3, 4]) AS step,
    unnest([{stages}]) AS stage,
    unnest([{events}]) AS event_type,
    unnest([r0, r1, r2, r3]) AS shoppers,
    unnest([d0, d1, d2, d3]) AS shoppers_with_step
  FROM _counts
)
SELECT step, stage, event_type, shoppers,
  round(100.0 * shoppers / nullif(lag(shoppers) OVER (ORDER BY step), 0), 1)
    AS step_conversion_pct,
  round(100.0 * shoppers / nullif(first_value(shoppers) OVER (ORDER BY step), 0), 1)
    AS overall_conversion_pct,
  shoppers_with_step
FROM _steps
ORDER BY step"""


FUNNEL = Report(
    name="funnel",
    title="Conversion funnel",
    description=(
        "Shoppers (ECIDs) in the window who viewed a product, then also added to the cart, "
        "also began checkout, also purchased (storefront events). A shopper reaches a step "
        "when they did it and every step before it within the window, in any order. "
        "step_conversion_pct is against the step before, overall_conversion_pct against "
        "the first; shoppers_with_step counts everyone who did the step at all."
    ),
    parameters=(*_WINDOW, _IDENTITY),
    build=funnel_sql,
)


# ---- abandoned carts ------------------------------------------------------------------------

_HOURS = Parameter("hours", "int", 24, "Hours before `until` to look for cart activity.", 1, 720)
_IDLE = Parameter(
    "idle_minutes", "int", 60, "Minutes a cart must have been idle before `until`.", 0, 10080
)


def abandoned_carts_sql(tables: CommerceTables, values: Mapping[str, Value]) -> str:
    """Carts active in the last `hours` that led to no purchase and no order (`ABANDONED`)."""
    until = _moment(values, "until")
    since = until - timedelta(hours=_number(values, "hours"))
    idle = until - timedelta(minutes=_number(values, "idle_minutes"))
    window = f"timestamp >= {literal(since)} AND timestamp < {literal(until)}"
    events, orders = quote(tables.events), quote(tables.orders)
    shopper = _shopper(values)
    return f"""WITH _cart_events AS (
  SELECT commerce.cart.cartID AS cart_id, {shopper} AS shopper, timestamp, eventType,
    productListItems
  FROM {events}
  WHERE {window}
    AND eventType IN ({_types(ADDS, OPENS, REMOVALS, CART_VIEWS, CHECKOUTS)})
    AND commerce.cart.cartID IS NOT NULL
), _carts AS (
  SELECT cart_id, arg_max(shopper, timestamp) AS shopper, max(timestamp) AS last_activity,
    bool_or(eventType = '{CHECKOUTS}') AS began_checkout
  FROM _cart_events
  GROUP BY cart_id
  HAVING bool_or(eventType IN ({_types(ADDS, CHECKOUTS)}))
    AND max(timestamp) < {literal(idle)}
), _purchases AS (
  SELECT {shopper} AS shopper, commerce.cart.cartID AS cart_id, timestamp AS seen_at
  FROM {events}
  WHERE {window} AND eventType = '{PURCHASES}'
), _emails AS (
  SELECT {shopper} AS shopper,
    arg_max(lower(trim(personalEmail.address)), timestamp) AS email
  FROM {events}
  WHERE timestamp < {literal(until)} AND personalEmail.address IS NOT NULL
    AND eventType NOT LIKE 'commerce.backoffice%'
  GROUP BY 1
), _orders AS (
  SELECT lower(trim(coalesce(personalEmail.address, identityMap['Email'][1].id))) AS email,
    max(timestamp) AS seen_at
  FROM {orders}
  WHERE {window} AND eventType = '{PLACED}'
  GROUP BY 1
), _done AS (
  SELECT c.cart_id FROM _carts c
    JOIN _purchases p ON p.shopper = c.shopper AND p.seen_at >= c.last_activity
  UNION
  SELECT c.cart_id FROM _carts c
    JOIN _purchases p ON p.cart_id = c.cart_id AND p.seen_at >= c.last_activity
  UNION
  SELECT c.cart_id FROM _carts c
    JOIN _emails e ON e.shopper = c.shopper
    JOIN _orders o ON o.email = e.email AND o.seen_at >= c.last_activity
), _open AS (
  SELECT c.* FROM _carts c ANTI JOIN _done d ON d.cart_id = c.cart_id
), _lines AS (
  SELECT cart_id, item.SKU AS sku, arg_max(item, timestamp) AS line,
    arg_max(eventType, timestamp) AS last_event
  FROM (
    SELECT e.cart_id, e.timestamp, e.eventType, unnest(e.productListItems) AS item
    FROM _cart_events e SEMI JOIN _open o ON o.cart_id = e.cart_id
  )
  WHERE item.SKU IS NOT NULL
  GROUP BY cart_id, item.SKU
  HAVING arg_max(eventType, timestamp) <> '{REMOVALS}'
)
SELECT o.cart_id, o.shopper AS ecid, e.email, o.last_activity,
  CASE WHEN o.began_checkout THEN 'checkout' ELSE 'cart' END AS step,
  list({{'SKU': l.sku, 'name': l.line.name, 'quantity': l.line.quantity,
        'priceTotal': l.line.priceTotal}} ORDER BY l.sku) FILTER (WHERE l.sku IS NOT NULL)
    AS items,
  round(coalesce(sum(l.line.priceTotal), 0), 2) AS value,
  any_value(l.line.currencyCode) AS currency
FROM _open o
  LEFT JOIN _emails e ON e.shopper = o.shopper
  LEFT JOIN _lines l ON l.cart_id = o.cart_id
GROUP BY o.cart_id, o.shopper, e.email, o.last_activity, o.began_checkout
ORDER BY o.last_activity DESC, o.cart_id"""


ABANDONED = Report(
    name="abandoned_carts",
    title="Abandoned carts",
    description=(
        "Carts (commerce.cart.cartID) with an add-to-cart or a checkout in the last `hours` "
        "before `until`, idle for at least `idle_minutes`, that led to no storefront purchase "
        "by the same shopper (or of the same cart) and no back-office order placed under the "
        "shopper's email, afterwards. One row per cart: the shopper's ECID, their email when "
        "any storefront event ever linked it to the ECID, the last activity, how far they got, "
        "the lines as last seen (each SKU's latest add, cart view or checkout line; a SKU "
        "last removed is left out) and their value."
    ),
    parameters=(_HOURS, _IDLE, _UNTIL, _IDENTITY),
    build=abandoned_carts_sql,
)


# ---- orders, purchases and their reconciliation ---------------------------------------------


def _orders_cte(name: str, table: str, event_type: str, window: str, detail: bool) -> str:
    """One row per purchase ID of `event_type` events in `window`: when it was first seen
    (and, with `detail`, its store, currency, total and email)."""
    more = (
        """,
    any_value(commerce.commerceScope.websiteCode) AS website,
    any_value(commerce.commerceScope.storeCode) AS store,
    any_value(commerce.commerceScope.storeViewCode) AS store_view,
    arg_min(commerce.order.currencyCode, timestamp) AS currency,
    arg_min(commerce.order.priceTotal, timestamp) AS total,
    any_value(personalEmail.address) AS email"""
        if detail
        else ""
    )
    return f"""{name} AS (
  SELECT commerce.order.purchaseID AS id, min(timestamp) AS seen_at{more}
  FROM {quote(table)}
  WHERE {window} AND eventType = '{event_type}' AND commerce.order.purchaseID IS NOT NULL
  GROUP BY 1
)"""


def revenue_by_day_sql(tables: CommerceTables, values: Mapping[str, Value]) -> str:
    """Orders and revenue per day and store, with storefront purchases beside (`REVENUE`)."""
    window = _window(values)
    orders = _orders_cte("_orders", tables.orders, PLACED, window, detail=True)
    purchases = _orders_cte("_purchases", tables.events, PURCHASES, window, detail=True)
    keys = ("day", "website", "store", "store_view", "currency")
    join = " AND ".join(f"o.{k} IS NOT DISTINCT FROM p.{k}" for k in keys)
    picked = ", ".join(f"coalesce(o.{k}, p.{k}) AS {k}" for k in keys)
    per_day = (
        f"SELECT {DAY.format('seen_at')} AS day, website, store, store_view, currency, "
        "count(*) AS n, round(sum(total), 2) AS revenue FROM {0} GROUP BY ALL"
    )
    return f"""WITH {orders}, {purchases},
_o AS ({per_day.format("_orders")}),
_p AS ({per_day.format("_purchases")})
SELECT {picked},
  coalesce(o.n, 0) AS orders, coalesce(o.revenue, 0) AS revenue,
  coalesce(p.n, 0) AS storefront_purchases, coalesce(p.revenue, 0) AS storefront_revenue
FROM _o o FULL JOIN _p p ON {join}
ORDER BY day, website, store, store_view, currency"""


REVENUE = Report(
    name="revenue_by_day",
    title="Revenue by day and store",
    description=(
        "Per UTC day, website, store, store view and currency: orders placed and their revenue "
        "(commerce.order.priceTotal of commerce.backofficeOrderPlaced, each purchase ID once), "
        "with the storefront's purchases (commerce.purchases) and their revenue beside."
    ),
    parameters=_WINDOW,
    build=revenue_by_day_sql,
)

_LIMIT = Parameter("limit", "int", 10, "Most products to list.", 1, 1000)
_BY = Parameter(
    "by", "choice", "revenue", "Rank by `revenue` or by `units`.", choices=("revenue", "units")
)
_RANKING = {"revenue": "revenue DESC, units DESC", "units": "units DESC, revenue DESC"}


def top_products_sql(tables: CommerceTables, values: Mapping[str, Value]) -> str:
    """The best-selling products of the orders placed in the window (`TOP_PRODUCTS`)."""
    ranking = _RANKING[str(values["by"])]
    return f"""WITH _orders AS (
  SELECT commerce.order.purchaseID AS id, arg_min(productListItems, timestamp) AS items
  FROM {quote(tables.orders)}
  WHERE {_window(values)} AND eventType = '{PLACED}' AND commerce.order.purchaseID IS NOT NULL
  GROUP BY 1
), _lines AS (
  SELECT id, unnest(items) AS item FROM _orders
), _products AS (
  SELECT item.SKU AS sku, any_value(item.name) AS name, item.currencyCode AS currency,
    sum(item.quantity) AS units, round(sum(item.priceTotal), 2) AS revenue,
    count(DISTINCT id) AS orders
  FROM _lines
  WHERE item.SKU IS NOT NULL
  GROUP BY item.SKU, item.currencyCode
)
SELECT row_number() OVER (ORDER BY {ranking}, sku, currency) AS rank,
  sku, name, currency, units, revenue, orders
FROM _products
ORDER BY rank
LIMIT {_number(values, "limit")}"""


TOP_PRODUCTS = Report(
    name="top_products",
    title="Top products",
    description=(
        "The products of the orders placed in the window (productListItems of "
        "commerce.backofficeOrderPlaced, each purchase ID once), per SKU and currency: "
        "units (sum of quantity), revenue (sum of the lines' priceTotal) and orders, "
        "ranked by revenue or units."
    ),
    parameters=(*_WINDOW, _LIMIT, _BY),
    build=top_products_sql,
)


def _pairs(tables: CommerceTables, values: Mapping[str, Value], detail: bool) -> str:
    """The CTEs pairing orders placed with storefront purchases by purchase ID (`_pairs`).

    Both sides are read one day beyond the window on each side, so an order and its purchase
    on either side of midnight or of the window's edge still match."""
    since, until = _moment(values, "since"), _moment(values, "until")
    wide = (
        f"timestamp >= {literal(since - _MATCH_MARGIN)} "
        f"AND timestamp < {literal(until + _MATCH_MARGIN)}"
    )
    orders = _orders_cte("_orders", tables.orders, PLACED, wide, detail)
    purchases = _orders_cte("_purchases", tables.events, PURCHASES, wide, detail)
    extra = (
        ", o.website AS order_website, o.currency AS order_currency, o.total AS order_total, "
        "o.email AS order_email, p.website AS purchase_website, "
        "p.currency AS purchase_currency, p.total AS purchase_total, p.email AS purchase_email"
        if detail
        else ""
    )
    return f"""{orders}, {purchases},
_pairs AS (
  SELECT o.id AS order_id, o.seen_at AS order_at,
    p.id AS purchase_id, p.seen_at AS purchase_at{extra}
  FROM _orders o FULL JOIN _purchases p ON p.id = o.id
)"""


def _in(column: str, values: Mapping[str, Value]) -> str:
    since, until = literal(_moment(values, "since")), literal(_moment(values, "until"))
    return f"{column} >= {since} AND {column} < {until}"


def tracking_coverage_sql(tables: CommerceTables, values: Mapping[str, Value]) -> str:
    """Per day, how many orders the storefront reported, and the other way (`COVERAGE`)."""
    return f"""WITH {_pairs(tables, values, detail=False)},
_sides AS (
  SELECT {DAY.format("order_at")} AS day, 'order' AS side, purchase_id IS NOT NULL AS matched
  FROM _pairs WHERE {_in("order_at", values)}
  UNION ALL
  SELECT {DAY.format("purchase_at")}, 'purchase', order_id IS NOT NULL
  FROM _pairs WHERE {_in("purchase_at", values)}
)
SELECT day,
  count(*) FILTER (WHERE side = 'order') AS orders,
  count(*) FILTER (WHERE side = 'purchase') AS storefront_purchases,
  count(*) FILTER (WHERE side = 'order' AND matched) AS matched,
  count(*) FILTER (WHERE side = 'order' AND NOT matched) AS orders_not_tracked,
  count(*) FILTER (WHERE side = 'purchase' AND NOT matched) AS purchases_without_order,
  round(100.0 * count(*) FILTER (WHERE side = 'order' AND matched)
    / nullif(count(*) FILTER (WHERE side = 'order'), 0), 1) AS coverage_pct
FROM _sides
GROUP BY day
ORDER BY day"""


COVERAGE = Report(
    name="tracking_coverage",
    title="Tracking coverage: storefront purchases against back-office orders",
    description=(
        "Per UTC day: orders placed (back office), storefront purchases, orders matched by a "
        "storefront purchase of the same commerce.order.purchaseID, orders the storefront did "
        "not report, purchases that never became an order, and coverage_pct = matched / "
        "orders. Orders count on the day they were placed, purchases on the day they were "
        "sent; a match may lie up to a day outside the window. A drop in coverage_pct is a "
        "broken or blocked storefront tag; purchases without an order are failed payments, "
        "test orders or a tag sending the wrong ID. tracking_gaps lists them."
    ),
    parameters=_WINDOW,
    build=tracking_coverage_sql,
)


def tracking_gaps_sql(tables: CommerceTables, values: Mapping[str, Value]) -> str:
    """Each order the storefront did not report and each purchase without order (`GAPS`)."""
    return f"""WITH {_pairs(tables, values, detail=True)}
SELECT {DAY.format("order_at")} AS day, 'order not tracked' AS gap, order_id AS purchase_id,
  order_at AS at, order_website AS website, order_currency AS currency,
  order_total AS total, order_email AS email
FROM _pairs WHERE purchase_id IS NULL AND {_in("order_at", values)}
UNION ALL
SELECT {DAY.format("purchase_at")}, 'purchase without order', purchase_id, purchase_at,
  purchase_website, purchase_currency, purchase_total, purchase_email
FROM _pairs WHERE order_id IS NULL AND {_in("purchase_at", values)}
ORDER BY day, gap, purchase_id"""


GAPS = Report(
    name="tracking_gaps",
    title="Tracking gaps: unmatched orders and purchases",
    description=(
        "The detail behind tracking_coverage: one row per order placed that no storefront "
        "purchase reported ('order not tracked') and per storefront purchase no order was "
        "placed for ('purchase without order'), with its day, purchase ID, time, website, "
        "currency, total and email."
    ),
    parameters=_WINDOW,
    build=tracking_gaps_sql,
)


REPORTS: tuple[Report, ...] = (FUNNEL, ABANDONED, REVENUE, TOP_PRODUCTS, COVERAGE, GAPS)
"""Every commerce report, in the order they are listed."""


def report(name: str) -> Report:
    """The report called `name`; `NotFound` naming the reports there are."""
    for found in REPORTS:
        if found.name == name:
            return found
    names = ", ".join(r.name for r in REPORTS)
    raise NotFound(f"no report {name[:60]!r}; the reports are: {names}")


DEMO_TABLE = "demo_events"


def default_tables(
    datasets: Sequence[tuple[str, str]],
    event_schema: str,
    events: str | None = None,
    orders: str | None = None,
) -> CommerceTables:
    """The tables to report on: `events` and `orders` when given (`orders` defaults to
    `events`), else the one dataset of `datasets` (`(name, schema id)` pairs) whose schema is
    `event_schema`, or `demo_events` among several. `InvalidInput` naming `events` otherwise.
    """
    if events is None:
        candidates = sorted(name for name, schema in datasets if schema == event_schema)
        if len(candidates) == 1:
            events = candidates[0]
        elif DEMO_TABLE in candidates:
            events = DEMO_TABLE
        else:
            listed = ", ".join(candidates) or "none"
            raise InvalidInput(
                "say which dataset holds the storefront events (events) and which the "
                f"back-office events (orders); commerce event datasets: {listed}",
                field="events",
            )
    return CommerceTables(events, orders or events)


def run_report(
    engine: QueryEngine,
    name: str,
    tables: CommerceTables,
    params: Mapping[str, object],
    *,
    scope: Scope | None = None,
    max_rows: int | None = None,
) -> QueryResult:
    """Run the report `name` with the raw `params` through `engine` (in `scope`, when given).

    Raises `NotFound` for an unknown report, `InvalidInput` naming a bad parameter, and what
    `QueryEngine.run` raises.
    """
    sql = report(name).sql(tables, params)
    return engine.run(sql, max_rows=max_rows, scope=scope)
