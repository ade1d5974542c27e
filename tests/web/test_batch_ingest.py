"""Batch ingestion through the HTTP API: create, upload, complete, then the pipeline ingests.

Every test goes through the whole app (token gate, body limits, routes) and a real pipeline
stepped by hand, and checks what a client sees: statuses, metrics, rows counted by SQL, and the
refused rows with their file, row number, path and reason.
"""

from __future__ import annotations

import io
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from koppla.core import codec
from koppla.core.layout import Layout
from koppla.core.settings import Settings
from koppla.platform.batches.files import Upload
from koppla.platform.catalog.models import Datastream
from koppla.platform.catalog.store import Catalog
from koppla.platform.datasets import storage
from koppla.platform.pipeline.runner import Pipeline
from koppla.web.app import create_app
from koppla.web.services import Services
from koppla.xdm.registry import builtin_registry
from tests.server import Koppla, free_port
from tests.web.asgi import call, running_app

pytestmark = pytest.mark.anyio

IMPORT = "/data/foundation/import/batches"
EXPORT = "/data/foundation/export/batches"


def order(n: int, **changes: Any) -> dict[str, Any]:
    """A back-office order-placed event, as the connector's history sync sends it."""
    event: dict[str, Any] = {
        "_id": f"order-{n}-placed",
        "eventType": "commerce.backofficeOrderPlaced",
        "timestamp": f"2025-03-0{1 + n % 9}T10:00:00.000Z",
        "commerce": {"order": {"purchaseID": f"{100000 + n}", "priceTotal": 10.5 + n}},
        "identityMap": {"Email": [{"id": f"shopper{n}@example.com", "primary": True}]},
    }
    event.update(changes)
    return event


def lines(*rows: dict[str, Any] | bytes) -> bytes:
    """A JSON-lines file: dicts are encoded, bytes are written as they are."""
    return b"".join((r if isinstance(r, bytes) else codec.dumps(r)) + b"\n" for r in rows)


def deep(levels: int) -> dict[str, Any]:
    node: dict[str, Any] = {}
    top = node
    for _ in range(levels):
        node["x"] = {}
        node = node["x"]
    return top


@pytest.fixture
def auth(services: Services) -> dict[str, str]:
    return {"authorization": f"Bearer {services.catalog.add_token('history-sync')}"}


async def create(
    client: httpx.AsyncClient, auth: dict[str, str], dataset: str, fmt: str = "json", **more: Any
) -> dict[str, Any]:
    body = {"datasetId": dataset, "inputFormat": {"format": fmt}, **more}
    response = await client.post(IMPORT, json=body, headers=auth)
    assert response.status_code == 201, response.text
    batch: dict[str, Any] = response.json()
    return batch


async def upload(
    client: httpx.AsyncClient, auth: dict[str, str], batch: dict[str, Any], name: str, data: bytes
) -> httpx.Response:
    dataset = batch["relatedObjects"][0]["id"]
    url = f"{IMPORT}/{batch['id']}/datasets/{dataset}/files/{name}"
    return await client.put(url, content=data, headers=auth)


async def complete(
    client: httpx.AsyncClient, auth: dict[str, str], batch_id: str, action: str = "COMPLETE"
) -> httpx.Response:
    return await client.post(f"{IMPORT}/{batch_id}", params={"action": action}, headers=auth)


async def ingest(
    client: httpx.AsyncClient, auth: dict[str, str], pipeline: Pipeline, batch_id: str
) -> dict[str, Any]:
    """Step the pipeline until the batch is final; the batch as the AEP catalog shows it."""
    for _ in range(50):
        pipeline.step()
        shown = await client.get(f"/data/foundation/catalog/batches/{batch_id}", headers=auth)
        batch: dict[str, Any] = shown.json()[batch_id]
        if batch["status"] in ("success", "failed"):
            return batch
    raise AssertionError("the batch never finished")


