"""Custom order attributes through the pipeline: kept when the schema lacks them, counted as
seen, stored in their own column once the schema gains them."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pytest
from deltalake import DeltaTable

from koppla.core import codec
from koppla.core.layout import Layout
from koppla.core.settings import Settings
from koppla.platform.catalog.models import Datastream
from koppla.platform.catalog.store import Catalog
from koppla.platform.pipeline.runner import Pipeline
from koppla.platform.schemas.observed import ObservedAttributes
from koppla.web.services import Services
from koppla.xdm.experience_event import commerce_experience_event
from tests.platform.pipeline.tenant_schemas import GrowingRegistry, StoredTenantSchema
from tests.platform.pipeline.test_runner import page, spool

EVENTS = commerce_experience_event().id


def order(n: int, extras: dict[str, Any] | None = None) -> dict[str, Any]:
    """A back-office order event; `extras` are its custom order attributes."""
    event: dict[str, Any] = {
        "_id": f"order-{n}",
        "eventType": "commerce.backofficeOrderPlaced",
        "timestamp": "2026-12-01T10:00:00.000Z",
        "commerce": {"order": {"purchaseID": str(n)}},
    }
    if extras is not None:
        event["commerce"]["order"]["_kopplademo"] = extras
    return event


def seen(settings: Settings, dataset_id: str) -> list[tuple[str, str, str, int]]:
    observed = ObservedAttributes(Layout(settings.home).attributes)
    try:
        return sorted((s.level, s.name, s.kind, s.count) for s in observed.seen(dataset_id))
    finally:
        observed.close()


def columns(settings: Settings, dataset_id: str) -> set[str]:
    """The dotted paths of the custom order attributes the dataset's Delta table has."""
    table = DeltaTable(str(Layout(settings.home).dataset(dataset_id)))
    schema = pa.schema(table.schema().to_arrow())
    commerce = schema.field("commerce").type
    order = commerce.field("order").type
    try:
        own = order.field("_kopplademo").type
    except KeyError:
        return set()
    return {f"commerce.order._kopplademo.{own.field(i).name}" for i in range(own.num_fields)}


@pytest.fixture
def registry() -> GrowingRegistry:
    return GrowingRegistry()


@pytest.fixture
def growing(settings: Settings, catalog: Catalog, registry: GrowingRegistry) -> Iterator[Pipeline]:
    """A pipeline over the test's home whose registry the test can grow."""
    runner = Pipeline(Layout(settings.home), catalog, registry, flush_ms=10)
    yield runner
    runner.close()


def test_an_attribute_the_schema_lacks_is_kept_and_recorded_as_seen(
    settings: Settings, demo: Datastream, pipeline: Pipeline, services: Services
) -> None:
    spool(settings, demo, [order(1, {"giftWrap": True}), order(2, {"giftWrap": False}), order(3)])
    pipeline.step()
    rows = services.query.run("SELECT _id, _koppla.unknown FROM demo_events ORDER BY 1").rows
    assert [(i, None if u is None else codec.loads(u)) for i, u in rows] == [
        ("order-1", {"commerce.order._kopplademo": {"giftWrap": True}}),
        ("order-2", {"commerce.order._kopplademo": {"giftWrap": False}}),
        ("order-3", None),
    ]
    assert seen(settings, demo.event_dataset_id) == [("order", "giftWrap", "boolean", 2)]


def test_once_the_schema_gains_the_attribute_it_is_stored_in_its_own_column(
    settings: Settings,
    demo: Datastream,
    registry: GrowingRegistry,
    growing: Pipeline,
    services: Services,
) -> None:
    spool(settings, demo, [order(1, {"giftWrap": True})])
    growing.step()
    assert columns(settings, demo.event_dataset_id) == set()

    registry.grow(EVENTS, {"giftWrap": "boolean"})
    growing.step()  # nothing waits: the table gets the column anyway
    assert columns(settings, demo.event_dataset_id) == {"commerce.order._kopplademo.giftWrap"}
    before = services.query.run(
        "SELECT _id, commerce.order._kopplademo.giftWrap FROM demo_events"
    ).rows
    assert before == [("order-1", None)]

    spool(settings, demo, [order(2, {"giftWrap": True})])
    growing.step()
    rows = services.query.run(
        "SELECT _id, commerce.order._kopplademo.giftWrap, _koppla.unknown "
        "FROM demo_events ORDER BY 1"
    ).rows
    assert rows == [
        ("order-1", None, '{"commerce.order._kopplademo":{"giftWrap":true}}'),
        ("order-2", True, None),
    ]
    assert seen(settings, demo.event_dataset_id) == [("order", "giftWrap", "boolean", 2)]


def test_a_wrong_type_for_a_defined_attribute_is_quarantined_alone(
    settings: Settings,
    demo: Datastream,
    registry: GrowingRegistry,
    growing: Pipeline,
    services: Services,
) -> None:
    registry.grow(EVENTS, {"giftWrap": "boolean"})
    spool(
        settings,
        demo,
        [order(1, {"giftWrap": True}), order(2, {"giftWrap": "yes"}), order(3)],
    )
    growing.step()
    stored = services.query.run(
        "SELECT _id, commerce.order._kopplademo.giftWrap FROM demo_events ORDER BY 1"
    ).rows
    assert stored == [("order-1", True), ("order-3", None)]
    held = services.query.run("SELECT event_id, errors[1].path, errors[1].code FROM quarantine")
    assert held.rows == [("order-2", "commerce.order._kopplademo.giftWrap", "type")]
    assert seen(settings, demo.event_dataset_id) == [
        ("order", "giftWrap", "boolean", 1),
        ("order", "giftWrap", "string", 1),
    ]


