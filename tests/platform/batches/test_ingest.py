"""Processing completed batches: slices, verdicts, commits, and crashes at every seam."""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable

from koppla.core import clock, codec, ids
from koppla.core.layout import Layout
from koppla.core.settings import Settings
from koppla.platform.batches import ingest
from koppla.platform.batches.errors import ErrorLog
from koppla.platform.batches.files import BatchFiles
from koppla.platform.batches.ingest import SOURCE, BatchOptions
from koppla.platform.batches.journal import Journal
from koppla.platform.catalog.models import Batch, Datastream
from koppla.platform.catalog.store import Catalog
from koppla.platform.datasets import storage
from koppla.platform.pipeline.runner import Pipeline
from koppla.web.services import Services
from koppla.xdm.registry import builtin_registry
from tests.platform.pipeline.test_runner import page, spool


def order(n: int, **changes: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "_id": f"order-{n}",
        "eventType": "commerce.backofficeOrderPlaced",
        "timestamp": "2025-03-01T10:00:00.000Z",
        "commerce": {"order": {"purchaseID": str(n)}},
    }
    event.update(changes)
    return event


def lines(rows: list[dict[str, Any]]) -> bytes:
    return b"".join(codec.dumps(r) + b"\n" for r in rows)


def make_batch(
    settings: Settings,
    catalog: Catalog,
    stream: Datastream,
    files: dict[str, bytes],
    kind: str = "json",
    multiline: bool = False,
) -> Batch:
    """A batch its client completed: files uploaded, status `processing`."""
    now = clock.now_ms()
    batch = Batch(
        id=ids.new_hex_id(16),
        dataset_id=stream.event_dataset_id,
        status="processing",
        records=0,
        failed_records=0,
        created_ms=now,
        completed_ms=None,
        source=SOURCE,
        input_format=kind,
        multiline_json=multiline,
        file_count=len(files),
        started_ms=now,
    )
    catalog.record_batch(batch)
    uploads = BatchFiles(Layout(settings.home))
    for name, data in files.items():
        upload = uploads.upload(batch.id, name, 1 << 30)
        upload.write(data)
        upload.sync()
        upload.place()
    return batch


def pipeline_for(settings: Settings, catalog: Catalog, **options: Any) -> Pipeline:
    return Pipeline(
        Layout(settings.home), catalog, builtin_registry(), batch_options=BatchOptions(**options)
    )


def finish(pipeline: Pipeline, catalog: Catalog, batch_id: str, steps: int = 100) -> Batch:
    for _ in range(steps):
        pipeline.step()
        batch = catalog.batch(batch_id)
        if batch.status in ("success", "failed"):
            return batch
    raise AssertionError("the batch never finished")


def stored_ids(services: Services) -> list[str]:
    return [row[0] for row in services.query.run("SELECT _id FROM demo_events ORDER BY 1").rows]


def restart_until_done(settings: Settings, catalog: Catalog, batch_id: str, **options: Any) -> int:
    """Run a pipeline until the batch is final, restarting it (as its supervisor does) each
    time it stops with an error; how many times it stopped."""
    crashes = 0
    while True:
        pipeline = pipeline_for(settings, catalog, **options)
        try:
            finish(pipeline, catalog, batch_id)
            return crashes
        except RuntimeError:
            crashes += 1
            assert crashes <= 10, "the pipeline never got past the batch"
        finally:
            pipeline.close()


@pytest.fixture
def restarted(settings: Settings) -> Iterator[Catalog]:
    """A second catalog connection: what a restarted pipeline process opens."""
    catalog = Catalog(Layout(settings.home).catalog)
    yield catalog
    catalog.close()


