"""The spool's promise: nothing is acknowledged before `fdatasync` has made its bytes durable.

`os.fdatasync` and `os.fsync` are wrapped to note, per segment file, how many bytes each sync
made durable. Each sync first lets the event loop run every callback the writer scheduled before
it, so an acknowledgement sent ahead of the sync is seen as done before the sync is noted.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from koppla.core import codec
from koppla.core.layout import Layout
from koppla.core.settings import Settings
from koppla.platform.catalog.models import Datastream
from koppla.platform.spool.position import Position, segment_name, segment_number
from koppla.platform.spool.writer import SpoolWriter

Sync = Callable[[int], None]


def _segment_path(fd: int) -> Path | None:
    """The spool segment file `fd` is open on, or None for directories and other files."""
    try:
        path = Path(os.readlink(f"/proc/self/fd/{fd}"))
    except OSError:
        return None
    return path if segment_number(path.name) is not None else None


class SyncLog:
    """What the syncs made durable: bytes per segment file, noted once each sync returns."""

    def __init__(self, before_sync: Callable[[], object] = lambda: None) -> None:
        self.durable: dict[Path, int] = {}
        self._before_sync = before_sync
        self._lock = threading.Lock()

    def wrap(self, real: Sync) -> Sync:
        """`real`, noting what it made durable when called on a segment file."""

        def sync(fd: int) -> None:
            path = _segment_path(fd)
            if path is not None:
                self._before_sync()
            real(fd)
            if path is not None:
                with self._lock:
                    size = os.fstat(fd).st_size
                    self.durable[path] = max(self.durable.get(path, 0), size)

        return sync

    def covers(self, path: Path, offset: int) -> bool:
        """True when a finished sync made the bytes of `path` up to `offset` durable."""
        with self._lock:
            return self.durable.get(path, 0) >= offset


@pytest.fixture
def patch_syncs(monkeypatch: pytest.MonkeyPatch) -> Callable[[SyncLog], None]:
    """Route `os.fdatasync` and `os.fsync` through a `SyncLog` for the rest of the test."""

    def install(log: SyncLog) -> None:
        monkeypatch.setattr(os, "fdatasync", log.wrap(os.fdatasync))
        monkeypatch.setattr(os, "fsync", log.wrap(os.fsync))

    return install


def _drain(loop: asyncio.AbstractEventLoop) -> None:
    """From another thread: wait until `loop` has run every callback scheduled so far."""
    if not loop.is_running():
        return
    ran = threading.Event()
    try:
        loop.call_soon_threadsafe(ran.set)
    except RuntimeError:  # the loop closed meanwhile
        return
    ran.wait(timeout=10)


async def _append_in_waves(
    tmp_path: Path, install: Callable[[SyncLog], None]
) -> tuple[SyncLog, list[tuple[Path, Position]], list[Path]]:
    loop = asyncio.get_running_loop()
    futures: list[asyncio.Future[Position]] = []
    early: list[Path] = []
    writer: SpoolWriter | None = None

    def check_acknowledged() -> None:
        # Runs in the writer thread just before each sync of a segment.
        _drain(loop)
        assert writer is not None
        for future in list(futures):
            if future.done() and not future.exception():
                end = future.result()
                path = tmp_path / writer.stream / segment_name(end.segment)
                if not log.covers(path, end.offset):
                    early.append(path)

    log = SyncLog(before_sync=check_acknowledged)
    install(log)
    writer = SpoolWriter(tmp_path, segment_bytes=4096)
    try:
        for wave in range(8):
            batch = [writer.append(f"wave-{wave}-record-{i}".encode() * 4) for i in range(40)]
            futures += batch
            await asyncio.gather(*batch)
    finally:
        writer.close()
    ends = [
        (tmp_path / writer.stream / segment_name(f.result().segment), f.result()) for f in futures
    ]
    return log, ends, early


def test_every_acknowledged_append_was_covered_by_a_finished_sync(
    tmp_path: Path, patch_syncs: Callable[[SyncLog], None]
) -> None:
    log, ends, early = asyncio.run(_append_in_waves(tmp_path, patch_syncs))
    assert len({path for path, _ in ends}) > 1, "the appends should span several segments"
    assert early == [], "appends were acknowledged before a sync covered their bytes"
    not_durable = [(path.name, end) for path, end in ends if not log.covers(path, end.offset)]
    assert not_durable == [], "acknowledged appends that no sync ever made durable"


def _page_view() -> bytes:
    event = {
        "eventType": "web.webpagedetails.pageViews",
        "timestamp": "2026-12-01T10:00:00Z",
        "web": {"webPageDetails": {"name": "home"}},
    }
    return codec.dumps({"events": [{"xdm": event}]})


@pytest.mark.anyio
async def test_the_edge_answers_only_after_the_request_is_synced(
    client: httpx.AsyncClient,
    demo: Datastream,
    settings: Settings,
    patch_syncs: Callable[[SyncLog], None],
) -> None:
    answered = threading.Event()
    # Each segment sync is held back until the answer arrives (or half a second passes): an edge
    # that answered before syncing would be seen answering with nothing durable yet.
    log = SyncLog(before_sync=lambda: answered.wait(timeout=0.5))
    patch_syncs(log)
    response = await client.post(f"/ee/v1/interact?configId={demo.id}", content=_page_view())
    segments = {path: path.stat().st_size for path in Layout(settings.home).spool.glob("*/*.seg")}
    covered = {path: log.covers(path, size) for path, size in segments.items()}
    answered.set()
    assert response.status_code == 200
    assert segments and all(segments.values()), "the request should be in a spool segment"
    assert all(covered.values()), f"answered before these were synced: {covered}"
