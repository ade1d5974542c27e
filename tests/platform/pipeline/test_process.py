"""The pipeline process: heartbeat while it runs, and a stream failure recorded and raised."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from koppla.core.layout import Layout
from koppla.core.settings import Settings
from koppla.platform.catalog.models import Datastream
from koppla.platform.datasets.storage import DeltaStore
from koppla.platform.pipeline import health, process
from koppla.platform.pipeline.heartbeat import RESTARTS_ENV
from koppla.web.services import Services
from tests.platform.pipeline.test_runner import page, spool


def test_a_delta_commit_failure_stops_the_process_and_is_in_the_heartbeat(
    settings: Settings, demo: Datastream, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(self: DeltaStore, path: Path, *args: Any, **kwargs: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(DeltaStore, "append", broken)
    monkeypatch.setenv(RESTARTS_ENV, "1")
    spool(settings, demo, [page("lost?")])
    with pytest.raises(OSError, match="No space left"):
        process.run(settings, threading.Event())
    beat = health.read(Layout(settings.home).pipeline_health)
    assert beat is not None
    assert (beat.pid, beat.restarts) == (os.getpid(), 1)
    assert beat.last_error is not None
    assert beat.last_error.startswith("OSError: [Errno 28] No space left on device (at ")
    assert beat.last_error_ms is not None


def test_a_running_pipeline_beats_and_reports_progress(
    settings: Settings, demo: Datastream, services: Services
) -> None:
    spool(settings, demo, [page("one")])
    stop = threading.Event()
    thread = threading.Thread(target=process.run, args=(settings, stop))
    thread.start()
    path = Layout(settings.home).pipeline_health
    try:
        deadline = time.monotonic() + 30
        rows: list[tuple[Any, ...]] = []
        while time.monotonic() < deadline and not rows:
            rows = services.query.run("SELECT web.webPageDetails.name FROM demo_events").rows
            time.sleep(0.05)
        assert rows == [("one",)]
        beat = None
        while time.monotonic() < deadline:
            beat = health.read(path)
            if beat is not None and beat.progress_ms > beat.started_ms:
                break
            time.sleep(0.05)
    finally:
        stop.set()
        thread.join()
    assert beat is not None
    assert beat.pid == os.getpid()
    assert beat.progress_ms > beat.started_ms
    assert beat.last_error is None