def count(services: Services, where: str = "") -> int:
    rows = services.query.run(f"SELECT count(*) FROM demo_events {where}").rows
    return int(rows[0][0])


def ndjson(response: httpx.Response) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.text
    return [codec.loads(line) for line in response.content.splitlines() if line]


async def test_a_json_lines_batch_lands_its_good_rows_and_keeps_the_bad_ones(
    client: httpx.AsyncClient,
    auth: dict[str, str],
    demo: Datastream,
    pipeline: Pipeline,
    services: Services,
) -> None:
    batch = await create(client, auth, demo.event_dataset_id)
    assert batch["status"] == "loading"
    assert batch["relatedObjects"] == [{"type": "dataSet", "id": demo.event_dataset_id}]
    assert batch["inputFormat"] == {"format": "json", "isMultiLineJson": False}
    assert isinstance(batch["created"], int) and isinstance(batch["updated"], int)
    no_id = order(7)
    del no_id["_id"]
    data = lines(
        order(1),
        order(2),
        b'{"eventType": "commerce.backofficeOrderPlaced", "timestamp": ',  # line 3: bad JSON
        order(4, timestamp=12),  # line 4: wrong type
        order(5, commerce={"order": {"priceTotal": 3.0}}),  # line 5: no purchaseID
        b"",  # line 6: blank, not a row
        order(6, _deep=deep(40)),  # line 7: too deep
        no_id,  # line 8: named from the batch, file and row
        order(3),
    )
    stored = await upload(client, auth, batch, "history/orders-0001.json", data)
    assert stored.status_code == 200, stored.text
    assert stored.json() == {"name": "history/orders-0001.json", "sizeInBytes": len(data)}

    done = await complete(client, auth, batch["id"])
    assert (done.status_code, done.json()["status"]) == (200, "processing")
    late = await upload(client, auth, batch, "late.json", lines(order(9)))
    assert late.status_code == 409 and "processing" in late.json()["detail"]
    again = await complete(client, auth, batch["id"])
    assert (again.status_code, again.json()["status"]) == (200, "processing")

    shown = await ingest(client, auth, pipeline, batch["id"])
    assert shown["status"] == "success"
    assert shown["metrics"] == {
        "recordsRead": 8,
        "recordsWritten": 4,
        "failedRecordCount": 4,
        "recordsSkipped": 0,
        "inputFileCount": 1,
        "inputByteSize": len(data),
    }
    assert {e["code"]: e["recordCount"] for e in shown["errors"]} == {
        "json": 1,
        "type": 1,
        "required": 1,
        "depth": 1,
    }
    assert shown["createdUser"] == "history-sync"
    assert count(services) == 4
    assert count(services, f"WHERE _koppla.batchId = '{batch['id']}'") == 4
    again = await complete(client, auth, batch["id"])
    assert (again.status_code, again.json()["status"]) == (200, "success")

    listing = (await client.get(f"{EXPORT}/{batch['id']}/failed", headers=auth)).json()
    (entry,) = listing["data"]
    assert (entry["name"], entry["records"]) == ("history/orders-0001.json", 4)
    failed = ndjson(await client.get(entry["_links"]["self"]["href"], headers=auth))
    by_row = {f["row"]: f for f in failed}
    assert set(by_row) == {3, 4, 5, 7}
    assert all(f["file"] == "history/orders-0001.json" for f in failed)
    assert by_row[3]["errors"][0]["code"] == "json"
    assert by_row[3]["record"].startswith('{"eventType"')
    assert [(e["path"], e["code"]) for e in by_row[4]["errors"]] == [("timestamp", "type")]
    assert ("commerce.order.purchaseID", "required") in {
        (e["path"], e["code"]) for e in by_row[5]["errors"]
    }
    assert "batch_max_depth" in by_row[7]["errors"][0]["message"]
    assert codec.loads(by_row[4]["record"])["_id"] == "order-4-placed"

    meta = (await client.get(f"{EXPORT}/{batch['id']}/meta?path=row_errors", headers=auth)).json()
    (errors_file,) = meta["data"]
    assert errors_file["name"] == "row_errors/history/orders-0001.json"
    rows = ndjson(await client.get(errors_file["_links"]["self"]["href"], headers=auth))
    assert [r["row"] for r in rows] == [3, 4, 5, 7]
    assert all("record" not in r for r in rows)
    inputs = await client.get(f"{EXPORT}/{batch['id']}/meta?path=input_files", headers=auth)
    (described,) = inputs.json()["data"]
    about = (await client.get(described["_links"]["self"]["href"], headers=auth)).json()
    assert (about["records"], about["failedRecords"], about["isValid"]) == (8, 4, True)
    files = (await client.get(f"{EXPORT}/{batch['id']}/files", headers=auth)).json()
    assert [(f["name"], f.get("size")) for f in files["data"]] == [
        ("history/orders-0001.json", len(data)),
        ("data.json", None),
        ("data.parquet", None),
    ]
    assert not (Layout(services.settings.home).batch(batch["id"]) / "input").exists()


