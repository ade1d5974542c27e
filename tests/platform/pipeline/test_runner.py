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
from koppla.platform.datasets import tables
from koppla.platform.pipeline import runner
from koppla.platform.pipeline.runner import Pipeline
from koppla.platform.spool.writer import SpoolWriter
from koppla.web.services import Services


def edge_record(stream: Datastream, body: bytes) -> bytes:
    """The spooled bytes of an Edge request to `stream` with `body` as sent."""
    return envelope.encode(
        EdgeRecord(
            received_ms=1_796_000_000_000,
            datastream_id=stream.id,
            org_id=stream.org_id,
            ecid="12345678901234567890123456789012345678",
            request_id="r",
            origin="",
            kind="interact",
            body=body,
        )
    )


def spool_raw(settings: Settings, payloads: list[bytes]) -> None:
    """Append `payloads` to the spool as they are, as the edge (or an older version) would."""

    async def write() -> None:
        writer = SpoolWriter(Layout(settings.home).spool, segment_bytes=1 << 20)
        for payload in payloads:
            await writer.append(payload)
        writer.close()

    asyncio.run(write())


def spool(settings: Settings, stream: Datastream, events: list[dict[str, Any]]) -> None:
    body = codec.dumps({"events": [{"xdm": e} for e in events]})
    spool_raw(settings, [edge_record(stream, body)])


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
    from koppla.xdm.arrow import to_arrow as real

    def fussy(schema: Any, rows: Any) -> Any:  # stands in for a conversion bug on one record
        if any(r.get("web", {}).get("webPageDetails", {}).get("name") == "poison" for r in rows):
            raise OverflowError("value out of range")
        return real(schema, rows)

    monkeypatch.setattr(tables, "to_arrow", fussy)
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


def nested(depth: int) -> bytes:
    """JSON text of an object `depth` levels deep (orjson reads it but cannot write it back)."""
    return b'{"a":' * (depth - 1) + b"{}" + b"}" * (depth - 1)


def quarantine_rows(services: Services) -> list[tuple[Any, ...]]:
    return services.query.run(
        "SELECT datastream_id, [e.code FOR e IN errors], record FROM quarantine ORDER BY 2, 1 DESC"
    ).rows


def test_records_that_cannot_be_read_are_quarantined_and_the_stream_goes_on(
    settings: Settings, demo: Datastream, pipeline: Pipeline, services: Services
) -> None:
    deep = b'{"events":[{"xdm":{"eventType":"x","deep":' + nested(300) + b"}}]}"
    spool_raw(
        settings,
        [
            edge_record(demo, deep),
            edge_record(demo, b'{"events": [{"xdm": '),
            b"\x93not an envelope",
            edge_record(demo, b'{"events": [{"xdm": "not an object"}]}'),
        ],
    )
    spool(settings, demo, [page("after")])
    pipeline.step()
    names = services.query.run("SELECT web.webPageDetails.name FROM demo_events").rows
    assert names == [("after",)]
    held = quarantine_rows(services)
    assert [(d, codes) for d, codes, _ in held] == [
        (demo.id, ["shape", "record"]),
        (demo.id, ["unreadable", "record"]),
        ("", ["unreadable", "record"]),
        (demo.id, ["unserializable", "record"]),
    ]
    assert [record for _, _, record in held] == [
        '{"events": [{"xdm": "not an object"}]}',
        '{"events": [{"xdm": ',
        "\ufffdnot an envelope",
        deep.decode(),
    ]
    reason = services.query.run(
        "SELECT errors[1].message FROM quarantine WHERE errors[1].code = 'unserializable'"
    ).rows
    assert reason == [("the event is nested 302 levels deep; at most 254 can be stored",)]
    assert services.catalog.counters(demo.id)["quarantined"] == 3  # the garbage has no datastream


