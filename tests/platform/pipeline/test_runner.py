"""The pipeline keeps valid records flowing when one record cannot be stored."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from koppla.core import codec, envelope
from koppla.core.envelope import EdgeRecord
from koppla.core.layout import Layout
from koppla.core.settings import Settings
from koppla.platform.catalog.models import Datastream
from koppla.platform.pipeline import runner
from koppla.platform.pipeline.runner import Pipeline
from koppla.platform.spool.writer import SpoolWriter
from koppla.web.services import Services


def spool(settings: Settings, stream: Datastream, events: list[dict[str, Any]]) -> None:
    async def write() -> None:
        writer = SpoolWriter(Layout(settings.home).spool, segment_bytes=1 << 20)
        record = EdgeRecord(
            received_ms=1_796_000_000_000,
            datastream_id=stream.id,
            org_id=stream.org_id,
            ecid="12345678901234567890123456789012345678",
            request_id="r",
            origin="",
            kind="interact",
            body=codec.dumps({"events": [{"xdm": e} for e in events]}),
        )
        await writer.append(envelope.encode(record))
        writer.close()

    asyncio.run(write())


def page(name: str) -> dict[str, Any]:
    return {
        "eventType": "web.webpagedetails.pageViews",
        "timestamp": "2026-12-01T10:00:00Z",
        "web": {"webPageDetails": {"name": name}},
    }


def test_a_record_that_cannot_be_converted_is_quarantined_alone(
    settings: Settings,
    demo: Datastream,
    pipeline: Pipeline,
    services: Services,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = runner.to_arrow

    def fussy(schema: Any, rows: Any) -> Any:  # stands in for a conversion bug on one record
        if any(r.get("web", {}).get("webPageDetails", {}).get("name") == "poison" for r in rows):
            raise OverflowError("value out of range")
        return real(schema, rows)

    monkeypatch.setattr(runner, "to_arrow", fussy)
    spool(settings, demo, [page("a"), page("poison"), page("b")])
    pipeline.step()
    names = services.query.run("SELECT web.webPageDetails.name FROM demo_events ORDER BY 1").rows
    assert names == [("a",), ("b",)]
    held = services.query.run("SELECT errors[1].code, errors[1].message FROM quarantine").rows
    assert held == [
        ("storage", "the record could not be stored: OverflowError: value out of range")
    ]


def test_a_replayed_chunk_after_a_crash_is_not_written_twice(
    settings: Settings, demo: Datastream, services: Services, tmp_path: Path
) -> None:
    from koppla.platform.catalog.store import Catalog
    from koppla.xdm.registry import builtin_registry

    spool(settings, demo, [page("x"), page("y")])
    first = Pipeline(Layout(settings.home), services.catalog, builtin_registry())
    first.step()
    first.close()
    # the crash: the cursor file is lost, so the same chunk is read again
    (Layout(settings.home).pipeline_state / "cursors.json").unlink()
    (Layout(settings.home).pipeline_state / "dedupe").rename(tmp_path / "lost-dedupe")
    catalog = Catalog(Layout(settings.home).catalog)
    again = Pipeline(Layout(settings.home), catalog, builtin_registry())
    again.step()
    again.close()
    rows = services.query.run("SELECT web.webPageDetails.name FROM demo_events ORDER BY 1").rows
    assert rows == [("x",), ("y",)]


def test_a_crash_after_the_commit_leaves_the_batch_loading_until_the_replay(
    settings: Settings, demo: Datastream, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    from koppla.platform.catalog.store import Catalog
    from koppla.xdm.registry import builtin_registry

    class Crash(Exception):
        pass

    def crash(self: Pipeline, batch_id: str) -> None:
        raise Crash

    spool(settings, demo, [page("p"), page("q")])
    first = Pipeline(Layout(settings.home), services.catalog, builtin_registry())
    with monkeypatch.context() as patch:
        patch.setattr(Pipeline, "_finish_batch", crash)
        with pytest.raises(Crash):
            first.step()
    first.close()
    (batch,) = services.catalog.batches()
    assert (batch.status, batch.records) == ("loading", 2)

    again = Pipeline(
        Layout(settings.home), Catalog(Layout(settings.home).catalog), builtin_registry()
    )
    again.step()
    again.close()
    (batch,) = services.catalog.batches()
    assert (batch.status, batch.records) == ("success", 2)
    rows = services.query.run("SELECT count(*) FROM demo_events").rows
    assert rows == [(2,)]
