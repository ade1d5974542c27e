"""`GET /api/v1/reports[/{name}]`: the commerce reports over the caller's datasets."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from deltalake import write_deltalake
from fastapi import FastAPI

from koppla.core.layout import Layout
from koppla.core.settings import Settings
from koppla.platform.catalog.models import Datastream
from koppla.platform.query.commerce_sample import Expected, generate_history
from koppla.web import errors
from koppla.web.routes import reports
from koppla.web.services import Services

pytestmark = pytest.mark.anyio


@pytest.fixture
def expected(settings: Settings, demo: Datastream) -> Expected:
    """A generated week of the demo shop in `demo_events`."""
    storefront, backoffice, known = generate_history(200, 7, seed=5)
    path = str(Layout(settings.home).dataset(demo.event_dataset_id))
    write_deltalake(path, storefront, mode="append")
    write_deltalake(path, backoffice, mode="append")
    return known


@pytest.fixture
async def http(services: Services) -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()
    app.state.services = services
    app.include_router(reports.router)
    errors.install(app)
    token = services.catalog.add_token("ann")
    transport = httpx.ASGITransport(app=app)
    headers = {"authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(
        transport=transport, base_url="http://api.test", headers=headers
    ) as client:
        yield client


async def test_the_reports_are_listed_with_their_parameters(http: httpx.AsyncClient) -> None:
    response = await http.get("/api/v1/reports")
    assert response.status_code == 200
    listed = {r["name"]: r for r in response.json()["reports"]}
    assert "tracking_coverage" in listed and "funnel" in listed
    hours = next(p for p in listed["abandoned_carts"]["parameters"] if p["name"] == "hours")
    assert hours["default"] == 24 and hours["kind"] == "int"


async def test_a_report_runs_over_the_callers_demo_events(
    http: httpx.AsyncClient, expected: Expected
) -> None:
    response = await http.get(
        "/api/v1/reports/funnel", params={"until": expected.end.isoformat(), "days": "7"}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert [row[3] for row in body["rows"]] == list(expected.funnel)
    assert 'FROM "demo_events"' in body["sql"]


async def test_a_hostile_parameter_is_a_400_naming_it(http: httpx.AsyncClient) -> None:
    response = await http.get("/api/v1/reports/abandoned_carts", params={"hours": "1; DROP x"})
    assert response.status_code == 400
    assert response.json()["field"] == "hours"


async def test_another_organizations_dataset_is_unknown(
    http: httpx.AsyncClient, services: Services
) -> None:
    services.catalog.create_dataset(
        "other_events",
        schema_id="https://ns.koppla.dev/xdm/commerce-experienceevent",
        org_id="OTHERORG0000000000000000@AdobeOrg",
    )
    response = await http.get("/api/v1/reports/funnel", params={"events": "other_events"})
    assert response.status_code == 400
    assert "other_events" in response.json()["detail"]


async def test_an_unknown_report_is_a_404(http: httpx.AsyncClient) -> None:
    response = await http.get("/api/v1/reports/nope")
    assert response.status_code == 404
