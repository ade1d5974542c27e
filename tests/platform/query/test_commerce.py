"""The commerce reports give the known answers of a generated shop history, gap included."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from deltalake import write_deltalake

from koppla.core.errors import InvalidInput, NotFound
from koppla.core.layout import Layout
from koppla.core.settings import Settings
from koppla.platform.catalog.models import Datastream
from koppla.platform.catalog.store import Catalog
from koppla.platform.datasets.tables import provision
from koppla.platform.query import commerce
from koppla.platform.query.commerce import CommerceTables, default_tables, run_report
from koppla.platform.query.commerce_sample import Expected, generate_history
from koppla.platform.query.engine import QueryEngine
from koppla.platform.query.result import QueryResult
from koppla.web.services import Services
from koppla.xdm.experience_event import commerce_experience_event
from koppla.xdm.registry import builtin_registry

History = tuple[Any, Any, Expected]
DEMO = CommerceTables("demo_events", "demo_events")


@pytest.fixture(scope="module")
def history() -> History:
    """300 shoppers over a week: about 3,500 storefront events, 150 back-office events."""
    return generate_history(300, 7, seed=3)


@pytest.fixture
def expected(history: History) -> Expected:
    return history[2]


@pytest.fixture
def engine(
    settings: Settings, demo: Datastream, services: Services, history: History
) -> QueryEngine:
    """The home's query engine, its `demo_events` holding the history (both kinds of events,
    as the demo datastream lands them)."""
    path = str(Layout(settings.home).dataset(demo.event_dataset_id))
    write_deltalake(path, history[0], mode="append")
    write_deltalake(path, history[1], mode="append")
    return services.query


def _run(engine: QueryEngine, name: str, expected: Expected, **params: object) -> QueryResult:
    params.setdefault("until", expected.end.isoformat())
    if "days" in {p.name for p in commerce.report(name).parameters}:
        params.setdefault("days", 7)
    return run_report(engine, name, DEMO, params, max_rows=10_000)


def _dicts(result: QueryResult) -> list[dict[str, Any]]:
    names = [c.name for c in result.columns]
    return [dict(zip(names, row, strict=True)) for row in result.rows]


def test_the_funnel_counts_shoppers_reaching_each_step(
    engine: QueryEngine, expected: Expected
) -> None:
    rows = _dicts(_run(engine, "funnel", expected))
    assert [r["stage"] for r in rows] == [
        "viewed a product",
        "added to cart",
        "began checkout",
        "purchased",
    ]
    assert tuple(r["shoppers"] for r in rows) == expected.funnel
    views, adds = expected.funnel[0], expected.funnel[1]
    assert rows[0]["step_conversion_pct"] is None
    assert rows[1]["step_conversion_pct"] == round(100 * adds / views, 1)
    assert rows[3]["overall_conversion_pct"] == round(100 * expected.funnel[3] / views, 1)


def test_the_funnel_reads_the_ecid_from_the_identity_map_too(
    engine: QueryEngine, expected: Expected
) -> None:
    rows = _dicts(_run(engine, "funnel", expected, identity="ecid"))
    assert tuple(r["shoppers"] for r in rows) == expected.funnel


def test_tracking_coverage_shows_the_planted_gap(engine: QueryEngine, expected: Expected) -> None:
    rows = {r["day"]: r for r in _dicts(_run(engine, "tracking_coverage", expected))}
    assert sorted(rows) == sorted(expected.coverage)
    for day, known in expected.coverage.items():
        row = rows[day]
        assert row["orders"] == known.orders
        assert row["storefront_purchases"] == known.purchases
        assert row["matched"] == known.matched
        assert row["orders_not_tracked"] == len(known.orders_not_tracked)
        assert row["purchases_without_order"] == len(known.purchases_without_order)
        assert row["coverage_pct"] == round(100 * known.matched / known.orders, 1)
    gap = rows[expected.gap_day]
    assert gap["orders_not_tracked"] >= 2  # the broken tag's orders, not just a lost one
    assert gap["coverage_pct"] == min(r["coverage_pct"] for r in rows.values())


def test_tracking_gaps_lists_the_unmatched_purchase_ids(
    engine: QueryEngine, expected: Expected
) -> None:
    found: dict[tuple[date, str], list[str]] = defaultdict(list)
    for row in _dicts(_run(engine, "tracking_gaps", expected)):
        found[(row["day"], row["gap"])].append(row["purchase_id"])
        assert row["email"] and row["total"] > 0
    wanted = {}
    for day, known in expected.coverage.items():
        if known.orders_not_tracked:
            wanted[(day, "order not tracked")] = list(known.orders_not_tracked)
        if known.purchases_without_order:
            wanted[(day, "purchase without order")] = list(known.purchases_without_order)
    assert dict(found) == wanted


def test_a_window_counts_only_its_days(engine: QueryEngine, expected: Expected) -> None:
    after_gap = datetime.combine(expected.gap_day, datetime.min.time(), UTC) + timedelta(days=1)
    params = {"until": after_gap.isoformat(), "days": "1"}
    rows = _dicts(run_report(engine, "tracking_coverage", DEMO, params))
    assert [r["day"] for r in rows] == [expected.gap_day]
    assert rows[0]["orders"] == expected.coverage[expected.gap_day].orders


def test_abandoned_carts_are_exactly_the_planted_ones(
    engine: QueryEngine, expected: Expected
) -> None:
    rows = _dicts(_run(engine, "abandoned_carts", expected))
    assert expected.abandoned  # the history plants some
    got = [
        (
            r["cart_id"],
            r["ecid"],
            r["email"],
            r["last_activity"],
            r["step"],
            tuple(i["SKU"] for i in r["items"]),
            r["value"],
        )
        for r in rows
    ]
    assert got == [
        (c.cart_id, c.ecid, c.email, c.last_activity, c.step, c.skus, c.value)
        for c in expected.abandoned
    ]
    assert any(c.email is None for c in expected.abandoned)
    assert any(c.email is not None for c in expected.abandoned)


def test_revenue_by_day_sums_the_orders_placed(engine: QueryEngine, expected: Expected) -> None:
    rows = _dicts(_run(engine, "revenue_by_day", expected))
    got = {(r["day"], r["website"], r["currency"]): (r["orders"], r["revenue"]) for r in rows}
    assert got == expected.revenue
    per_day: dict[date, int] = defaultdict(int)
    for r in rows:
        per_day[r["day"]] += r["storefront_purchases"]
    assert dict(per_day) == {d: c.purchases for d, c in expected.coverage.items()}


def test_top_products_rank_by_revenue_or_units(engine: QueryEngine, expected: Expected) -> None:
    rows = _dicts(_run(engine, "top_products", expected, limit=5))
    assert [(r["sku"], r["currency"], r["units"], r["revenue"]) for r in rows] == list(
        expected.top_products[:5]
    )
    assert [r["rank"] for r in rows] == [1, 2, 3, 4, 5]
    by_units = _dicts(_run(engine, "top_products", expected, by="units", limit=3))
    most = max(units for _sku, _currency, units, _revenue in expected.top_products)
    assert by_units[0]["units"] == most
    assert [r["units"] for r in by_units] == sorted((r["units"] for r in by_units), reverse=True)


def test_back_office_events_may_live_in_their_own_dataset(
    settings: Settings, catalog: Catalog, demo: Datastream, services: Services, history: History
) -> None:
    layout = Layout(settings.home)
    orders = catalog.create_dataset(
        "backoffice_events", schema_id=commerce_experience_event().id, org_id=demo.org_id
    )
    provision(layout, builtin_registry(), orders)
    write_deltalake(str(layout.dataset(demo.event_dataset_id)), history[0], mode="append")
    write_deltalake(str(layout.dataset(orders.id)), history[1], mode="append")
    expected = history[2]
    tables = CommerceTables("demo_events", "backoffice_events")
    params = {"until": expected.end.isoformat(), "days": "7"}
    result = run_report(services.query, "tracking_coverage", tables, params)
    rows = {r["day"]: r for r in _dicts(result)}
    gap = expected.coverage[expected.gap_day]
    assert rows[expected.gap_day]["orders_not_tracked"] == len(gap.orders_not_tracked)
    only_storefront = run_report(services.query, "tracking_coverage", DEMO, params)
    assert all(r["orders"] == 0 for r in _dicts(only_storefront))

    # A checkout whose purchase event was lost is not abandoned: the back office shows the
    # order, matched by the shopper's email. Without the back office it looks abandoned.
    week = {"until": expected.end.isoformat(), "hours": "168"}
    with_orders = _dicts(run_report(services.query, "abandoned_carts", tables, week))
    without = _dicts(run_report(services.query, "abandoned_carts", DEMO, week))
    ordered = {r["cart_id"]: r for r in without}.keys() - {r["cart_id"] for r in with_orders}
    assert ordered
    untracked = {
        r["email"]
        for r in _dicts(run_report(services.query, "tracking_gaps", tables, params))
        if r["gap"] == "order not tracked"
    }
    assert {r["email"] for r in without if r["cart_id"] in ordered} <= untracked


@pytest.mark.parametrize(
    ("name", "params", "field"),
    [
        ("abandoned_carts", {"hours": "1; DROP TABLE x"}, "hours"),
        ("abandoned_carts", {"hours": "0"}, "hours"),
        ("abandoned_carts", {"hours": True}, "hours"),
        ("funnel", {"days": "7 OR 1=1"}, "days"),
        ("funnel", {"until": "2026-03-09' OR '1'='1"}, "until"),
        ("funnel", {"since": "yesterday"}, "since"),
        ("funnel", {"since": "2026-03-09", "until": "2026-03-01"}, "since"),
        ("funnel", {"identity": "personID) FROM x --"}, "identity"),
        ("top_products", {"by": "revenue; DROP"}, "by"),
        ("top_products", {"limit": "100000"}, "limit"),
        ("funnel", {"hours": "1"}, "hours"),
    ],
)
def test_bad_parameters_are_refused_naming_them(
    name: str, params: dict[str, object], field: str
) -> None:
    with pytest.raises(InvalidInput) as refused:
        commerce.report(name).sql(DEMO, params)
    assert refused.value.field == field
    assert field in str(refused.value)


def test_parameters_reach_the_sql_as_literals_formatted_here() -> None:
    sql = commerce.report("funnel").sql(DEMO, {"until": "2026-03-09T02:00:00+02:00", "days": " 2 "})
    assert "TIMESTAMPTZ '2026-03-09 00:00:00.000000+00'" in sql
    assert "TIMESTAMPTZ '2026-03-07 00:00:00.000000+00'" in sql
    assert 'FROM "demo_events"' in sql


@pytest.mark.parametrize("name", ['demo_events"; DROP', "a b", "", "x" * 200])
def test_table_names_must_be_names(name: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        CommerceTables(name, "demo_events")
    assert refused.value.field == "events"


def test_an_unknown_report_names_the_reports() -> None:
    with pytest.raises(NotFound, match="funnel, abandoned_carts"):
        commerce.report("nope")


def test_every_report_has_a_unique_name_and_documented_parameters() -> None:
    names = [r.name for r in commerce.REPORTS]
    assert len(set(names)) == len(names)
    for found in commerce.REPORTS:
        assert found.title and found.description
        assert all(p.description for p in found.parameters)


def test_default_tables_pick_the_commerce_event_dataset() -> None:
    schema = commerce_experience_event().id
    one = [("shop_events", schema), ("profiles_x", "profile")]
    assert default_tables(one, schema) == CommerceTables("shop_events", "shop_events")
    two = [("a_events", schema), ("demo_events", schema)]
    assert default_tables(two, schema).events == "demo_events"
    assert default_tables(two, schema, "a_events", "demo_events").orders == "demo_events"
    with pytest.raises(InvalidInput) as refused:
        default_tables([("a", schema), ("b", schema)], schema)
    assert refused.value.field == "events"


def test_the_doc_shows_every_report_as_the_registry_builds_it() -> None:
    """docs/commerce-reports.md is regenerated from the registry (commerce_doc.py)."""
    from commerce_doc import DOC, render

    assert DOC.read_text() == render()
    for found in commerce.REPORTS:
        assert f"## `{found.name}`" in DOC.read_text()
