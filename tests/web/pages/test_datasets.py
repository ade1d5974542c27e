"""The datasets, batch and quarantine pages: what an admin sees of their organization's data."""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from koppla.core import codec
from koppla.core.layout import Layout
from koppla.core.settings import Settings
from koppla.platform.catalog.models import Datastream
from koppla.platform.catalog.store import Catalog
from koppla.platform.datasets.tables import provision
from koppla.platform.pipeline.runner import Pipeline
from koppla.web.pages.datasets import QuarantineFilter, quarantine_sql
from koppla.web.services import Services
from koppla.xdm.experience_event import commerce_experience_event
from koppla.xdm.registry import builtin_registry
from tests.web.pages.signin import admin_app, sign_in
from tests.web.test_batch_ingest import complete, create, ingest, lines, order, upload

pytestmark = pytest.mark.anyio

OTHER_ORG = "OTHERORG0000000000000000@AdobeOrg"
GOOD = {"eventType": "web.webpagedetails.pageViews", "timestamp": "2026-12-01T10:00:00Z"}
NO_TIMESTAMP = {
    "eventType": "web.webpagedetails.pageViews",
    "web": {"webPageDetails": {"name": "it's"}},
}
NO_ORDER_ID = {"eventType": "commerce.purchases", "timestamp": "2026-12-01T10:01:00Z"}


@pytest.fixture
async def http(settings: Settings, demo: Datastream) -> AsyncIterator[httpx.AsyncClient]:
    async with admin_app(settings) as client:
        await sign_in(client)
        yield client


@pytest.fixture
def auth(services: Services) -> dict[str, str]:
    return {"authorization": f"Bearer {services.catalog.add_token('pages')}"}


async def _send(http: httpx.AsyncClient, stream: str, *xdms: dict[str, Any]) -> None:
    body = codec.dumps({"events": [{"xdm": x} for x in xdms]})
    answer = await http.post(f"/ee/v1/interact?configId={stream}", content=body)
    assert answer.status_code == 200, answer.text


def _other_org(settings: Settings, catalog: Catalog) -> Datastream:
    schema = commerce_experience_event().id
    theirs = catalog.create_dataset("their_events", schema_id=schema, org_id=OTHER_ORG)
    provision(Layout(settings.home), builtin_registry(), theirs)
    return catalog.create_datastream(org_id=OTHER_ORG, event_dataset=theirs.name)


