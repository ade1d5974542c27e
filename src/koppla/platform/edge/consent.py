"""Visitors' consent as the edge sees it: recorded by set-consent, honoured on every request.

A visitor who said `out` (recorded here, or carried in the `kndctr_<org>_consent` cookie) has no
events stored; the edge counts them per datastream instead (`droppedByConsent`), so the loss is
visible.

Only opt-outs are kept (an unknown visitor's consent is `in`), and at most `max_opt_outs` of them:
past that the oldest are forgotten, checked every `trim_every` opt-outs, so anonymous requests
cannot grow the table without bound (the visitor's consent cookie still carries the choice). Each
edge process keeps the opt-outs in memory and catches up from the catalog's change log every
`REFRESH_S` seconds, so it never reloads the whole table while the log reaches back far enough.
"""

from __future__ import annotations

from koppla.core import clock
from koppla.platform.catalog.store import Catalog

REFRESH_S = 2.0
TRIM_EVERY = 1_000
DROPPED_BY_CONSENT = "droppedByConsent"


class ConsentBook:
    """Who opted out, cached in memory and written through to the catalog."""

    def __init__(self, catalog: Catalog, *, max_opt_outs: int = 1_000_000) -> None:
        self._catalog = catalog
        self._max_opt_outs = max_opt_outs
        self._trim_every = max(1, min(TRIM_EVERY, max_opt_outs // 100))
        self._since_trim = 0
        self._out: set[tuple[str, str]] = set()
        self._seq = -1
        self._checked_at = -1e9

    def _fresh(self) -> set[tuple[str, str]]:
        now = clock.monotonic()
        if now - self._checked_at > REFRESH_S:
            self._catch_up()
            self._checked_at = now
        return self._out

    def _catch_up(self) -> None:
        """Apply the catalog's consent changes since the last look (or reload them all)."""
        changes = None if self._seq < 0 else self._catalog.consent_changes(self._seq)
        if changes is None:
            seq = self._catalog.consent_seq()
            self._out = self._catalog.consents_out()
            self._seq = seq
            return
        for seq, org_id, ecid, general in changes:
            self._apply(org_id, ecid, general)
            self._seq = seq

    def _apply(self, org_id: str, ecid: str, general: str) -> None:
        if general == "out":
            self._out.add((org_id, ecid))
        else:
            self._out.discard((org_id, ecid))

    def record(self, org_id: str, ecid: str, general: str) -> None:
        """Store a visitor's choice (`in` or `out`)."""
        self._catalog.set_consent(org_id, ecid, general)
        self._apply(org_id, ecid, general)
        if general == "out":
            self._since_trim += 1
            if self._since_trim >= self._trim_every:
                self._since_trim = 0
                self._catalog.trim_consents(self._max_opt_outs)

    def is_out(self, org_id: str, ecid: str, cookie_value: str | None) -> bool:
        """True when the visitor opted out, by cookie or by the recorded choice."""
        if cookie_value is not None and "general=out" in cookie_value:
            return True
        return (org_id, ecid) in self._fresh()

    def count_dropped(self, datastream_id: str, events: int) -> None:
        """Count events not stored because the visitor opted out."""
        self._catalog.add_to_counter(datastream_id, DROPPED_BY_CONSENT, events)
