"""Consumers against a platform with failure knobs (an in-process fake of the batch API) and the
real embedded queue: retries reuse the batch, give up after the attempts, never lose a chunk."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from koppla.connector.demo_store import create_demo_schema
from koppla.connector.history.batch_client import PlatformBatches
from koppla.connector.history.chunk import ChunkWorker, split_lines
from koppla.connector.history.consumer import consume
from koppla.connector.history.message import ChunkMessage
from koppla.connector.history.sync import HistorySync, open_history_queue
from koppla.connector.history_demo import generate_history
from koppla.connector.remote_settings import write_cache
from koppla.connector.settings import ConnectorSettings, load_settings
from koppla.connector.source import StoreSource, connect
from koppla.core import clock, codec

pytestmark = pytest.mark.anyio
ORG = "ABCDEFGHIJKLMNOPQRSTUVWX@AdobeOrg"


class FakePlatform:
    """The batch ingestion API in memory; `fail` maps a call kind to the statuses to answer
    before it works (`{"upload": [503]}`)."""

    def __init__(self, fail: dict[str, list[int]] | None = None) -> None:
        self.fail = {k: list(v) for k, v in (fail or {}).items()}
        self.batches: dict[str, dict[str, Any]] = {}
        self.calls: Counter[str] = Counter()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path, method = request.url.path, request.method
        kind = (
            "dataset"
            if "/dataSets/" in path
            else "outcome"
            if "/catalog/batches/" in path
            else "create"
            if method == "POST" and path.endswith("/import/batches")
            else "upload"
            if method == "PUT"
            else "complete"
        )
        self.calls[kind] += 1
        if self.fail.get(kind):
            return httpx.Response(self.fail[kind].pop(0), json={"detail": f"{kind} refused"})
        if kind == "dataset":
            return httpx.Response(200, json={})
        if kind == "create":
            batch_id = f"b{len(self.batches) + 1}"
            self.batches[batch_id] = {"status": "loading", "rows": 0}
            return httpx.Response(201, json={"id": batch_id})
        batch_id = path.split("/batches/")[1].split("/")[0]
        if batch_id not in self.batches:
            return httpx.Response(404, json={"detail": "no such batch"})
        batch = self.batches[batch_id]
        if kind == "upload":
            batch["rows"] = request.content.count(b"\n")
            return httpx.Response(200)
        if kind == "complete":
            aborting = request.url.params.get("action") == "ABORT"
            batch["status"] = "aborted" if aborting else "success"
            return httpx.Response(200, json={})
        metrics = {"recordsWritten": batch["rows"], "failedRecordCount": 0}
        return httpx.Response(200, json={batch_id: {"status": batch["status"], "metrics": metrics}})


def shop_settings(tmp_path: Path, **extra: Any) -> ConnectorSettings:
    dsn = f"sqlite:///{tmp_path / 'shop.sqlite'}"
    engine = connect(dsn)
    create_demo_schema(engine)
    generate_history(engine, 120, years=1, seed=2)
    engine.dispose()
    site = {"website_code": "base", "org_id": ORG, "datastream_id": "ds", "dataset_id": "events"}
    return load_settings(
        tmp_path / "home",
        token="t",
        source_dsn=dsn,
        websites=[site],
        history_chunk_orders=50,
        **extra,
    )


async def run_sync(
    settings: ConnectorSettings,
    fake: FakePlatform,
    worker_settings: ConnectorSettings | None = None,
) -> HistorySync:
    platform = PlatformBatches(
        settings, httpx.Client(transport=httpx.MockTransport(fake)), patience_s=0
    )
    sync = HistorySync(settings, platform)
    today = clock.now().date()
    request = sync.start(today - timedelta(days=400), today)
    queue = await open_history_queue(settings)
    engine = connect(settings.dsn)
    try:
        await sync.produce(request, queue)
        worker = ChunkWorker(
            worker_settings or settings, sync.ledger, StoreSource(engine), platform
        )

        def finished() -> bool:
            return sync.progress(request.id).request.status in ("done", "failed")

        await consume(
            queue,
            worker,
            sync.ledger,
            stopped=finished,
            max_attempts=settings.history_max_attempts,
            wait_s=0.2,
        )
    finally:
        engine.dispose()
        await queue.close()
    return sync


async def test_a_retried_chunk_reuses_its_batch(tmp_path: Path) -> None:
    fake = FakePlatform({"upload": [503], "complete": [502]})
    settings = shop_settings(tmp_path)
    sync = await run_sync(settings, fake)
    shown = sync.progress().as_json()
    sync.close()
    assert shown["status"] == "done"
    assert shown["orders"]["done"] == shown["orders"]["found"] == 120
    assert len(fake.batches) == shown["chunks"]["total"] == 3  # no batch made twice
    assert sum(b["rows"] for b in fake.batches.values()) == shown["events"]


async def test_a_chunk_the_platform_keeps_failing_is_dead_lettered(tmp_path: Path) -> None:
    fake = FakePlatform({"create": [503] * 6})
    settings = shop_settings(tmp_path, history_max_attempts=2)
    sync = await run_sync(settings, fake)
    shown = sync.progress().as_json()
    errors = sync.ledger.chunk_errors(shown["id"])
    queue = await open_history_queue(settings)
    dead = await queue.dead_letters()
    await queue.close()
    sync.close()
    assert shown["status"] == "failed"
    assert shown["orders"]["failed"] == 120 and shown["orders"]["done"] == 0
    assert fake.calls["create"] == 6  # each chunk tried twice, then given up
    assert [no for no, _ in errors] == [1, 2, 3] and "503" in errors[0][1]
    assert len(dead) == 3 and all("503" in d.reason for d in dead)
    assert {codec.loads(d.body)["chunk"] for d in dead} == {1, 2, 3}


async def test_a_refusal_fails_the_chunk_at_once(tmp_path: Path) -> None:
    fake = FakePlatform({"create": [400]})
    settings = shop_settings(tmp_path)
    sync = await run_sync(settings, fake)
    shown = sync.progress().as_json()
    sync.close()
    assert shown["status"] == "failed"
    assert fake.calls["create"] == 3  # the refused chunk was not tried again
    assert shown["batches"]["created"] == 2


def test_big_chunks_are_uploaded_as_several_files() -> None:
    events = [{"_id": str(n), "pad": "x" * 100} for n in range(50)]
    files = split_lines(events, limit=1000)
    assert len(files) > 5 and all(len(f) <= 1000 for f in files)
    assert [codec.loads(line)["_id"] for f in files for line in f.splitlines()] == [
        str(n) for n in range(50)
    ]


async def test_a_batch_the_platform_aborted_is_replaced_and_a_lost_one_fails(
    tmp_path: Path,
) -> None:
    fake = FakePlatform()
    settings = shop_settings(tmp_path)
    platform = PlatformBatches(
        settings, httpx.Client(transport=httpx.MockTransport(fake)), patience_s=0
    )
    sync = HistorySync(settings, platform)
    today = clock.now().date()
    request = sync.start(today - timedelta(days=400), today)
    sync.ledger.add_chunks(request.id, [(1, 10**9, 120)])
    sync.ledger.mark_produced(request.id)
    fake.batches["gone"] = {"status": "aborted", "rows": 0}
    sync.ledger.add_batch(request.id, 1, "events", "gone")  # an attempt the platform aborted
    engine = connect(settings.dsn)
    worker = ChunkWorker(settings, sync.ledger, StoreSource(engine), platform)
    result = worker.handle(ChunkMessage(request.id, 1, 1, 10**9))
    engine.dispose()
    assert not result.skipped and result.orders == 120
    (batch,) = sync.ledger.batches_of(request.id, 1).values()
    assert batch.batch_id != "gone" and fake.batches[batch.batch_id]["status"] == "success"
    del fake.batches[batch.batch_id]  # the platform lost it: 404 → the chunk fails, not hangs
    assert sync.progress(request.id).request.status == "failed"
    sync.close()


def _started_without_websites(settings: ConnectorSettings) -> ConnectorSettings:
    """The settings a connector started with before any website was saved on the platform."""
    return load_settings(settings.home, token="t", source_dsn=settings.source_dsn)


async def test_a_website_saved_after_the_connector_started_is_synced(tmp_path: Path) -> None:
    settings = shop_settings(tmp_path)
    started = _started_without_websites(settings)
    assert started.websites == ()
    site = {"website_code": "base", "datastream_id": "ds", "dataset_id": "events"}
    write_cache(
        settings.home, {"settings": {"org_id": ORG, "web_sdk_name": "", "websites": [site]}}
    )
    fake = FakePlatform()
    sync = await run_sync(settings, fake, worker_settings=started)
    shown = sync.progress().as_json()
    sync.close()
    assert shown["status"] == "done"
    assert shown["orders"]["done"] == 120 and shown["events"] > 0
    assert sum(b["rows"] for b in fake.batches.values()) == shown["events"]


async def test_orders_of_a_website_the_connector_has_no_settings_for_fail_with_the_reason(
    tmp_path: Path,
) -> None:
    settings = shop_settings(tmp_path)
    sync = await run_sync(
        settings, FakePlatform(), worker_settings=_started_without_websites(settings)
    )
    shown = sync.progress().as_json()
    reasons = {msg for _, _, msg in sync.ledger.failed_orders(shown["id"], limit=200)}
    sync.close()
    assert shown["orders"]["failed"] == 120 and shown["events"] == 0
    assert reasons == {"website 'base' has no settings in this connector"}
