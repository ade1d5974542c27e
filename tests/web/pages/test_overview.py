"""The overview: events per minute by type over the last hour, health, quarantine, batches."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from koppla.core import clock, codec, ids
from koppla.core.layout import Layout
from koppla.core.settings import Settings
from koppla.platform.catalog.models import Datastream
from koppla.platform.catalog.store import Catalog
from koppla.platform.datasets.tables import provision
from koppla.platform.pipeline.runner import Pipeline
from koppla.web.routes import overview as overview_api
from koppla.xdm.experience_event import commerce_experience_event
from koppla.xdm.registry import builtin_registry
from tests.web.pages.signin import PASSWORD, add_user, admin_app, sign_in

pytestmark = pytest.mark.anyio

OTHER_ORG = "OTHERORG0000000000000000@AdobeOrg"
PAGE_VIEW = "web.webpagedetails.pageViews"
CHECKOUT = "commerce.checkouts"


@pytest.fixture
async def http(settings: Settings, demo: Datastream) -> AsyncIterator[httpx.AsyncClient]:
    async with admin_app(settings, routers=[overview_api.router]) as client:
        yield client


def _event(event_type: str, minutes_ago: float) -> dict[str, object]:
    moment = clock.now() - timedelta(minutes=minutes_ago)
    xdm = {"_id": ids.new_uuid(), "eventType": event_type, "timestamp": clock.iso(moment)}
    return {"xdm": xdm}


async def _send(http: httpx.AsyncClient, stream: str, events: list[dict[str, object]]) -> None:
    body = codec.dumps({"events": events})
    answer = await http.post(f"/ee/v1/interact?configId={stream}", content=body)
    assert answer.status_code == 200, answer.text


def _minute_of(overview: dict[str, object], minutes_ago: float) -> int:
    """The index in the chart of the minute that held the moment `minutes_ago` before now."""
    epm = overview["eventsPerMinute"]
    assert isinstance(epm, dict)
    at = (clock.now_ms() - minutes_ago * 60_000) / 1000
    return max(i for i, start in enumerate(epm["minutes"]) if start <= at)


async def test_the_overview_counts_the_last_hours_events_by_type_and_minute(
    http: httpx.AsyncClient, demo: Datastream, pipeline: Pipeline
) -> None:
    events: list[dict[str, object]] = [
        _event(PAGE_VIEW, 30),
        _event(PAGE_VIEW, 30),
        _event(CHECKOUT, 30),
        _event(PAGE_VIEW, 10),
        _event(PAGE_VIEW, 90),  # older than an hour: not in the chart
        {"xdm": {"eventType": PAGE_VIEW}},  # no timestamp: quarantined
    ]
    await _send(http, demo.id, events)
    pipeline.step()
    await sign_in(http)

    answer = await http.get("/api/v1/overview")  # the session cookie is enough for a GET

    assert answer.status_code == 200, answer.text
    overview = answer.json()
    epm = overview["eventsPerMinute"]
    assert len(epm["minutes"]) == 60
    assert all(b - a == 60 for a, b in zip(epm["minutes"], epm["minutes"][1:], strict=False))
    assert epm["total"] == 4 and epm["error"] is None
    series = {s["eventType"]: s["counts"] for s in epm["series"]}
    assert [s["eventType"] for s in epm["series"]] == [PAGE_VIEW, CHECKOUT]  # busiest first
    half_hour, ten_minutes = _minute_of(overview, 30), _minute_of(overview, 10)
    assert series[PAGE_VIEW][half_hour] == 2 and series[PAGE_VIEW][ten_minutes] == 1
    assert sum(series[PAGE_VIEW]) == 3
    assert series[CHECKOUT][half_hour] == 1 and sum(series[CHECKOUT]) == 1
    assert overview["quarantinedRecords"] == 1
    assert overview["spoolBacklogBytes"] == 0
    assert overview["orgId"] == demo.org_id and overview["sandbox"] == "prod"
    assert overview["health"]["status"] == "ok"
    [batch] = overview["recentBatches"]
    assert (batch["dataset"], batch["status"]) == ("demo_events", "success")
    assert batch["metrics"]["recordsWritten"] == 5
    assert batch["metrics"]["failedRecordCount"] == 1

    page = await http.get("/admin/")
    assert page.status_code == 200
    assert "Events per minute by event type" in page.text
    assert f'<code>{PAGE_VIEW}</code></td><td class="num">3</td>' in page.text
    assert f'href="/admin/batches/{batch["id"]}"' in page.text
    assert '<script type="application/json" id="overview-data">' in page.text
    assert "/admin/static/vendor/uPlot-1.6.32.iife.min.js" in page.text


async def test_the_overview_shows_only_the_persons_organization(
    settings: Settings,
    http: httpx.AsyncClient,
    demo: Datastream,
    catalog: Catalog,
    pipeline: Pipeline,
) -> None:
    schema = commerce_experience_event().id
    theirs = catalog.create_dataset("their_events", schema_id=schema, org_id=OTHER_ORG)
    provision(Layout(settings.home), builtin_registry(), theirs)
    stream = catalog.create_datastream(org_id=OTHER_ORG, event_dataset=theirs.name)
    await _send(http, stream.id, [_event(CHECKOUT, 5), {"xdm": {"eventType": CHECKOUT}}])
    await _send(http, demo.id, [_event(PAGE_VIEW, 5)])
    pipeline.step()
    add_user(settings, "olle@other.example", PASSWORD, org_id=OTHER_ORG)

    await sign_in(http)
    ours = (await http.get("/api/v1/overview")).json()
    http.cookies.clear()
    await sign_in(http, "olle@other.example")
    other = (await http.get("/api/v1/overview")).json()

    assert [s["eventType"] for s in ours["eventsPerMinute"]["series"]] == [PAGE_VIEW]
    assert [b["dataset"] for b in ours["recentBatches"]] == ["demo_events"]
    assert ours["quarantinedRecords"] == 0 and ours["datasets"] == 2
    assert other["orgId"] == OTHER_ORG
    assert [s["eventType"] for s in other["eventsPerMinute"]["series"]] == [CHECKOUT]
    assert [b["dataset"] for b in other["recentBatches"]] == ["their_events"]
    assert other["quarantinedRecords"] == 1 and other["datasets"] == 1
    page = (await http.get("/admin/")).text
    assert "demo_events" not in page and "their_events" in page


async def test_an_empty_home_has_an_empty_chart(http: httpx.AsyncClient) -> None:
    await sign_in(http)

    overview = (await http.get("/api/v1/overview")).json()
    page = await http.get("/admin/")

    assert overview["eventsPerMinute"]["series"] == []
    assert overview["eventsPerMinute"]["total"] == 0
    assert overview["recentBatches"] == [] and overview["quarantinedRecords"] == 0
    assert "No events in the last hour." in page.text
    assert "No batches yet" in page.text


async def test_the_overview_api_needs_credentials(http: httpx.AsyncClient) -> None:
    assert (await http.get("/api/v1/overview")).status_code == 401


def _many_types(moment: str) -> list[dict[str, object]]:
    """25 event types in one minute: `type.00` once, `type.01` twice, … `type.24` 25 times."""
    return [
        {"xdm": {"_id": ids.new_uuid(), "eventType": f"type.{n:02d}", "timestamp": moment}}
        for n in range(25)
        for _ in range(n + 1)
    ]


@pytest.mark.parametrize("max_rows", [22, 10_000])
async def test_the_chart_keeps_the_busiest_types_and_counts_the_rest_as_other(
    tmp_path: Path, demo: Datastream, pipeline: Pipeline, max_rows: int
) -> None:
    """More event types than the chart shows: the 20 busiest have their own series, the other
    five are added up as `(other)`, and the total counts every event even when the engine's
    row cap (`query_max_rows`) is barely above what the chart needs."""
    settings = Settings.load(home=tmp_path / "home", query_max_rows=max_rows)
    moment = clock.iso(clock.now() - timedelta(minutes=5))
    async with admin_app(settings, routers=[overview_api.router]) as http:
        await _send(http, demo.id, _many_types(moment))
        pipeline.step()
        await sign_in(http)

        overview = (await http.get("/api/v1/overview")).json()
        page = await http.get("/admin/")

    epm = overview["eventsPerMinute"]
    names = [s["eventType"] for s in epm["series"]]
    assert names == [f"type.{n:02d}" for n in range(24, 4, -1)] + ["(other)"]
    other = epm["series"][-1]["counts"]
    assert sum(other) == 1 + 2 + 3 + 4 + 5
    assert sum(epm["series"][0]["counts"]) == 25
    assert epm["total"] == sum(range(1, 26)) == sum(sum(s["counts"]) for s in epm["series"])
    assert epm["otherEventTypes"] == 5 and epm["error"] is None
    assert "5 less frequent event types are counted together as <code>(other)</code>" in page.text


async def test_a_row_cap_below_the_charts_needs_is_said_and_the_total_stays_exact(
    tmp_path: Path, demo: Datastream, pipeline: Pipeline
) -> None:
    settings = Settings.load(home=tmp_path / "home", query_max_rows=5)
    moment = clock.iso(clock.now() - timedelta(minutes=5))
    async with admin_app(settings, routers=[overview_api.router]) as http:
        await _send(http, demo.id, _many_types(moment))
        pipeline.step()
        await sign_in(http)

        overview = (await http.get("/api/v1/overview")).json()
        page = await http.get("/admin/")

    epm = overview["eventsPerMinute"]
    assert epm["total"] == sum(range(1, 26))
    assert "query_max_rows" in epm["error"] and "the total is complete" in epm["error"]
    assert len(epm["series"]) == 5
    assert "query_max_rows" in page.text
