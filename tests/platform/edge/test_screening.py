"""The edge's own event check: the pipeline's validation, against the event's dataset."""

from __future__ import annotations

from typing import Any

from koppla.platform.catalog.demo import ensure_demo
from koppla.platform.catalog.store import Catalog
from koppla.platform.edge.screening import OVERRIDE_PATH, EventScreen, Rejection
from koppla.xdm.registry import builtin_registry
from tests.platform.edge.fakes import page_view


def override(dataset: str) -> dict[str, Any]:
    datasets = {"event": {"datasetId": dataset}}
    return {"configOverrides": {"com_adobe_experience_platform": {"datasets": datasets}}}


def test_valid_events_pass_and_the_first_invalid_one_is_named(catalog: Catalog) -> None:
    stream = ensure_demo(catalog)
    screen = EventScreen(catalog, builtin_registry())
    good = page_view()
    assert screen.first_rejection(stream, {}, [good, good]) is None
    bad = page_view()
    bad["xdm"]["timestamp"] = "yesterday"
    rejection = screen.first_rejection(stream, {}, [good, bad, bad])
    assert rejection is not None
    assert (rejection.index, rejection.path) == (1, "xdm.timestamp")
    assert rejection.reason


def test_an_override_to_an_unknown_dataset_is_refused(catalog: Catalog) -> None:
    stream = ensure_demo(catalog)
    screen = EventScreen(catalog, builtin_registry())
    event = {**page_view(), "meta": override("nope")}
    assert screen.first_rejection(stream, {}, [event]) == Rejection(
        0, OVERRIDE_PATH, "no dataset 'nope' for this datastream"
    )
    request_meta = override(stream.event_dataset_id)
    assert screen.first_rejection(stream, {"meta": request_meta}, [page_view()]) is None
