"""The edge's own check of a request's events, used once a datastream is over its quarantine budget.

It validates each event as the pipeline will (`validate_event` against the schema of the dataset
the event goes to), so a request that would only feed the quarantine can be refused at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from koppla.core import clock
from koppla.core.errors import NotFound
from koppla.platform.catalog.models import Datastream
from koppla.platform.catalog.routing import dataset_override
from koppla.platform.catalog.store import Catalog
from koppla.xdm.event_types import validate_event
from koppla.xdm.registry import SchemaRegistry
from koppla.xdm.types import Schema

OVERRIDE_PATH = "meta.configOverrides.com_adobe_experience_platform.datasets.event.datasetId"
CACHE_MAX = 1_000
CACHE_S = 1.0
"""How long a dataset's schema id is trusted before the catalog is read again (a dataset may
move onto another schema); the schema itself comes from the registry on every use, so a schema
that grew is seen at once."""


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why a request's event would be quarantined: its index, the path in it and the reason."""

    index: int
    path: str
    reason: str


class EventScreen:
    """Validates Edge events against their datasets' schemas, with the schemas cached."""

    def __init__(self, catalog: Catalog, registry: SchemaRegistry) -> None:
        self._catalog = catalog
        self._registry = registry
        self._schemas: dict[str, tuple[float, tuple[str, str] | None]] = {}

    def first_rejection(
        self, stream: Datastream, body: dict[str, Any], events: list[dict[str, Any]]
    ) -> Rejection | None:
        """The first event of a request the pipeline would quarantine, or None if all pass."""
        default = dataset_override(body.get("meta"))
        for index, event in enumerate(events):
            key = dataset_override(event.get("meta")) or default
            target = self._dataset(stream, key)
            if target is None:
                return Rejection(index, OVERRIDE_PATH, f"no dataset {key!r} for this datastream")
            xdm = event["xdm"]
            if "_id" not in xdm:  # the pipeline derives one
                xdm = {**xdm, "_id": "edge-check"}
            issues = validate_event(target, xdm).issues
            if issues:
                path = f"xdm.{issues[0].path}" if issues[0].path else "xdm"
                return Rejection(index, path, issues[0].message)
        return None

    def _dataset(self, stream: Datastream, override: str | None) -> Schema | None:
        """The schema of the dataset an event goes to, as the pipeline routes it."""
        key = override or stream.event_dataset_id
        cached = self._schemas.get(key)
        if cached is None or clock.monotonic() - cached[0] > CACHE_S:
            if len(self._schemas) >= CACHE_MAX:  # override names come from anonymous requests
                self._schemas.clear()
            try:
                dataset = self._catalog.dataset(key)
                cached = (clock.monotonic(), (dataset.id, dataset.schema_id))
            except NotFound:
                cached = (clock.monotonic(), None)
            self._schemas[key] = cached
        found = cached[1]
        if found is None:
            return None
        dataset_id, schema_id = found
        try:
            schema = self._registry.get(schema_id)
        except NotFound:
            return None
        if override and dataset_id not in (stream.event_dataset_id, stream.profile_dataset_id):
            return self._dataset(stream, None)  # the edge may not name a foreign dataset
        return schema