def _text(page: httpx.Response) -> str:
    """The page's text without tags, whitespace folded (what a reader sees)."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page.text)).split())


async def test_the_datasets_page_lists_the_organizations_datasets_and_datastreams(
    settings: Settings,
    http: httpx.AsyncClient,
    demo: Datastream,
    catalog: Catalog,
    pipeline: Pipeline,
) -> None:
    theirs = _other_org(settings, catalog)
    await _send(http, demo.id, GOOD, NO_TIMESTAMP)
    await _send(http, theirs.id, GOOD)
    pipeline.step()

    page = await http.get("/admin/datasets")

    assert page.status_code == 200
    text = _text(page)
    events = catalog.dataset("demo_events")
    assert (
        f"demo_events Storefront and back-office events of the demo datastream {events.id} "
        "Koppla Commerce ExperienceEvent 1 success (partial)"
    ) in text
    assert re.search(r"\(partial\) [0-9-]+ [0-9:]+ UTC enabled demo_profiles", text)
    assert "Koppla Commerce Profile 0 none yet enabled" in text  # provisioned, empty
    assert "their_events" not in text and theirs.id not in text
    assert demo.id in text and f'href="/admin/datasets/{events.id}"' in page.text
    assert f"/admin/quarantine?datastream={demo.id}" in page.text


async def test_a_dataset_shows_its_schema_rows_and_batches(
    http: httpx.AsyncClient, demo: Datastream, catalog: Catalog, pipeline: Pipeline
) -> None:
    await _send(http, demo.id, GOOD, NO_TIMESTAMP)
    pipeline.step()
    events = catalog.dataset("demo_events")
    [batch] = catalog.batches(dataset_id=events.id)

    by_id = await http.get(f"/admin/datasets/{events.id}")
    by_name = await http.get("/admin/datasets/demo_events")

    assert by_id.status_code == by_name.status_code == 200
    text = _text(by_id)
    assert "Rows 1" in text
    assert "timestamp required date-time 1 eventType string 1" in text
    assert "productListItems array of object 26" in text
    assert re.search(r"commerce Commerce actions .* object \d+", text)
    assert f"{batch.id} success (partial) {batch.source} 1 1 0" in text
    assert f'href="/admin/batches/{batch.id}"' in by_id.text
    assert "/admin/query?sql=SELECT%20%2A%20FROM%20demo_events" in by_id.text


async def test_a_dataset_of_another_organization_is_not_found(
    settings: Settings, http: httpx.AsyncClient, catalog: Catalog
) -> None:
    theirs = _other_org(settings, catalog)

    for path in (f"/admin/datasets/{theirs.event_dataset_id}", "/admin/datasets/nope"):
        page = await http.get(path)
        assert page.status_code == 404
        assert "in your organization" in page.text
        assert "<h1>Not found</h1>" in page.text


async def test_a_streaming_batch_shows_the_records_it_refused(
    http: httpx.AsyncClient, demo: Datastream, catalog: Catalog, pipeline: Pipeline
) -> None:
    await _send(http, demo.id, GOOD, NO_TIMESTAMP, NO_ORDER_ID)
    pipeline.step()
    [batch] = catalog.batches(dataset_id=catalog.dataset("demo_events").id)

    page = await http.get(f"/admin/batches/{batch.id}")

    assert page.status_code == 200
    text = _text(page)
    assert "Status success (partial)" in text
    assert "Rows written 1 Rows refused 2" in text
    assert "Row errors" in text
    assert "timestamp required field is missing (required)" in text
    assert "commerce.order.purchaseID commerce.purchases events need" in text
    assert "&#34;name&#34;: &#34;it&#39;s&#34;" in page.text  # the record as sent, escaped


async def test_a_failed_ingestion_batch_shows_its_row_errors(
    http: httpx.AsyncClient,
    auth: dict[str, str],
    demo: Datastream,
    pipeline: Pipeline,
) -> None:
    batch = await create(http, auth, demo.event_dataset_id)
    await upload(http, auth, batch, "orders.json", lines(order(1), order(2, timestamp="soon")))
    await upload(http, auth, batch, "more.json", lines(b"[1, 2]"))
    await complete(http, auth, batch["id"])
    assert (await ingest(http, auth, pipeline, batch["id"]))["status"] == "failed"

    page = await http.get(f"/admin/batches/{batch['id']}")

    assert page.status_code == 200
    text = _text(page)
    assert "Status failed" in text
    assert "Rows read 3 Rows written 0 Rows refused 2" in text
    assert "tooManyFailedRows 2 of 3 rows failed" in text
    assert "orders.json, row 2 timestamp" in text
    assert "more.json, row 1" in text
    assert "&#34;timestamp&#34;: &#34;soon&#34;" in page.text


async def test_a_batch_of_another_organization_is_not_found(
    settings: Settings,
    http: httpx.AsyncClient,
    catalog: Catalog,
    pipeline: Pipeline,
) -> None:
    theirs = _other_org(settings, catalog)
    await _send(http, theirs.id, GOOD)
    pipeline.step()
    [batch] = catalog.batches(dataset_id=theirs.event_dataset_id)

    page = await http.get(f"/admin/batches/{batch.id}")

    assert page.status_code == 404
    assert batch.id in page.text and "Status" not in page.text


async def test_the_quarantine_shows_each_record_with_its_problems_and_filters(
    settings: Settings,
    http: httpx.AsyncClient,
    demo: Datastream,
    catalog: Catalog,
    pipeline: Pipeline,
) -> None:
    theirs = _other_org(settings, catalog)
    await _send(http, demo.id, GOOD, NO_TIMESTAMP, NO_ORDER_ID)
    await _send(http, theirs.id, NO_TIMESTAMP)
    pipeline.step()

    everything = _text(await http.get("/admin/quarantine"))
    by_problem = _text(await http.get("/admin/quarantine", params={"problem": "PURCHASEID"}))
    quoted = await http.get("/admin/quarantine", params={"problem": "it's'; --"})
    by_stream = _text(await http.get("/admin/quarantine", params={"datastream": demo.id}))
    other_stream = await http.get("/admin/quarantine", params={"datastream": theirs.id})
    future = await http.get("/admin/quarantine", params={"since": "2999-01-01T00:00"})
    past = _text(await http.get("/admin/quarantine", params={"until": "2000-01-01T00:00"}))
    bad_time = await http.get("/admin/quarantine", params={"since": "yesterday"})

    assert "2 records, newest first" in everything  # theirs is not shown
    assert "timestamp required field is missing" in everything
    assert "commerce.order.purchaseID commerce.purchases events need" in everything
    assert "1 record, newest first" in by_problem and "field is missing" not in by_problem
    assert quoted.status_code == 200 and "No quarantined records match the filter" in quoted.text
    assert "2 records" in by_stream
    assert "no datastream" in _text(other_stream) and "in your organization" in other_stream.text
    assert "No quarantined records match the filter" in _text(future)
    assert "No quarantined records match the filter" in past
    assert "is not a date and time" in _text(bad_time)


def test_the_quarantine_filter_puts_only_known_ids_and_quoted_text_in_sql() -> None:
    chosen = QuarantineFilter(
        dataset="d1",
        datastream="x' OR 1=1 --",
        problem="It's",
        since="2026-12-01T10:00",
        until="2026-12-02T10:00+02:00",
    )

    where, problems = chosen.conditions({"d1"}, {"s1"})

    assert where == [
        "dataset_id = 'd1'",
        "contains(lower(CAST(errors AS VARCHAR)), 'it''s')",
        "received_at >= TIMESTAMPTZ '2026-12-01T10:00:00.000Z'",
        "received_at < TIMESTAMPTZ '2026-12-02T08:00:00.000Z'",
    ]
    assert problems == ['no datastream "x\' OR 1=1 --" in your organization']
    assert quarantine_sql(where[:1]).endswith(
        "FROM quarantine WHERE dataset_id = 'd1' ORDER BY received_at DESC"
    )


async def test_the_pages_need_a_session(settings: Settings, demo: Datastream) -> None:
    async with admin_app(settings) as anonymous:
        for path in ("/admin/datasets", "/admin/datasets/demo_events", "/admin/quarantine"):
            answer = await anonymous.get(path)
            assert answer.status_code == 303, path
            assert answer.headers["location"].startswith("/admin/login?next=")


@pytest.mark.parametrize(
    ("name", "value"),
    [("since", "0001-01-01T00:00+14:00"), ("until", "9999-12-31T23:59-14:00")],
)
async def test_a_moment_past_the_calendars_ends_reads_as_a_bad_date(
    http: httpx.AsyncClient, name: str, value: str
) -> None:
    """Valid ISO 8601 whose UTC moment falls in year 0 or 10000 gets the page's usual message."""
    answer = await http.get("/admin/quarantine", params={name: value})

    assert answer.status_code == 200
    assert f"{name}: {value!r} is not a date and time" in _text(answer)