async def test_a_row_without_an_id_is_named_by_batch_file_and_row(
    client: httpx.AsyncClient,
    auth: dict[str, str],
    demo: Datastream,
    pipeline: Pipeline,
    services: Services,
) -> None:
    no_id = order(1)
    del no_id["_id"]
    batch = await create(client, auth, demo.event_dataset_id)
    await upload(client, auth, batch, "a.json", lines(no_id, no_id))
    await complete(client, auth, batch["id"])
    shown = await ingest(client, auth, pipeline, batch["id"])
    assert shown["metrics"]["recordsWritten"] == 2  # two lines, two rows: not duplicates
    ids = services.query.run("SELECT _id FROM demo_events ORDER BY _id").rows
    assert len({row[0] for row in ids}) == 2


async def test_a_parquet_batch_is_read_row_by_row(
    client: httpx.AsyncClient,
    auth: dict[str, str],
    demo: Datastream,
    pipeline: Pipeline,
    services: Services,
) -> None:
    rows = [order(n) for n in range(6)]
    rows[2]["timestamp"] = "yesterday"  # row 3: not a date-time
    rows[4]["commerce"] = {"order": {"purchaseID": None, "priceTotal": 1.0}}  # row 5: no id
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows), buffer, row_group_size=2)
    batch = await create(client, auth, demo.event_dataset_id, "parquet")
    assert batch["inputFormat"] == {"format": "parquet"}
    assert (
        await upload(client, auth, batch, "orders.parquet", buffer.getvalue())
    ).status_code == 200
    await complete(client, auth, batch["id"])

    shown = await ingest(client, auth, pipeline, batch["id"])
    assert shown["status"] == "success"
    metrics = shown["metrics"]
    assert (metrics["recordsRead"], metrics["recordsWritten"], metrics["failedRecordCount"]) == (
        6,
        4,
        2,
    )
    assert count(services) == 4
    failed = ndjson(
        await client.get(f"{EXPORT}/{batch['id']}/failed?path=orders.parquet", headers=auth)
    )
    assert {(f["row"], f["errors"][0]["path"], f["errors"][0]["code"]) for f in failed} == {
        (3, "timestamp", "format"),
        (5, "commerce.order.purchaseID", "required"),
    }
    assert codec.loads(failed[0]["record"])["_id"] == "order-2-placed"


