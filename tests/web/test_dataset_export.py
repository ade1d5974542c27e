"""AEP Data Access to stored events: a batch's data files, and a dataset's preview."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pyarrow.parquet as pq
import pytest
from fastapi.routing import APIRoute
from starlette.requests import Request
from typer.testing import CliRunner

from koppla.core import codec
from koppla.core.settings import Settings
from koppla.platform.catalog.models import Batch, Datastream
from koppla.platform.pipeline.runner import Pipeline
from koppla.web.app import create_app
from koppla.web.routes import dataset_export
from koppla.web.services import Services
from tests.cli.test_export import cli
from tests.platform.datasets.sent_events import SENT, expected, land

pytestmark = pytest.mark.anyio

OTHER_ORG = "OTHER000000000000000000@AdobeOrg"
BASE = "/data/foundation/export"


@pytest.fixture
async def http(settings: Settings, demo: Datastream) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the whole app, with the export routes (added here until the app has them)."""
    app = create_app(settings)
    paths = {r.path for r in app.api.routes if isinstance(r, APIRoute)}
    if f"{BASE}/datasets/{{dataset_id}}/preview" not in paths:
        app.api.include_router(dataset_export.router)
    async with app.api.router.lifespan_context(app.api):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as client:
            yield client


@pytest.fixture
async def batch(
    http: httpx.AsyncClient, demo: Datastream, pipeline: Pipeline, services: Services
) -> Batch:
    """The batch `SENT` landed in, through the edge and the pipeline."""
    await land(http, demo, pipeline)
    [found] = services.catalog.batches(dataset_id=demo.event_dataset_id)
    return found


@pytest.fixture
def auth(services: Services) -> dict[str, str]:
    return {"authorization": f"Bearer {services.catalog.add_token('reader')}"}


@pytest.fixture
def other_org(services: Services) -> dict[str, str]:
    return {"authorization": f"Bearer {services.catalog.add_token('x', org_id=OTHER_ORG)}"}


def by_id(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(records, key=lambda r: r["_id"])


async def test_the_json_file_is_the_events_as_sent_and_what_the_cli_gives(
    http: httpx.AsyncClient, batch: Batch, auth: dict[str, str], settings: Settings
) -> None:
    response = await http.get(f"{BASE}/files/{batch.id}/data.json", headers=auth)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/x-ndjson")
    lines = response.content.splitlines()
    assert by_id([codec.loads(line) for line in lines]) == by_id(expected())
    command = ["export", "demo_events", "--batch", batch.id, "--home", str(settings.home)]
    assert CliRunner().invoke(cli(), command).stdout_bytes == response.content


async def test_the_parquet_file_holds_the_rows_as_stored(
    http: httpx.AsyncClient, batch: Batch, auth: dict[str, str]
) -> None:
    response = await http.get(f"{BASE}/files/{batch.id}/data.parquet", headers=auth)
    assert response.status_code == 200, response.text
    table = pq.read_table(io.BytesIO(response.content))
    assert table.num_rows == len(SENT)
    assert sorted(table.column("_id").to_pylist()) == sorted(e["_id"] for e in SENT)
    assert "_batch_id" not in table.schema.names


async def test_the_batch_as_a_directory_lists_and_serves_its_files(
    http: httpx.AsyncClient, batch: Batch, auth: dict[str, str]
) -> None:
    listing = (await http.get(f"{BASE}/files/{batch.id}", headers=auth)).json()
    names = [entry["name"] for entry in listing["data"]]
    assert names == ["data.json", "data.parquet"]
    href = listing["data"][0]["_links"]["self"]["href"]
    assert href == f"http://api.test{BASE}/files/{batch.id}/data.json"
    direct = await http.get(f"{BASE}/files/{batch.id}/data.json", headers=auth)
    by_path = await http.get(f"{BASE}/files/{batch.id}", params={"path": "data.json"}, headers=auth)
    assert by_path.status_code == 200 and by_path.content == direct.content


async def test_another_organizations_batch_is_not_found(
    http: httpx.AsyncClient, batch: Batch, other_org: dict[str, str]
) -> None:
    for url in (f"{BASE}/files/{batch.id}/data.json", f"{BASE}/files/{batch.id}"):
        response = await http.get(url, headers=other_org)
        assert response.status_code == 404
        assert "_id" not in response.text


@pytest.mark.parametrize(
    "file_id", ["{batch}/data.csv", "{batch}/data.json/more", "0123456789abcdef/data.json"]
)
async def test_an_unknown_file_is_not_found(
    http: httpx.AsyncClient, batch: Batch, auth: dict[str, str], file_id: str
) -> None:
    url = f"{BASE}/files/{file_id.format(batch=batch.id)}"
    response = await http.get(url, headers=auth)
    assert response.status_code == 404


async def test_files_need_a_token(http: httpx.AsyncClient, batch: Batch) -> None:
    response = await http.get(f"{BASE}/files/{batch.id}/data.json")
    assert response.status_code == 401


async def test_the_preview_shows_the_first_rows_as_sent(
    http: httpx.AsyncClient, batch: Batch, auth: dict[str, str], demo: Datastream
) -> None:
    url = f"{BASE}/datasets/{demo.event_dataset_id}/preview"
    response = await http.get(url, headers=auth)
    assert response.status_code == 200, response.text
    assert by_id(response.json()["data"]) == by_id(expected())
    two = await http.get(url, params={"limit": 2}, headers=auth)
    assert len(two.json()["data"]) == 2
    assert (await http.get(url, params={"limit": 0}, headers=auth)).status_code == 422


async def test_another_organizations_dataset_has_no_preview(
    http: httpx.AsyncClient, batch: Batch, other_org: dict[str, str], demo: Datastream
) -> None:
    url = f"{BASE}/datasets/{demo.event_dataset_id}/preview"
    assert (await http.get(url, headers=other_org)).status_code == 404


def test_data_files_lists_nothing_before_rows_land() -> None:
    waiting = Batch("b", "d", "processing", 0, 0, 0, None, "batch")
    assert dataset_export.data_files(_request(), waiting) == []
    landed = Batch("b", "d", "success", 3, 0, 0, 1, "batch")
    entries = dataset_export.data_files(_request(), landed)
    assert [e["dataSetFileId"] for e in entries] == ["b/data.json", "b/data.parquet"]


def _request() -> Request:
    scope = {
        "type": "http",
        "scheme": "http",
        "server": ("api.test", 80),
        "path": "/",
        "root_path": "",
        "headers": [],
        "query_string": b"",
    }
    return Request(scope)