def test_a_deep_event_with_its_own_id_is_quarantined_and_the_stream_goes_on(
    settings: Settings, demo: Datastream, pipeline: Pipeline, services: Services
) -> None:
    deep = (
        b'{"events":[{"xdm":{"_id":"deep-1","eventType":"web.webpagedetails.pageViews",'
        b'"timestamp":"2026-12-01T10:00:00.000Z","deep":' + nested(300) + b"}}]}"
    )
    spool_raw(settings, [edge_record(demo, deep)])
    spool(settings, demo, [page("after")])
    pipeline.step()
    names = services.query.run("SELECT web.webPageDetails.name FROM demo_events").rows
    assert names == [("after",)]
    held = services.query.run("SELECT event_id, errors[1].message FROM quarantine").rows
    assert len(held) == 1
    assert held[0][0] == "deep-1"
    assert "Recursion limit" in held[0][1]


def test_an_exception_while_validating_one_record_quarantines_only_that_record(
    settings: Settings,
    demo: Datastream,
    pipeline: Pipeline,
    services: Services,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from koppla.xdm.event_types import validate_event as real

    def fussy(schema: Any, xdm: dict[str, Any]) -> Any:  # stands in for a validator bug
        if xdm.get("web", {}).get("webPageDetails", {}).get("name") == "poison":
            raise KeyError("surprise")
        return real(schema, xdm)

    monkeypatch.setattr(runner, "validate_event", fussy)
    spool(settings, demo, [page("a"), page("poison"), page("b")])
    pipeline.step()
    names = services.query.run("SELECT web.webPageDetails.name FROM demo_events ORDER BY 1").rows
    assert names == [("a",), ("b",)]
    held = services.query.run("SELECT errors[1].code, errors[1].message, record FROM quarantine")
    ((code, message, record),) = held.rows
    assert (code, message) == ("internal", "KeyError: 'surprise'")
    assert codec.loads(record)["web"]["webPageDetails"]["name"] == "poison"


def test_quarantined_records_are_counted_once_even_when_the_chunk_is_replayed(
    settings: Settings, demo: Datastream, services: Services
) -> None:
    from koppla.platform.catalog.store import Catalog
    from koppla.xdm.registry import builtin_registry

    spool(settings, demo, [page("ok"), {"eventType": 3}, {"eventType": 4}])
    first = Pipeline(Layout(settings.home), services.catalog, builtin_registry())
    first.step()
    first.close()
    assert services.catalog.counters(demo.id)["quarantined"] == 2
    (Layout(settings.home).pipeline_state / "cursors.json").unlink()  # the chunk comes again
    catalog = Catalog(Layout(settings.home).catalog)
    again = Pipeline(Layout(settings.home), catalog, builtin_registry())
    again.step()
    again.close()
    catalog.close()
    assert services.catalog.counters(demo.id)["quarantined"] == 2
    assert services.query.run("SELECT count(*) FROM quarantine").rows == [(2,)]


def test_a_resync_of_ids_long_past_the_dedupe_window_adds_nothing(
    settings: Settings, demo: Datastream, services: Services
) -> None:
    from koppla.core import clock
    from koppla.platform.catalog.store import Catalog
    from koppla.platform.datasets.dedupe import DAY_MS, DedupeIndex
    from koppla.xdm.registry import builtin_registry

    order = {**page("order"), "_id": "order-1-placed"}
    spool(settings, demo, [order])
    first = Pipeline(Layout(settings.home), services.catalog, builtin_registry())
    first.step()
    first.close()
    # five years on, the order's id has left the exact index for the Bloom filter
    path = Layout(settings.home).pipeline_state / "dedupe" / f"{demo.event_dataset_id}.sqlite"
    later = clock.now_ms() + 5 * 365 * DAY_MS
    aged = DedupeIndex(path, lookup=lambda ids: set(), now=lambda: later)
    assert aged.prune() == 1
    aged.close()

    spool(settings, demo, [order, {**page("new"), "_id": "order-2-placed"}])  # the resync
    catalog = Catalog(Layout(settings.home).catalog)
    again = Pipeline(Layout(settings.home), catalog, builtin_registry())
    again.step()
    again.close()
    catalog.close()
    rows = services.query.run("SELECT _id FROM demo_events ORDER BY 1").rows
    assert rows == [("order-1-placed",), ("order-2-placed",)]
