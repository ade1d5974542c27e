"""What finished ingestion batches keep, and for how long; batches never completed are aborted.

A finished batch keeps its diagnostics (row errors, manifest, and a failed batch's input files)
for `diagnostics_ms`, then everything of it is deleted. Before that, what a crash may have left
behind (staged parts, the journal, a successful batch's inputs) goes at the next sweep. A batch
left `loading` (never completed by its client) for as long is aborted and its files deleted.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
from collections.abc import Collection
from pathlib import Path

from koppla.core import clock
from koppla.core.errors import NotFound
from koppla.core.layout import Layout
from koppla.platform.batches import parts
from koppla.platform.batches.files import BatchFiles
from koppla.platform.batches.journal import JOURNAL
from koppla.platform.catalog.models import FINAL_STATUSES, Batch
from koppla.platform.catalog.store import Catalog

log = logging.getLogger(__name__)


def drop_work(batch_directory: Path) -> None:
    """Delete a batch's work files: its journal and staged parts (the journal must be closed)."""
    shutil.rmtree(batch_directory / parts.PARTS, ignore_errors=True)
    for suffix in ("", "-wal", "-shm"):
        (batch_directory / f"{JOURNAL}{suffix}").unlink(missing_ok=True)


class Retention:
    """Sweeps the batches of one home: at most once per `every_ms` from `sweep_when_due`."""

    def __init__(
        self, layout: Layout, catalog: Catalog, *, diagnostics_ms: int, every_ms: int
    ) -> None:
        self._layout, self._catalog = layout, catalog
        self._files = BatchFiles(layout)
        self._diagnostics_ms, self._every_ms = diagnostics_ms, every_ms
        self._swept_at: int | None = None

    def sweep_when_due(self, active: Collection[str]) -> None:
        """Sweep if `every_ms` passed since the last sweep (or none ran yet)."""
        now = clock.now_ms()
        if self._swept_at is None or now - self._swept_at >= self._every_ms:
            self._swept_at = now
            self.sweep(now, active)

    def sweep(self, now_ms: int, active: Collection[str] = ()) -> int:
        """Delete what finished batches no longer need; returns how many batches expired.

        `active`: batches being processed now, left alone. A batch left `loading` past
        `diagnostics_ms` is aborted, its files deleted, and counted as expired.
        """
        root = self._layout.batches
        if not root.is_dir():
            return 0
        expired = 0
        for entry in os.scandir(root):
            if not entry.is_dir() or entry.name in active:
                continue
            try:
                batch = self._catalog.batch(entry.name)
            except NotFound:
                continue
            if batch.status == "loading":
                expired += self._abandon(batch, now_ms)
                continue
            if batch.status not in FINAL_STATUSES:
                continue
            finished = batch.completed_ms or batch.updated_ms or batch.created_ms
            if now_ms - finished >= self._diagnostics_ms:
                self._files.remove(batch.id)
                expired += 1
                continue
            drop_work(self._files.directory(batch.id))
            if batch.status != "failed":
                self._files.remove_inputs(batch.id)
        return expired

    def _abandon(self, batch: Batch, now_ms: int) -> int:
        """Abort a batch left loading past `diagnostics_ms`; 1 if it was, else 0."""
        if now_ms - (batch.updated_ms or batch.created_ms) < self._diagnostics_ms:
            return 0
        with self._files.locked(batch.id):  # an upload taking its place waits, then is refused
            aborted = dataclasses.replace(
                batch, status="aborted", completed_ms=now_ms, updated_ms=now_ms
            )
            if not self._catalog.change_batch(aborted, expect=("loading",)):
                return 0
            self._files.remove_inputs(batch.id)
        log.info("batch %s was never completed; aborted and its files deleted", batch.id)
        return 1
