"""Where a request says its events should go: the dataset override of Adobe's Edge protocol."""

from __future__ import annotations

from typing import Any

OVERRIDE_PATH = ("configOverrides", "com_adobe_experience_platform", "datasets", "event")


def dataset_override(meta: Any) -> str | None:
    """`meta.configOverrides.com_adobe_experience_platform.datasets.event.datasetId`, if set.

    `meta` is a request's or an event's `meta` object as sent (any JSON value).
    """
    node = meta
    for key in OVERRIDE_PATH:
        if not isinstance(node, dict):
            return None
        node = node.get(key)
    if isinstance(node, dict) and isinstance(node.get("datasetId"), str):
        return str(node["datasetId"])
    return None
