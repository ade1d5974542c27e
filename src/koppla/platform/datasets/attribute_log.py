"""The writer's record of the custom attributes its records carried (see
`koppla.platform.schemas.observed`).

The pipeline and batch ingestion count each record that reaches validation into a `Tally`
(`tally`), then, after the commit that stores or quarantines those records, add it to the
home's record (`record`). Recording is best effort: a failure is logged and the writer goes on,
so the record of attributes can fall behind but never stops a stream or loses a record.
"""

from __future__ import annotations

import logging
from pathlib import Path

from koppla.core import clock
from koppla.platform.catalog.models import Dataset
from koppla.platform.schemas.observed import ObservedAttributes, Tally
from koppla.xdm.tenant import namespace, tenant_id

log = logging.getLogger(__name__)


class AttributeLog:
    """Adds tallies of custom attributes to `<home>/attributes.sqlite`, opened on first use."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._observed: ObservedAttributes | None = None
        self._namespaces: dict[str, str] = {}

    def tally(self, dataset: Dataset) -> Tally:
        """An empty tally for records of `dataset` (its organization's tenant namespace)."""
        own = self._namespaces.get(dataset.org_id)
        if own is None:
            own = self._namespaces[dataset.org_id] = namespace(tenant_id(dataset.org_id))
        return Tally(own)

    def record(self, dataset_id: str, tally: Tally) -> bool:
        """Add `tally` to what `dataset_id`'s records carried; False (logged) when that failed."""
        if not tally:
            return True
        try:
            if self._observed is None:
                self._observed = ObservedAttributes(self._path)
            self._observed.record(dataset_id, tally, clock.now_ms())
        except Exception:  # the record of attributes must never stop the writer
            log.exception("the custom attributes seen in dataset %s were not recorded", dataset_id)
            return False
        return True

    def close(self) -> None:
        """Close the file (if it was opened)."""
        if self._observed is not None:
            self._observed.close()
            self._observed = None