def test_a_crash_in_the_middle_of_staging_resumes_without_doubling_rows_or_errors(
    settings: Settings,
    catalog: Catalog,
    restarted: Catalog,
    demo: Datastream,
    services: Services,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rows = [order(n) for n in range(10)]
    rows[1]["timestamp"] = "soon"
    rows[6]["commerce"] = {"order": {}}
    batch = make_batch(settings, catalog, demo, {"a.json": lines(rows)})
    record = Journal.record_slice
    calls = 0

    def die_on_the_third_slice(self: Journal, outcome: Any) -> None:
        nonlocal calls
        calls += 1
        if calls == 3:  # its part and its row errors are on disk; the progress is not
            raise SystemExit("killed before the slice was recorded")
        record(self, outcome)

    monkeypatch.setattr(Journal, "record_slice", die_on_the_third_slice)
    first = pipeline_for(settings, catalog, rows_per_step=3)
    with pytest.raises(SystemExit):
        finish(first, catalog, batch.id)
    first.close()
    monkeypatch.setattr(Journal, "record_slice", record)

    second = pipeline_for(settings, restarted, rows_per_step=3)
    done = finish(second, restarted, batch.id)
    second.close()
    assert (done.status, done.records, done.failed_records, done.duplicates) == (
        "success",
        8,
        2,
        0,
    )
    assert stored_ids(services) == sorted(f"order-{n}" for n in range(10) if n not in (1, 6))
    errors = ErrorLog(Layout(settings.home).batch(batch.id)).path(0).read_bytes().splitlines()
    assert [codec.loads(line)["row"] for line in errors] == [2, 7]


def test_a_batch_lands_in_groups_and_a_crash_after_a_commit_replays_exactly(
    settings: Settings,
    catalog: Catalog,
    restarted: Catalog,
    demo: Datastream,
    services: Services,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    batch = make_batch(settings, catalog, demo, {"a.json": lines([order(n) for n in range(10)])})
    append = storage.DeltaStore.append
    commits = 0

    def die_after_the_second_commit(self: storage.DeltaStore, *args: Any, **kw: Any) -> None:
        nonlocal commits
        append(self, *args, **kw)
        commits += 1
        if commits == 2:
            raise SystemExit("killed right after a commit")

    monkeypatch.setattr(storage.DeltaStore, "append", die_after_the_second_commit)
    first = pipeline_for(settings, catalog, rows_per_step=2, commit_rows=4)
    with pytest.raises(SystemExit):
        finish(first, catalog, batch.id)
    first.close()
    monkeypatch.setattr(storage.DeltaStore, "append", append)
    assert len(stored_ids(services)) == 8

    second = pipeline_for(settings, restarted, rows_per_step=2, commit_rows=4)
    done = finish(second, restarted, batch.id)
    second.close()
    assert (done.status, done.records) == ("success", 10)
    assert stored_ids(services) == sorted(f"order-{n}" for n in range(10))
    table = DeltaTable(str(Layout(settings.home).dataset(demo.event_dataset_id)))
    mine = [
        h for h in table.history() if h.get("koppla.batchId") == batch.id and h.get("operation")
    ]
    assert len(mine) == 3  # parts 0-1, 2-3 and 4: each committed once
    assert table.transaction_version(f"koppla-batch/{batch.id}") == 4


def test_a_row_the_dataset_got_while_the_batch_was_staged_is_not_stored_twice(
    settings: Settings,
    catalog: Catalog,
    demo: Datastream,
    services: Services,
) -> None:
    batch = make_batch(settings, catalog, demo, {"a.json": lines([order(n) for n in range(4)])})
    pipeline = pipeline_for(settings, catalog, rows_per_step=4)
    pipeline.step()  # stages all four rows; the commit waits for the next step
    assert catalog.batch(batch.id).status == "processing"
    spool(settings, demo, [{**page("streamed"), "_id": "order-2"}])
    done = finish(pipeline, catalog, batch.id)
    pipeline.close()
    assert (done.status, done.records, done.duplicates) == ("success", 3, 1)
    assert stored_ids(services) == ["order-0", "order-1", "order-2", "order-3"]


def test_an_unreadable_file_fails_the_batch_and_stores_nothing(
    settings: Settings, catalog: Catalog, demo: Datastream, services: Services
) -> None:
    good = pa.Table.from_pylist([order(n) for n in range(3)])
    path = settings.home / "good.parquet"
    settings.home.mkdir(parents=True, exist_ok=True)
    pq.write_table(good, path)
    files = {"a.parquet": path.read_bytes(), "b.parquet": b"PAR1 garbage PAR1"}
    batch = make_batch(settings, catalog, demo, files, kind="parquet")
    pipeline = pipeline_for(settings, catalog)
    done = finish(pipeline, catalog, batch.id)
    pipeline.close()
    assert done.status == "failed"
    assert done.errors[0].code == "unreadableFiles"
    assert "b.parquet" in done.errors[0].description
    assert "file" in {e.code for e in done.errors}
    assert stored_ids(services) == []
    assert BatchFiles(Layout(settings.home)).inputs(batch.id)  # kept for diagnostics


def test_a_multiline_json_batch_reads_one_document_per_file(
    settings: Settings, catalog: Catalog, demo: Datastream, services: Services
) -> None:
    files = {
        "many.json": codec.dumps([order(1), order(2)]),
        "one.json": codec.dumps(order(3)) + b"\n",
    }
    batch = make_batch(settings, catalog, demo, files, multiline=True)
    pipeline = pipeline_for(settings, catalog)
    done = finish(pipeline, catalog, batch.id)
    pipeline.close()
    assert (done.status, done.records) == ("success", 3)
    assert stored_ids(services) == ["order-1", "order-2", "order-3"]


def test_the_failed_share_is_a_setting(
    settings: Settings, catalog: Catalog, demo: Datastream, services: Services
) -> None:
    rows = [order(n) for n in range(10)]
    rows[3]["timestamp"] = 3
    batch = make_batch(settings, catalog, demo, {"a.json": lines(rows)})
    pipeline = pipeline_for(settings, catalog, max_failed_ratio=0.0)
    done = finish(pipeline, catalog, batch.id)
    pipeline.close()
    assert (done.status, done.failed_records, done.records) == ("failed", 1, 0)
    assert done.errors[0].code == "tooManyFailedRows"
    assert stored_ids(services) == []


def test_an_unforeseen_error_on_one_row_refuses_that_row_alone(
    settings: Settings,
    catalog: Catalog,
    demo: Datastream,
    services: Services,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = ingest.validate_event

    def fragile(schema: Any, xdm: Any) -> Any:  # stands in for a validator bug on one row
        if xdm.get("_id") == "order-1":
            raise RecursionError("unforeseen")
        return real(schema, xdm)

    monkeypatch.setattr(ingest, "validate_event", fragile)
    batch = make_batch(settings, catalog, demo, {"a.json": lines([order(n) for n in range(3)])})
    pipeline = pipeline_for(settings, catalog)
    done = finish(pipeline, catalog, batch.id)
    pipeline.close()
    assert (done.status, done.records, done.failed_records) == ("success", 2, 1)
    (line,) = ErrorLog(Layout(settings.home).batch(batch.id)).path(0).read_bytes().splitlines()
    error = codec.loads(line)
    assert (error["row"], error["errors"][0]["code"]) == (2, "internal")


def test_finished_batches_keep_their_diagnostics_until_they_expire(
    settings: Settings, catalog: Catalog, demo: Datastream
) -> None:
    bad = [order(1), order(2, timestamp="x"), order(3, timestamp="y")]
    failed = make_batch(settings, catalog, demo, {"a.json": lines(bad)})
    landed = make_batch(settings, catalog, demo, {"a.json": lines([order(4)])})
    days = 30
    pipeline = pipeline_for(settings, catalog, diagnostics_ms=days * 86_400_000)
    finish(pipeline, catalog, failed.id)
    finish(pipeline, catalog, landed.id)
    layout = Layout(settings.home)
    assert (layout.batch(failed.id) / "input" / "a.json").exists()
    assert not (layout.batch(landed.id) / "input").exists()
    assert not (layout.batch(landed.id) / "work.sqlite").exists()
    assert (layout.batch(landed.id) / "manifest.json").exists()

    batches = pipeline.batches  # the pipeline's own ingestor, as its hourly sweep runs it
    assert batches.sweep(clock.now_ms()) == 0
    assert layout.batch(failed.id).exists()
    assert batches.sweep(clock.now_ms() + days * 86_400_000) == 2
    assert not layout.batch(failed.id).exists() and not layout.batch(landed.id).exists()
    pipeline.close()


def test_a_batch_never_completed_is_aborted_once_its_time_is_up(
    settings: Settings, catalog: Catalog, demo: Datastream
) -> None:
    batch = make_batch(settings, catalog, demo, {"a.json": lines([order(1)])})
    catalog.record_batch(dataclasses.replace(batch, status="loading", updated_ms=batch.created_ms))
    pipeline = pipeline_for(settings, catalog, diagnostics_ms=60_000)
    batches = pipeline.batches
    assert batches.sweep(batch.created_ms + 59_000) == 0
    assert catalog.batch(batch.id).status == "loading"
    assert batches.sweep(batch.created_ms + 60_000) == 1
    pipeline.close()
    assert catalog.batch(batch.id).status == "aborted"
    assert BatchFiles(Layout(settings.home)).inputs(batch.id) == []


def test_an_older_catalog_file_gains_the_batch_columns(tmp_path: Path) -> None:
    path = tmp_path / "catalog.sqlite"
    old = sqlite3.connect(path)
    old.executescript(
        "CREATE TABLE batches (id TEXT PRIMARY KEY, dataset_id TEXT NOT NULL, status TEXT NOT "
        "NULL, records INTEGER NOT NULL, failed_records INTEGER NOT NULL, created_ms INTEGER "
        "NOT NULL, completed_ms INTEGER, source TEXT NOT NULL);"
        "INSERT INTO batches VALUES ('b1', 'd1', 'success', 5, 1, 1000, 2000, 'spool');"
    )
    old.commit()
    old.close()
    catalog = Catalog(path)
    try:
        batch = catalog.batch("b1")
        assert (batch.status, batch.records, batch.input_format, batch.errors) == (
            "success",
            5,
            "",
            (),
        )
        assert not batch.ingested
        assert catalog.batches(status="success") == [batch]
        assert catalog.batches(status="processing") == []
    finally:
        catalog.close()


def test_a_row_streamed_while_a_batch_commits_in_groups_is_dropped_from_a_later_group(
    settings: Settings, catalog: Catalog, demo: Datastream, services: Services
) -> None:
    files = {
        f"{name}.json": lines([order(2 * i), order(2 * i + 1)]) for i, name in enumerate("abcd")
    }
    batch = make_batch(settings, catalog, demo, files)
    pipeline = pipeline_for(settings, catalog, rows_per_step=8, commit_rows=2)
    pipeline.step()  # stages the four files as four parts; the commits wait for the next step
    assert catalog.batch(batch.id).status == "processing"
    spool(settings, demo, [{**page("streamed"), "_id": "order-7"}])  # in the last part
    done = finish(pipeline, catalog, batch.id)
    pipeline.close()
    assert (done.status, done.records, done.duplicates) == ("success", 7, 1)
    assert stored_ids(services) == [f"order-{n}" for n in range(8)]


def test_a_kill_between_a_batch_commit_and_the_dedupe_index_lets_streaming_double_nothing(
    settings: Settings,
    catalog: Catalog,
    restarted: Catalog,
    demo: Datastream,
    services: Services,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    batch = make_batch(settings, catalog, demo, {"a.json": lines([order(n) for n in range(4)])})
    append = storage.DeltaStore.append

    def commit_then_die(self: storage.DeltaStore, *args: Any, **kw: Any) -> None:
        append(self, *args, **kw)
        if str(kw["app_id"]).startswith("koppla-batch/"):
            raise SystemExit("killed between the Delta commit and the dedupe index")

    monkeypatch.setattr(storage.DeltaStore, "append", commit_then_die)
    first = pipeline_for(settings, catalog)
    with pytest.raises(SystemExit):
        finish(first, catalog, batch.id)
    first.close()
    monkeypatch.setattr(storage.DeltaStore, "append", append)
    spool(settings, demo, [{**page("streamed"), "_id": "order-2"}])  # the batch stored it

    second = pipeline_for(settings, restarted)
    done = finish(second, restarted, batch.id)
    second.close()
    assert (done.status, done.records) == ("success", 4)
    assert stored_ids(services) == [f"order-{n}" for n in range(4)]


def test_a_batch_that_stops_the_pipeline_on_every_restart_fails_alone(
    settings: Settings,
    catalog: Catalog,
    demo: Datastream,
    services: Services,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    batch = make_batch(settings, catalog, demo, {"a.json": lines([order(n) for n in range(3)])})

    def broken(*args: Any) -> Any:
        raise RuntimeError("the part cannot be read")

    monkeypatch.setattr(ingest.parts, "read", broken)
    crashes = restart_until_done(settings, catalog, batch.id)
    assert crashes == 1 + ingest.MAX_ATTEMPTS  # the first run staged it: that was progress
    done = catalog.batch(batch.id)
    pipeline = pipeline_for(settings, catalog)
    spool(settings, demo, [{**page("streamed"), "_id": "after"}])
    pipeline.step()
    pipeline.close()
    assert done.status == "failed"
    assert done.errors[0].code == "stuck"
    assert "RuntimeError: the part cannot be read" in done.errors[0].description
    assert stored_ids(services) == ["after"]  # streaming flows again; nothing of the batch


def test_a_partly_stored_batch_that_keeps_stopping_the_pipeline_is_set_aside(
    settings: Settings,
    catalog: Catalog,
    demo: Datastream,
    services: Services,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stuck = make_batch(settings, catalog, demo, {"a.json": lines([order(n) for n in range(4)])})
    read = ingest.parts.read

    def broken_after_the_first_group(directory: Path, numbers: Any) -> Any:
        if numbers[0] > 0:
            raise RuntimeError("the second part cannot be read")
        return read(directory, numbers)

    monkeypatch.setattr(ingest.parts, "read", broken_after_the_first_group)
    after = make_batch(settings, catalog, demo, {"b.json": lines([order(9)])})
    restart_until_done(settings, catalog, after.id, rows_per_step=2, commit_rows=2)
    done = catalog.batch(after.id)
    assert done.status == "success"
    aside = catalog.batch(stuck.id)
    assert aside.status == "processing"
    assert aside.errors[0].code == "stuck" and "set aside" in aside.errors[0].description
    assert stored_ids(services) == ["order-0", "order-1", "order-9"]


def test_two_spellings_of_one_uuid_id_in_a_batch_are_stored_once(
    settings: Settings, catalog: Catalog, demo: Datastream, services: Services
) -> None:
    uuid = "0b7c1d2e-3f40-4a5b-8c6d-7e8f9a0b1c2d"
    rows = [order(1, _id=uuid), order(2, _id=uuid.upper())]
    batch = make_batch(settings, catalog, demo, {"a.json": lines(rows)})
    pipeline = pipeline_for(settings, catalog)
    done = finish(pipeline, catalog, batch.id)
    pipeline.close()
    assert (done.status, done.records, done.duplicates) == ("success", 1, 1)
    assert stored_ids(services) == [uuid]


def test_parquet_timestamps_without_a_time_zone_land_as_utc(
    settings: Settings, catalog: Catalog, demo: Datastream, services: Services
) -> None:
    rows = [order(n) for n in range(2)]
    for row in rows:
        row["timestamp"] = datetime(2025, 3, 1, 10, 0)
    settings.home.mkdir(parents=True, exist_ok=True)
    path = settings.home / "naive.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    batch = make_batch(settings, catalog, demo, {"a.parquet": path.read_bytes()}, kind="parquet")
    pipeline = pipeline_for(settings, catalog)
    done = finish(pipeline, catalog, batch.id)
    pipeline.close()
    assert (done.status, done.records, done.failed_records) == ("success", 2, 0)
    stamps = services.query.run("SELECT CAST(timestamp AS VARCHAR) FROM demo_events").rows
    assert {row[0][:19] for row in stamps} == {"2025-03-01 10:00:00"}


def test_a_failed_batch_counts_the_rows_it_read_and_its_reader_keeps_nothing(
    settings: Settings, catalog: Catalog, demo: Datastream
) -> None:
    rows = [order(1), order(2, timestamp="x"), order(3, timestamp="y")]
    files = {"a.json": codec.dumps(rows), "b.json": codec.dumps([order(4)])}
    batch = make_batch(settings, catalog, demo, files, multiline=True)
    pipeline = pipeline_for(settings, catalog, rows_per_step=2, max_failed_ratio=0.1)
    done = finish(pipeline, catalog, batch.id)
    assert (done.status, done.records, done.failed_records, done.records_read) == (
        "failed",
        0,
        2,
        4,
    )
    assert pipeline.batches.reader.holding() == 0
    pipeline.close()
