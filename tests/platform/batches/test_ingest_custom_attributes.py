"""Custom order attributes through batch ingestion: counted as seen, and a schema that grows
while a batch is processed."""

from __future__ import annotations

from typing import Any

import pytest

from koppla.core import codec
from koppla.core.layout import Layout
from koppla.core.settings import Settings
from koppla.platform.batches.ingest import BatchOptions
from koppla.platform.catalog.models import Datastream
from koppla.platform.catalog.store import Catalog
from koppla.platform.pipeline.runner import Pipeline
from koppla.web.services import Services
from koppla.xdm.experience_event import commerce_experience_event
from tests.platform.batches.test_ingest import finish, lines, make_batch, order, pipeline_for
from tests.platform.pipeline.tenant_schemas import GrowingRegistry
from tests.platform.pipeline.test_runner_custom_attributes import seen


def extras(n: int, **attributes: Any) -> dict[str, Any]:
    """Order `n` with custom order attributes."""
    return order(n, commerce={"order": {"purchaseID": str(n), "_kopplademo": attributes}})


def test_the_attributes_of_every_row_validated_are_recorded(
    settings: Settings, catalog: Catalog, demo: Datastream
) -> None:
    rows = [extras(1, giftWrap=True), extras(2, giftWrap=False, note="x"), order(3)]
    rows.append({**extras(4, giftWrap=True), "timestamp": "soon"})  # refused, still seen
    batch = make_batch(settings, catalog, demo, {"a.json": lines(rows)})
    pipeline = pipeline_for(settings, catalog)
    done = finish(pipeline, catalog, batch.id)
    pipeline.close()
    assert (done.status, done.records, done.failed_records) == ("success", 3, 1)
    assert seen(settings, demo.event_dataset_id) == [
        ("order", "giftWrap", "boolean", 3),
        ("order", "note", "string", 1),
    ]


@pytest.mark.parametrize("commit_rows", [2, 100], ids=["one-part-a-commit", "parts-together"])
def test_rows_staged_before_the_schema_grew_land_beside_rows_typed_after_it(
    settings: Settings, catalog: Catalog, demo: Datastream, services: Services, commit_rows: int
) -> None:
    rows = [extras(n, giftWrap=n % 2 == 0) for n in range(4)]
    batch = make_batch(settings, catalog, demo, {"a.json": lines(rows)})
    registry = GrowingRegistry()
    options = BatchOptions(rows_per_step=2, commit_rows=commit_rows)
    pipeline = Pipeline(Layout(settings.home), catalog, registry, batch_options=options)
    pipeline.step()  # the first two rows are staged under the schema without the attribute
    registry.grow(commerce_experience_event().id, {"giftWrap": "boolean"})
    done = finish(pipeline, catalog, batch.id)
    pipeline.close()
    assert (done.status, done.records) == ("success", 4)
    stored = services.query.run(
        "SELECT _id, commerce.order._kopplademo.giftWrap, _koppla.unknown "
        "FROM demo_events ORDER BY 1"
    ).rows
    assert [(i, typed, unknown and codec.loads(unknown)) for i, typed, unknown in stored] == [
        ("order-0", None, {"commerce.order._kopplademo": {"giftWrap": True}}),
        ("order-1", None, {"commerce.order._kopplademo": {"giftWrap": False}}),
        ("order-2", True, None),
        ("order-3", False, None),
    ]
