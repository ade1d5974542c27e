"""The pipeline process's heartbeat: keeps its `PipelineHealth` file current.

A thread of its own writes the file about once a second, so a heartbeat that goes old means the
process is gone, while a `progress_ms` that goes old with work waiting means it is stuck. An error
is written at once, and the last error outlives a restart (it is read back from the file).
"""

from __future__ import annotations

import os
import threading
import traceback
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from koppla.core import clock
from koppla.platform.pipeline import health
from koppla.platform.pipeline.health import PipelineHealth

RESTARTS_ENV = "KOPPLA_PIPELINE_RESTARTS"
"""How many times the supervisor has restarted the pipeline (it sets this variable)."""

MAX_ERROR_CHARS = 500


class Heartbeat:
    """The pipeline's health as it runs, written to `path`."""

    def __init__(self, path: Path, *, now: Callable[[], int] = clock.now_ms) -> None:
        self._path, self._now = path, now
        self._lock = threading.Lock()
        started = now()
        previous = health.read(path)
        self._health = PipelineHealth(
            pid=os.getpid(),
            started_ms=started,
            heartbeat_ms=started,
            progress_ms=started,
            last_error=previous.last_error if previous else None,
            last_error_ms=previous.last_error_ms if previous else None,
            restarts=_restarts(),
        )

    @property
    def current(self) -> PipelineHealth:
        """The health as last recorded."""
        with self._lock:
            return self._health

    def progress(self) -> None:
        """Record that a step stored something or found nothing waiting."""
        with self._lock:
            self._health = replace(self._health, progress_ms=self._now())

    def failed(self, error: BaseException) -> None:
        """Record `error` as the last error and write the file at once."""
        with self._lock:
            self._health = replace(
                self._health, last_error=describe(error), last_error_ms=self._now()
            )
        self.write()

    def write(self) -> None:
        """Write the heartbeat file now (one writer at a time: they share a temporary file)."""
        with self._lock:
            self._health = replace(self._health, heartbeat_ms=self._now())
            health.write(self._path, self._health)

    def run(self, stop: threading.Event, every_s: float = 1.0) -> None:
        """Write the file every `every_s` seconds until `stop` is set (a thread's target)."""
        self.write()
        while not stop.wait(every_s):
            self.write()

    def start_every(self, stop: threading.Event, every_s: float = 1.0) -> threading.Thread:
        """Write the file every `every_s` seconds in a daemon thread until `stop` is set."""
        thread = threading.Thread(
            target=self.run, args=(stop, every_s), name="heartbeat", daemon=True
        )
        thread.start()
        return thread


def describe(error: BaseException) -> str:
    """The last line of `error`'s traceback and where it was raised, bounded in length.

    The exception text only: no locals, no environment, nothing from the settings.
    """
    text = traceback.format_exception_only(type(error), error)[-1].strip()
    frames = traceback.extract_tb(error.__traceback__)
    if frames:
        last = frames[-1]
        text += f" (at {Path(last.filename).name}:{last.lineno} in {last.name})"
    return text[:MAX_ERROR_CHARS]


def _restarts() -> int:
    try:
        return max(0, int(os.environ.get(RESTARTS_ENV, "0")))
    except ValueError:
        return 0
