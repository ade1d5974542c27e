"""`koppla query ... LIMIT 1` exits cleanly every time, with the answer printed.

A scan cut short by LIMIT used to leave Arrow threads reading Delta files through deltalake's
Python file handler while the interpreter shut down: segfaults, aborts and hangs at exit.
"""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake

from koppla.core import codec
from koppla.core.layout import Layout
from koppla.core.settings import Settings
from koppla.platform.catalog.models import Datastream

pytestmark = pytest.mark.slow

SQL = "SELECT eventType FROM demo_events LIMIT 1"
RUNS = 50
JSON_EVERY = 5  # every fifth run asks for --json


@pytest.fixture
def home(settings: Settings, demo: Datastream) -> Path:
    """A home whose `demo_events` holds 1,000 page views written in 20 commits (20 files)."""
    table = Layout(settings.home).dataset(demo.event_dataset_id)
    schema = pa.schema(DeltaTable(table).schema().to_arrow())
    start = datetime(2026, 12, 1, tzinfo=UTC)
    for commit in range(20):
        rows = [
            {
                "_id": f"e-{commit}-{n}",
                "eventType": "web.webpagedetails.pageViews",
                "timestamp": start + timedelta(seconds=commit * 50 + n),
            }
            for n in range(50)
        ]
        write_deltalake(table, pa.Table.from_pylist(rows, schema=schema), mode="append")
    return settings.home


def _query(home: Path, run: int) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "koppla", "query", SQL, "--home", str(home)]
    if run % JSON_EVERY == 0:
        command.append("--json")
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def test_fifty_limit_queries_all_exit_zero_with_the_answer(home: Path) -> None:
    with ThreadPoolExecutor(max_workers=3) as pool:
        done = list(pool.map(lambda run: _query(home, run), range(RUNS)))
    failures = [(run, p.returncode, p.stderr[-300:]) for run, p in enumerate(done) if p.returncode]
    assert failures == []
    for run, process in enumerate(done):
        if run % JSON_EVERY == 0:
            assert codec.loads(process.stdout)["rows"] == [["web.webpagedetails.pageViews"]]
        else:
            assert "web.webpagedetails.pageViews" in process.stdout
            assert "1 row" in process.stdout
