"""The heartbeat file says who runs the pipeline, when it last progressed and what last failed."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from koppla.platform.pipeline import health
from koppla.platform.pipeline.heartbeat import RESTARTS_ENV, Heartbeat, describe


class Clock:
    def __init__(self) -> None:
        self.ms = 1_000

    def __call__(self) -> int:
        return self.ms


def boom() -> None:
    raise OSError("disk full")


def test_progress_and_errors_are_written_and_the_error_outlives_a_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, now = tmp_path / "health.json", Clock()
    monkeypatch.setenv(RESTARTS_ENV, "3")
    beat = Heartbeat(path, now=now)
    beat.write()
    now.ms = 2_000
    beat.progress()
    now.ms = 3_000
    try:
        boom()
    except OSError as error:
        beat.failed(error)
    written = health.read(path)
    assert written is not None
    assert (written.pid, written.restarts) == (os.getpid(), 3)
    assert (written.started_ms, written.progress_ms, written.heartbeat_ms) == (1_000, 2_000, 3_000)
    assert written.last_error_ms == 3_000
    assert written.last_error is not None
    assert written.last_error.startswith("OSError: disk full (at test_heartbeat.py:")

    monkeypatch.setenv(RESTARTS_ENV, "4")
    now.ms = 9_000
    Heartbeat(path, now=now).write()
    after = health.read(path)
    assert after is not None
    assert (after.started_ms, after.restarts) == (9_000, 4)
    assert (after.last_error, after.last_error_ms) == (written.last_error, 3_000)


def test_a_missing_or_bad_restart_count_reads_as_zero(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(RESTARTS_ENV, "many")
    assert Heartbeat(tmp_path / "h.json").current.restarts == 0
    monkeypatch.delenv(RESTARTS_ENV)
    assert Heartbeat(tmp_path / "h.json").current.restarts == 0


def test_the_heartbeat_thread_keeps_writing_until_stopped(tmp_path: Path) -> None:
    path, now = tmp_path / "health.json", Clock()
    beat = Heartbeat(path, now=now)
    stop = threading.Event()
    thread = beat.start_every(stop, 0.01)
    seen: set[int] = set()
    for ms in range(2_000, 4_000):  # up to ~10 s on a busy machine
        now.ms = ms
        written = health.read(path)
        if written is not None:
            seen.add(written.heartbeat_ms)
        if len(seen) >= 3:
            break
        threading.Event().wait(0.005)
    stop.set()
    thread.join()
    assert len(seen) >= 3


def test_an_error_is_described_by_its_last_traceback_line_and_bounded() -> None:
    assert describe(ValueError("x" * 2_000)).startswith("ValueError: xxx")
    assert len(describe(ValueError("x" * 2_000))) == 500
