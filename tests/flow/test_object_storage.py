"""A home whose datasets live on S3-compatible object storage (moto's server), end to end.

With `storage_url = "s3://..."` and its `storage_options` in `koppla.toml`, everything that
reads or writes a dataset's Delta table reaches the bucket: provisioning, the pipeline (events
and quarantine), batch ingestion, SQL, the profile stage, status, and exports (CLI and HTTP).
Nothing is written under the home's `datasets` directory.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from koppla.core import codec
from koppla.core.layout import Layout
from koppla.core.settings import Settings
from koppla.platform.catalog.demo import ensure_demo
from koppla.platform.catalog.models import Datastream
from koppla.platform.catalog.opening import open_catalog
from koppla.platform.catalog.store import Catalog
from koppla.platform.datasets.location import TableLocation, table_location
from koppla.platform.datasets.tables import provision
from koppla.platform.pipeline.runner import Pipeline
from koppla.platform.profiles.identity import Identity
from koppla.platform.profiles.runner import ProfileRunner
from koppla.web.app import create_app
from koppla.web.services import Services, build_services
from koppla.web.status import profiles_state
from koppla.xdm.registry import builtin_registry
from tests.cli.test_export import cli
from tests.platform.batches.test_ingest import finish, lines, make_batch, order
from tests.platform.datasets.object_store import ObjectStore, moto_missing, moto_server
from tests.platform.pipeline.test_runner import page, spool
from tests.require import require

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(300)]

ECID = "12345678901234567890123456789012345678"
"""The ECID `tests.platform.pipeline.test_runner.spool` sends with every request."""


@pytest.fixture(scope="module")
def object_store() -> Iterator[ObjectStore]:
    """moto's S3 server, started once for this module."""
    require(moto_missing())
    with moto_server() as store:
        yield store


@pytest.fixture
def settings(tmp_path: Path, object_store: ObjectStore) -> Settings:
    """A home whose `koppla.toml` puts the datasets under a fresh prefix of the bucket."""
    home = tmp_path / "home"
    home.mkdir()
    options = "\n".join(f'{key} = "{value}"' for key, value in object_store.options().items())
    url = object_store.uri(f"flow-{uuid.uuid4().hex}")
    (home / "koppla.toml").write_text(f'storage_url = "{url}"\n\n[storage_options]\n{options}\n')
    return Settings.load(home=home)


@pytest.fixture
def catalog(settings: Settings) -> Iterator[Catalog]:
    opened = open_catalog(settings)
    yield opened
    opened.close()


@pytest.fixture
def demo(settings: Settings, catalog: Catalog) -> Datastream:
    """The demo datastream, its datasets provisioned (empty) on the object store."""
    stream = ensure_demo(catalog)
    for dataset in catalog.datasets():
        provision(
            Layout(settings.home), builtin_registry(), dataset, location=table_location(settings)
        )
    return stream


@pytest.fixture
def services(settings: Settings, demo: Datastream) -> Iterator[Services]:
    built = build_services(settings)
    yield built
    built.close()


@pytest.fixture
def pipeline(settings: Settings, catalog: Catalog) -> Iterator[Pipeline]:
    """The pipeline over the home, with its tables where the settings put them."""
    runner = Pipeline(
        Layout(settings.home),
        catalog,
        builtin_registry(),
        flush_ms=10,
        location=table_location(settings),
        retention_hours=settings.vacuum_retention_hours,
    )
    yield runner
    runner.close()


@pytest.fixture
async def http(settings: Settings, demo: Datastream) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)
    async with app.api.router.lifespan_context(app.api):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as client:
            yield client


def _names(services: Services) -> list[str]:
    rows = services.query.run("SELECT web.webPageDetails.name FROM demo_events ORDER BY 1").rows
    return [str(row[0]) for row in rows]


def test_the_settings_name_the_bucket(settings: Settings, object_store: ObjectStore) -> None:
    location = table_location(settings)
    assert location.remote and location.root.startswith(f"s3://{object_store.bucket}/flow-")
    assert location.directory is None


def test_provisioned_datasets_are_queryable_empty_and_nothing_is_local(
    settings: Settings, services: Services
) -> None:
    info = {t.name: t.row_count for t in services.query.tables_info()}
    assert info["demo_events"] == 0 and info["quarantine"] == 0
    assert not Layout(settings.home).datasets.exists()


