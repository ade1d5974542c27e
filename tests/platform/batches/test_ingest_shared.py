"""Batch ingestion beside streaming when pipeline workers share the dataset (claims in
PostgreSQL): a row streamed while the batch commits is stored once."""

from __future__ import annotations

from typing import Any

import pytest

from koppla.core.layout import Layout
from koppla.core.settings import Settings
from koppla.platform.batches.ingest import BatchOptions
from koppla.platform.catalog.models import Datastream
from koppla.platform.catalog.store import Catalog
from koppla.platform.datasets.storage import DeltaStore
from koppla.platform.pipeline.runner import Pipeline
from koppla.platform.pipeline.shared import SharedState
from koppla.web.services import Services
from koppla.xdm.registry import builtin_registry
from tests.platform.batches.test_ingest import finish, lines, make_batch, order, stored_ids
from tests.platform.pipeline.test_runner import page, spool
from tests.platform.pipeline.test_shared import url

__all__ = ["url"]  # the fixture: a fresh PostgreSQL schema


def test_a_row_streamed_while_a_batch_commits_is_claimed_once_across_writers(
    settings: Settings, catalog: Catalog, demo: Datastream, services: Services, url: str
) -> None:
    files = {
        f"{name}.json": lines([order(2 * i), order(2 * i + 1)]) for i, name in enumerate("abcd")
    }
    batch = make_batch(settings, catalog, demo, files)
    shared = SharedState(url, "w1", ["edge-0"])
    pipeline = Pipeline(
        Layout(settings.home),
        catalog,
        builtin_registry(),
        batch_options=BatchOptions(rows_per_step=8, commit_rows=2),
        shared=shared,
    )
    try:
        pipeline.step()  # stages the four files as four parts; the commits wait
        spool(settings, demo, [{**page("streamed"), "_id": "order-7"}])  # in the last part
        done = finish(pipeline, catalog, batch.id)
        assert shared.dedupe(demo.event_dataset_id).seen(["order-7"]) == {"order-7"}
    finally:
        pipeline.close()
        shared.close()
    assert (done.status, done.records, done.duplicates) == ("success", 7, 1)
    assert stored_ids(services) == [f"order-{n}" for n in range(8)]


def test_a_row_streamed_by_another_worker_while_the_batch_commits_is_stored_once(
    settings: Settings,
    catalog: Catalog,
    demo: Datastream,
    services: Services,
    url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The race claims close: worker B stores a streamed row in the moment between worker A's
    last look at the dataset's ids and A's batch commit holding the same id."""
    files = {"a.json": lines([order(0), order(1)]), "b.json": lines([order(2), order(3)])}
    batch = make_batch(settings, catalog, demo, files)
    options = BatchOptions(rows_per_step=8, commit_rows=2)
    layout = Layout(settings.home)
    a_state = SharedState(url, "a", [])  # moves batches on: the first to take `maintenance`
    a_state.leases.refresh(force=True)
    b_state = SharedState(url, "b", ["edge-0"])  # reads the streaming partition
    a = Pipeline(layout, catalog, builtin_registry(), batch_options=options, shared=a_state)
    b = Pipeline(layout, catalog, builtin_registry(), batch_options=options, shared=b_state)
    append = DeltaStore.append
    raced: list[bool] = []

    def b_stores_first(self: DeltaStore, table: Any, rows: Any, **kw: Any) -> None:
        ids = rows.column("_id").to_pylist() if "_id" in rows.column_names else []
        if kw["app_id"].startswith("koppla-batch/") and "order-3" in ids and not raced:
            raced.append(True)
            spool(settings, demo, [{**page("streamed"), "_id": "order-3"}])
            b.step()  # B stores (or leaves out) the streamed row before A's commit lands
        append(self, table, rows, **kw)

    monkeypatch.setattr(DeltaStore, "append", b_stores_first)
    try:
        done = finish(a, catalog, batch.id)
        b.step()
    finally:
        for pipeline in (a, b):
            pipeline.close()
        a_state.close()
        b_state.close()
    assert raced == [True]
    assert done.status == "success"
    assert stored_ids(services) == [f"order-{n}" for n in range(4)]