def test_a_replayed_chunk_is_not_counted_twice(
    settings: Settings, demo: Datastream, services: Services
) -> None:
    spool(settings, demo, [order(1, {"giftWrap": True}), order(2, {"giftWrap": 3})])
    registry = GrowingRegistry()
    registry.grow(EVENTS, {"giftWrap": "boolean"})
    for _ in range(2):
        catalog = Catalog(Layout(settings.home).catalog)
        runner = Pipeline(Layout(settings.home), catalog, registry)
        runner.step()
        runner.close()
        catalog.close()
        (Layout(settings.home).pipeline_state / "cursors.json").unlink()  # the chunk comes again
    assert seen(settings, demo.event_dataset_id) == [
        ("order", "giftWrap", "boolean", 1),
        ("order", "giftWrap", "number", 1),
    ]
    assert services.query.run("SELECT count(*) FROM quarantine").rows == [(1,)]


def test_a_failure_to_record_attributes_stops_nothing(
    settings: Settings,
    demo: Datastream,
    pipeline: Pipeline,
    services: Services,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(*args: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(ObservedAttributes, "record", broken)
    spool(settings, demo, [order(1, {"giftWrap": True})])
    with caplog.at_level(logging.ERROR):
        pipeline.step()
    spool(settings, demo, [order(2, {"giftWrap": True})])
    pipeline.step()
    ids = services.query.run("SELECT _id FROM demo_events ORDER BY 1").rows
    assert ids == [("order-1",), ("order-2",)]
    assert "were not recorded" in caplog.text


def test_records_of_a_dataset_whose_schema_is_gone_are_quarantined_and_the_stream_goes_on(
    settings: Settings, catalog: Catalog, demo: Datastream, pipeline: Pipeline, services: Services
) -> None:
    lost = catalog.create_dataset("lost_events", schema_id="https://ns.adobe.com/x/schemas/0")
    other = catalog.create_datastream(org_id=demo.org_id, event_dataset=lost.id)
    spool(settings, other, [page("nowhere")])
    spool(settings, demo, [page("here")])
    pipeline.step()
    assert services.query.run("SELECT web.webPageDetails.name FROM demo_events").rows == [("here",)]
    held = services.query.run("SELECT dataset_id, errors[1].code FROM quarantine").rows
    assert held == [(lost.id, "schema")]


def test_a_dataset_moved_onto_a_tenant_schema_and_its_growth_are_followed_within_a_step(
    settings: Settings, catalog: Catalog, demo: Datastream, services: Services
) -> None:
    layout = Layout(settings.home)
    tenant = StoredTenantSchema(layout, {"giftWrap": "boolean"})
    runner = Pipeline(layout, catalog, tenant.registry)
    try:
        spool(settings, demo, [order(1, {"giftWrap": True, "note": "old"})])
        runner.step()
        catalog.set_dataset_schema(demo.event_dataset_id, tenant.id)  # no table upgrade here
        runner.step()
        assert columns(settings, demo.event_dataset_id) == {"commerce.order._kopplademo.giftWrap"}
        spool(settings, demo, [order(2, {"giftWrap": False, "note": "new"})])
        runner.step()
        tenant.grow({"giftWrap": "boolean", "note": "string"})
        runner.step()
        assert columns(settings, demo.event_dataset_id) == {
            "commerce.order._kopplademo.giftWrap",
            "commerce.order._kopplademo.note",
        }
        spool(settings, demo, [order(3, {"giftWrap": True, "note": "typed"})])
        runner.step()
    finally:
        runner.close()
        tenant.close()
    rows = services.query.run(
        "SELECT _id, commerce.order._kopplademo.giftWrap, commerce.order._kopplademo.note, "
        "_koppla.unknown FROM demo_events ORDER BY 1"
    ).rows
    assert [
        (i, flag, note, unknown and codec.loads(unknown)) for i, flag, note, unknown in rows
    ] == [
        ("order-1", None, None, {"commerce.order._kopplademo": {"giftWrap": True, "note": "old"}}),
        ("order-2", False, None, {"commerce.order._kopplademo.note": "new"}),
        ("order-3", True, "typed", None),
    ]
    assert seen(settings, demo.event_dataset_id) == [
        ("order", "giftWrap", "boolean", 3),
        ("order", "note", "string", 3),
    ]


def test_a_table_that_cannot_take_its_schema_holds_up_only_its_own_records(
    settings: Settings,
    catalog: Catalog,
    demo: Datastream,
    pipeline: Pipeline,
    services: Services,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from koppla.platform.datasets.storage import DeltaStore

    stuck = catalog.create_dataset("stuck_events", schema_id=EVENTS, org_id=demo.org_id)
    other = catalog.create_datastream(org_id=demo.org_id, event_dataset=stuck.id)
    stuck_path = Layout(settings.home).dataset(stuck.id)
    ensure = DeltaStore.ensure_dataset

    def refuse(self: DeltaStore, path: Any, schema: Any) -> list[str]:
        if str(path) == str(stuck_path):
            raise ValueError("Duplicate field name (case-insensitive)")
        return ensure(self, path, schema)

    monkeypatch.setattr(DeltaStore, "ensure_dataset", refuse)
    spool(settings, other, [page("stuck")])
    spool(settings, demo, [page("here")])
    pipeline.step()
    assert services.query.run("SELECT web.webPageDetails.name FROM demo_events").rows == [("here",)]
    held = services.query.run(
        "SELECT dataset_id, errors[1].code, errors[1].message FROM quarantine"
    )
    [(dataset_id, code, message)] = held.rows
    assert (dataset_id, code) == (stuck.id, "storage")
    assert "Duplicate field name" in message
