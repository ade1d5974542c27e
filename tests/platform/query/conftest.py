"""Fixtures: a small `demo_events` Delta table in `tmp_path` and an engine over it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from query_events import append_events, event

from koppla.platform.query.engine import QueryEngine


@pytest.fixture
def events_path(tmp_path: Path) -> Path:
    """A Delta table of three events, written out of timestamp order in two commits."""
    path = tmp_path / "demo_events"
    append_events(path, [event(2), event(1, "web.webpagedetails.pageViews")])
    append_events(path, [event(3)])
    return path


@pytest.fixture
def engine(events_path: Path, tmp_path: Path) -> Iterator[QueryEngine]:
    """An engine over `demo_events` plus `later_events`, a table not written yet."""
    tables = {"demo_events": str(events_path), "later_events": str(tmp_path / "later")}
    with QueryEngine(lambda: tables, timeout_s=5, max_rows=100) as query_engine:
        yield query_engine
