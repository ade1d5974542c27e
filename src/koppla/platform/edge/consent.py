"""Visitors' consent as the edge sees it: recorded by set-consent, honoured on every request.

A visitor who said `out` (recorded here, or carried in the `kndctr_<org>_consent` cookie) has no
events stored; the edge counts them per datastream instead (`droppedByConsent`), so the loss is
visible.
"""

from __future__ import annotations

from koppla.core import clock
from koppla.platform.catalog.store import Catalog

REFRESH_S = 2.0
DROPPED_BY_CONSENT = "droppedByConsent"


class ConsentBook:
    """Who opted out, cached in memory and written through to the catalog."""

    def __init__(self, catalog: Catalog) -> None:
        self._catalog = catalog
        self._out: set[tuple[str, str]] = set()
        self._loaded_at = -1e9

    def _fresh(self) -> set[tuple[str, str]]:
        now = clock.monotonic()
        if now - self._loaded_at > REFRESH_S:
            self._out = self._catalog.consents_out()
            self._loaded_at = now
        return self._out

    def record(self, org_id: str, ecid: str, general: str) -> None:
        """Store a visitor's choice (`in` or `out`)."""
        self._catalog.set_consent(org_id, ecid, general)
        if general == "out":
            self._out.add((org_id, ecid))
        else:
            self._out.discard((org_id, ecid))

    def is_out(self, org_id: str, ecid: str, cookie_value: str | None) -> bool:
        """True when the visitor opted out, by cookie or by the recorded choice."""
        if cookie_value is not None and "general=out" in cookie_value:
            return True
        return (org_id, ecid) in self._fresh()

    def count_dropped(self, datastream_id: str, events: int) -> None:
        """Count events not stored because the visitor opted out."""
        self._catalog.add_to_counter(datastream_id, DROPPED_BY_CONSENT, events)