def test_events_stored_on_object_storage_are_read_by_sql_profiles_and_status(
    settings: Settings, services: Services, pipeline: Pipeline, demo: Datastream
) -> None:
    bad = {**page("late"), "timestamp": "not a time"}
    spool(settings, demo, [page("a"), page("b"), bad])
    pipeline.step()

    assert _names(services) == ["a", "b"]
    held = services.query.run("SELECT count(*) FROM quarantine").rows
    assert held == [(1,)]
    assert not Layout(settings.home).datasets.exists()

    assert profiles_state(services)["commitsWaiting"]["demo_events"] > 0
    runner = ProfileRunner(
        Layout(settings.home),
        services.catalog,
        builtin_registry(),
        services.profiles,
        location=table_location(settings),
    )
    assert runner.step().observations == 2
    assert profiles_state(services)["commitsWaiting"]["demo_events"] == 0
    profile = services.lookup.profile(Identity("ECID", ECID))
    assert profile is not None
    assert len(list(services.lookup.events(Identity("ECID", ECID)))) == 2

    spool(settings, demo, [page("c")])  # the stage follows the new commit, incrementally
    pipeline.step()
    assert runner.step().observations == 1
    assert runner.step().rows == 0  # nothing new: one look at the next commit file


def test_a_batch_is_ingested_into_the_table_on_object_storage(
    settings: Settings, services: Services, pipeline: Pipeline, catalog: Catalog, demo: Datastream
) -> None:
    batch = make_batch(settings, catalog, demo, {"orders.json": lines([order(1), order(2)])})
    assert finish(pipeline, catalog, batch.id).status == "success"
    rows = services.query.run("SELECT _id FROM demo_events ORDER BY 1").rows
    assert rows == [("order-1",), ("order-2",)]
    assert not Layout(settings.home).datasets.exists()


@pytest.fixture
def landed(settings: Settings, demo: Datastream, pipeline: Pipeline) -> None:
    """Two page views stored in `demo_events` on the object store."""
    spool(settings, demo, [page("a"), page("b")])
    pipeline.step()


async def test_exports_read_the_table_on_object_storage(
    settings: Settings,
    services: Services,
    demo: Datastream,
    landed: None,
    http: httpx.AsyncClient,
) -> None:
    result = CliRunner().invoke(cli(), ["export", "demo_events", "--home", str(settings.home)])
    assert result.exit_code == 0, result.output
    exported = [codec.loads(line) for line in result.stdout.splitlines()]
    assert sorted(_page_name(e) for e in exported) == ["a", "b"]

    token = services.catalog.add_token("reader", org_id=demo.org_id)
    url = f"/data/foundation/export/datasets/{demo.event_dataset_id}/preview"
    response = await http.get(url, headers={"authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    assert sorted(_page_name(e) for e in response.json()["data"]) == ["a", "b"]


def test_a_directory_url_keeps_the_tables_there_and_sql_reads_them_natively(
    tmp_path: Path,
) -> None:
    shared = tmp_path / "nfs" / "tables"
    settings = Settings.load(home=tmp_path / "home", storage_url=str(shared))
    assert table_location(settings) == TableLocation.local(shared)
    settings.home.mkdir()
    catalog = open_catalog(settings)
    stream = ensure_demo(catalog)
    layout = Layout(settings.home)
    provision(
        layout,
        builtin_registry(),
        catalog.dataset(stream.event_dataset_id),
        location=table_location(settings),
    )
    pipeline = Pipeline(layout, catalog, builtin_registry(), location=table_location(settings))
    services = build_services(settings)
    try:
        spool(settings, stream, [page("a")])
        pipeline.step()
        assert _names(services) == ["a"]
        plan = services.query.run("EXPLAIN SELECT * FROM demo_events").rows
        assert "READ_PARQUET" in str(plan).upper()  # DuckDB reads the shared directory itself
    finally:
        services.close()
        pipeline.close()
        catalog.close()
    assert (shared / stream.event_dataset_id / "_delta_log").is_dir()
    assert not layout.datasets.exists()


def _page_name(event: dict[str, Any]) -> str:
    xdm = event.get("xdm", event)
    return str(xdm["web"]["webPageDetails"]["name"])