async def test_a_mostly_bad_batch_fails_whole_and_stores_nothing(
    client: httpx.AsyncClient,
    auth: dict[str, str],
    demo: Datastream,
    pipeline: Pipeline,
    services: Services,
) -> None:
    batch = await create(client, auth, demo.event_dataset_id)
    await upload(client, auth, batch, "a.json", lines(order(1), order(2, timestamp="soon")))
    await upload(client, auth, batch, "b.json", lines(b"[1, 2]", order(3, timestamp=False)))
    await complete(client, auth, batch["id"])

    shown = await ingest(client, auth, pipeline, batch["id"])
    assert shown["status"] == "failed"
    assert shown["metrics"]["failedRecordCount"] == 3
    assert shown["metrics"]["recordsWritten"] == 0
    assert shown["metrics"]["recordsRead"] == 4  # the good row was read, though not stored
    (verdict, *_) = shown["errors"]
    assert verdict["code"] == "tooManyFailedRows"
    assert "3 of 4 rows failed" in verdict["description"]
    assert count(services) == 0
    listing = (await client.get(f"{EXPORT}/{batch['id']}/failed", headers=auth)).json()
    assert {(e["name"], e["records"]) for e in listing["data"]} == {("a.json", 1), ("b.json", 2)}
    meta = f"{EXPORT}/{batch['id']}/meta"
    first = (await client.get(f"{meta}?path=row_errors&limit=1", headers=auth)).json()
    following = first["_links"]["next"]["href"]
    second = (await client.get(f"{meta}{following}", headers=auth)).json()
    assert [e["name"] for e in first["data"] + second["data"]] == [
        "row_errors/a.json",
        "row_errors/b.json",
    ]
    files = (await client.get(f"{EXPORT}/{batch['id']}/files", headers=auth)).json()
    assert [f["name"] for f in files["data"]] == ["a.json", "b.json"]
    native = await client.get(f"/api/v1/batches/{batch['id']}/failed", headers=auth)
    refused = native.json()["records"]
    assert [(r["file"], r["row"]) for r in refused] == [("a.json", 2), ("b.json", 1), ("b.json", 2)]
    assert refused[0]["record"]["timestamp"] == "soon"
    assert (Layout(services.settings.home).batch(batch["id"]) / "input" / "a.json").exists()


async def test_rows_already_in_the_dataset_are_skipped_not_stored_twice(
    client: httpx.AsyncClient,
    auth: dict[str, str],
    demo: Datastream,
    pipeline: Pipeline,
    services: Services,
) -> None:
    first = await create(client, auth, demo.event_dataset_id)
    await upload(client, auth, first, "a.json", lines(order(1), order(2), order(3)))
    await complete(client, auth, first["id"])
    await ingest(client, auth, pipeline, first["id"])

    second = await create(client, auth, demo.event_dataset_id)
    data = lines(order(1), order(2), order(3), order(4), order(4))
    await upload(client, auth, second, "a.json", data)
    await complete(client, auth, second["id"])
    shown = await ingest(client, auth, pipeline, second["id"])
    assert shown["status"] == "success"
    assert shown["metrics"]["recordsWritten"] == 1
    assert shown["metrics"]["recordsSkipped"] == 4
    assert count(services) == 4
    native = (await client.get("/api/v1/batches", headers=auth)).json()
    mine = {b["id"]: b for b in native}[second["id"]]
    assert (mine["status"], mine["records"], mine["duplicates"]) == ("success", 1, 4)
    assert mine["metrics"]["recordsSkipped"] == 4
    listed = await client.get(
        "/data/foundation/catalog/batches", params={"dataSet": demo.event_dataset_id}, headers=auth
    )
    assert {first["id"], second["id"]} <= set(listed.json())


