"""The dataset override a request or an event names in its `meta`."""

from __future__ import annotations

from typing import Any

import pytest

from koppla.platform.catalog.routing import dataset_override


def _meta(dataset_id: Any) -> dict[str, Any]:
    event = {"datasetId": dataset_id}
    return {"configOverrides": {"com_adobe_experience_platform": {"datasets": {"event": event}}}}


def test_the_override_is_read_from_its_adobe_path() -> None:
    assert dataset_override(_meta("ds-1")) == "ds-1"


@pytest.mark.parametrize(
    "meta",
    [None, "x", [], {}, {"configOverrides": "x"}, _meta(5), _meta(None), {"datasetId": "ds-1"}],
)
def test_anything_else_names_no_override(meta: Any) -> None:
    assert dataset_override(meta) is None