async def test_requests_that_break_the_rules_are_refused_with_the_reason(
    client: httpx.AsyncClient, auth: dict[str, str], demo: Datastream, settings: Settings
) -> None:
    dataset = demo.event_dataset_id
    cases = [
        ({"datasetId": "nope", "inputFormat": {"format": "json"}}, "datasetId"),
        ({"inputFormat": {"format": "json"}}, "datasetId"),
        ({"datasetId": dataset, "inputFormat": {"format": "csv"}}, "inputFormat.format"),
        ({"datasetId": dataset}, "inputFormat"),
        (
            {"datasetId": dataset, "inputFormat": {"format": "json"}, "isMultiLineJson": 1},
            "isMulti",
        ),
    ]
    for body, field in cases:
        refused = await client.post(IMPORT, json=body, headers=auth)
        assert refused.status_code == 400, body
        assert field in refused.json()["detail"]
    assert (await client.post(IMPORT, json={"datasetId": dataset})).status_code == 401

    batch = await create(client, auth, dataset)
    other = await client.put(
        f"{IMPORT}/{batch['id']}/datasets/{'0' * 24}/files/a.json", content=b"{}", headers=auth
    )
    assert other.status_code == 400 and "datasetId" in other.json()["detail"]
    files = f"{IMPORT}/{batch['id']}/datasets/{dataset}/files"
    async with running_app(settings) as app:  # paths exactly as sent, not normalized by httpx
        for name in ("../escape.json", "a/../../b.json", ".hidden", "a//b.json", "-x", "a\\b"):
            bad = await call(app, "PUT", f"{files}/{name}", headers=auth.items(), chunks=[b"{}"])
            assert bad.status == 400 and "file name" in bad.json()["detail"], name
    assert not [p for p in settings.home.rglob("*escape*")]
    empty = await complete(client, auth, batch["id"])
    assert empty.status_code == 400 and "no files" in empty.json()["detail"]
    assert (await complete(client, auth, batch["id"], "REVERT")).status_code == 400
    assert (await complete(client, auth, "f" * 32)).status_code == 404
    anonymous = await client.put(
        f"{IMPORT}/{batch['id']}/datasets/{dataset}/files/a.json", content=b"{}"
    )
    assert anonymous.status_code == 401


async def test_an_upload_replaces_a_file_of_the_same_name_and_abort_drops_the_files(
    client: httpx.AsyncClient, auth: dict[str, str], demo: Datastream, services: Services
) -> None:
    batch = await create(client, auth, demo.event_dataset_id)
    await upload(client, auth, batch, "a.json", lines(order(1), order(2)))
    await upload(client, auth, batch, "a.json", lines(order(3)))
    files = (await client.get(f"{EXPORT}/{batch['id']}/files", headers=auth)).json()["data"]
    assert [(f["name"], f["size"]) for f in files] == [("a.json", len(lines(order(3))))]
    catalog = await client.get(f"/data/foundation/catalog/batches/{batch['id']}", headers=auth)
    assert catalog.json()[batch["id"]]["metrics"]["inputFileCount"] == 1

    aborted = await complete(client, auth, batch["id"], "ABORT")
    assert (aborted.status_code, aborted.json()["status"]) == (200, "aborted")
    assert not (Layout(services.settings.home).batch(batch["id"]) / "input").exists()
    assert (await complete(client, auth, batch["id"])).status_code == 409
    assert (await upload(client, auth, batch, "b.json", b"{}\n")).status_code == 409


async def test_an_upload_is_written_to_disk_off_the_event_loop(
    client: httpx.AsyncClient,
    auth: dict[str, str],
    demo: Datastream,
    services: Services,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    write = Upload.write
    writers: list[int] = []

    def recorded(self: Upload, chunk: bytes) -> None:
        writers.append(threading.get_ident())
        write(self, chunk)

    monkeypatch.setattr(Upload, "write", recorded)
    batch = await create(client, auth, demo.event_dataset_id)
    data = lines(*(order(n, pad="p" * 1000) for n in range(3000)))  # about 4 MiB
    stored = await upload(client, auth, batch, "a.json", data)
    assert stored.json() == {"name": "a.json", "sizeInBytes": len(data)}
    assert writers and threading.get_ident() not in writers  # this thread runs the event loop
    path = Layout(services.settings.home).batch(batch["id"]) / "input" / "a.json"
    assert path.read_bytes() == data


@pytest.fixture
async def small_client(tmp_path: Path, demo: Datastream) -> AsyncIterator[httpx.AsyncClient]:
    """A client of an app whose uploads are limited to 2 KiB and 2 files per batch."""
    settings = Settings.load(
        home=tmp_path / "home",
        batch_max_file_bytes=2048,
        batch_max_files=2,
        max_body_api_bytes=1024,
    )
    app = create_app(settings)
    async with app.api.router.lifespan_context(app.api):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as http:
            yield http


async def test_uploads_have_their_own_size_limit_and_a_file_count_limit(
    small_client: httpx.AsyncClient, auth: dict[str, str], demo: Datastream, services: Services
) -> None:
    batch = await create(small_client, auth, demo.event_dataset_id)
    fits = lines(*(order(n) for n in range(5)))
    assert 1024 < len(fits) <= 2048  # over the generic API limit, under the upload limit
    assert (await upload(small_client, auth, batch, "a.json", fits)).status_code == 200
    too_big = await upload(small_client, auth, batch, "big.json", fits * 2)
    assert too_big.status_code == 413 and "batch_max_file_bytes" in too_big.json()["detail"]
    assert (await upload(small_client, auth, batch, "b.json", fits)).status_code == 200
    third = await upload(small_client, auth, batch, "c.json", fits)
    assert third.status_code == 400 and "batch_max_files" in third.json()["detail"]
    replaced = await upload(small_client, auth, batch, "b.json", lines(order(1)))
    assert replaced.status_code == 200
    names = sorted(
        p.name for p in (Layout(services.settings.home).batch(batch["id"]) / "input").iterdir()
    )
    assert names == ["a.json", "b.json"]  # nothing left of the refused uploads


async def test_a_crash_between_the_delta_commit_and_the_status_replays_into_nothing_new(
    client: httpx.AsyncClient,
    auth: dict[str, str],
    demo: Datastream,
    settings: Settings,
    catalog: Catalog,
    services: Services,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    batch = await create(client, auth, demo.event_dataset_id)
    await upload(client, auth, batch, "a.json", lines(*(order(n) for n in range(10))))
    await complete(client, auth, batch["id"])
    append = storage.DeltaStore.append

    def commit_then_die(self: storage.DeltaStore, *args: Any, **kwargs: Any) -> None:
        append(self, *args, **kwargs)
        raise SystemExit("killed right after the Delta commit")

    monkeypatch.setattr(storage.DeltaStore, "append", commit_then_die)
    first = Pipeline(Layout(settings.home), catalog, builtin_registry())
    with pytest.raises(SystemExit):
        for _ in range(10):
            first.step()
    first.close()
    monkeypatch.setattr(storage.DeltaStore, "append", append)
    assert count(services) == 10  # committed, but the batch does not know it yet
    assert catalog.batch(batch["id"]).status == "processing"

    restarted = Catalog(Layout(settings.home).catalog)
    second = Pipeline(Layout(settings.home), restarted, builtin_registry())
    try:
        shown = await ingest(client, auth, second, batch["id"])
    finally:
        second.close()
        restarted.close()
    assert shown["status"] == "success"
    assert shown["metrics"]["recordsWritten"] == 10
    assert shown["metrics"]["recordsSkipped"] == 0
    assert count(services) == 10


async def test_a_crash_before_the_status_is_recorded_finishes_the_batch_once(
    client: httpx.AsyncClient,
    auth: dict[str, str],
    demo: Datastream,
    settings: Settings,
    catalog: Catalog,
    services: Services,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    batch = await create(client, auth, demo.event_dataset_id)
    await upload(client, auth, batch, "a.json", lines(*(order(n) for n in range(5))))
    await complete(client, auth, batch["id"])

    def die(*args: Any, **kwargs: Any) -> bool:
        raise SystemExit("killed before the status update")

    first = Pipeline(Layout(settings.home), catalog, builtin_registry())
    monkeypatch.setattr(catalog, "change_batch", die)
    with pytest.raises(SystemExit):
        for _ in range(10):
            first.step()
    first.close()
    assert count(services) == 5

    restarted = Catalog(Layout(settings.home).catalog)
    second = Pipeline(Layout(settings.home), restarted, builtin_registry())
    try:
        shown = await ingest(client, auth, second, batch["id"])
    finally:
        second.close()
        restarted.close()
    assert (shown["status"], shown["metrics"]["recordsWritten"]) == ("success", 5)
    assert count(services) == 5


def journal_state(home: Layout, batch_id: str) -> dict[str, Any]:
    """The progress a batch's journal records, as another process reads it ({} when none)."""
    path = home.batch(batch_id) / "work.sqlite"
    if not path.exists():
        return {}
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
        try:
            return {str(name): value for name, value in db.execute("SELECT * FROM state")}
        finally:
            db.close()
    except sqlite3.Error:  # being created or deleted right now
        return {}


def wait_for_progress(
    home: Layout, batch_id: str, reached: Callable[[dict[str, Any]], bool]
) -> None:
    """Return once the batch's journal shows `reached`, or the batch is no longer processing."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if reached(journal_state(home, batch_id)):
            return
        catalog = Catalog(home.catalog)
        try:
            if catalog.batch(batch_id).status != "processing":
                return
        finally:
            catalog.close()
        time.sleep(0.02)
    raise AssertionError("the batch made no progress")


@pytest.mark.slow
def test_sigkill_while_a_batch_is_ingested_loses_and_doubles_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KOPPLA_BATCH_ROWS_PER_STEP", "400")  # many slices and commits to hit
    monkeypatch.setenv("KOPPLA_BATCH_COMMIT_ROWS", "1600")
    koppla = Koppla(tmp_path / "home", free_port())
    koppla.start()
    try:
        token = {"authorization": f"Bearer {koppla.token()}"}
        home = Layout(koppla.home)
        catalog = Catalog(home.catalog)
        dataset = catalog.dataset("demo_events").id
        catalog.close()
        rows = 12_000
        with httpx.Client(base_url=koppla.url, headers=token) as http:
            body = {"datasetId": dataset, "inputFormat": {"format": "json"}}
            batch = http.post(IMPORT, json=body).json()
            data = lines(*(order(n) for n in range(rows)))
            url = f"{IMPORT}/{batch['id']}/datasets/{dataset}/files/a.json"
            assert http.put(url, content=data).status_code == 200
            done = http.post(f"{IMPORT}/{batch['id']}", params={"action": "COMPLETE"})
            assert done.status_code == 200
        moments: list[Callable[[dict[str, Any]], bool]] = [
            lambda state: state.get("phase") == "staging" and int(state.get("parts", 0)) >= 3,
            lambda state: int(state.get("handled", -1)) >= 0,  # a first commit recorded
            lambda state: int(state.get("handled", -1)) >= 15,  # half of it committed
        ]
        for reached in moments:  # kill as the work gets there (or once the batch is done)
            wait_for_progress(home, batch["id"], reached)
            koppla.kill()
            koppla.start()
        deadline = time.monotonic() + 120
        shown: dict[str, Any] = {}
        with httpx.Client(base_url=koppla.url, headers=token) as http:
            while time.monotonic() < deadline:
                found = http.get(f"/data/foundation/catalog/batches/{batch['id']}").json()
                shown = found[batch["id"]]
                if shown["status"] != "processing":
                    break
                time.sleep(0.2)
            assert shown["status"] == "success"
            assert shown["metrics"]["recordsWritten"] == rows
            query = {"sql": "SELECT count(*), count(DISTINCT _id) FROM demo_events"}
            counted = http.post("/api/v1/query", json=query).json()["rows"]
        assert counted == [[rows, rows]]
    finally:
        koppla.stop()
