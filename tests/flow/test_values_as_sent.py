"""Nothing is changed on the way in: date-times read back through SQL exactly as they were sent.

Date-time columns hold the instant (UTC), so SQL orders and filters by time;
`_koppla.datetimes` keeps the text of every date-time sent in another form than
`YYYY-MM-DDTHH:MM:SS.sssZ`, such as the shopper's offset in `placeContext.localTime`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake

from koppla.core import codec
from koppla.core.layout import Layout
from koppla.platform.catalog.demo import DEMO_DATASTREAM_ID, ensure_demo
from koppla.platform.catalog.store import Catalog
from koppla.platform.datasets.tables import dataset_arrow_schema
from koppla.xdm.registry import builtin_registry
from tests.server import Koppla, free_port

pytestmark = pytest.mark.slow

# (timestamp as sent, placeContext.localTime as sent): every pair names one instant.
SENT = [
    ("2026-12-04T16:56:45.187Z", "2026-12-04T17:56:45.187+01:00"),
    ("2026-12-04T16:56:45.187Z", "2026-12-04T22:26:45.187+05:30"),
    ("2026-12-04T16:56:45.187Z", "2026-12-04T11:26:45.187-05:30"),
    ("2026-12-04T16:56:45.187+00:00", "2026-12-04T16:56:45.187+00:00"),
    ("2026-12-04T16:56:45Z", "2026-12-04T17:56:45+01:00"),
    ("2026-12-04T16:56:45.187123Z", "2026-12-04T17:56:45.187123+01:00"),
    ("2026-12-04t16:56:45.187z", "2026-12-04T16:56:45.187Z"),
]

# What was sent, per field: the kept text, or else the canonical rendering of the instant.
AS_SENT = """
SELECT web.webPageDetails.name AS n,
  coalesce(_koppla.datetimes['timestamp'],
           strftime(timestamp AT TIME ZONE 'UTC', '%Y-%m-%dT%H:%M:%S.%gZ')),
  coalesce(_koppla.datetimes['placeContext.localTime'],
           strftime(placeContext.localTime AT TIME ZONE 'UTC', '%Y-%m-%dT%H:%M:%S.%gZ'))
FROM demo_events ORDER BY n
"""


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def koppla(home: Path) -> Iterator[Koppla]:
    server = Koppla(home, free_port())
    yield server
    server.stop()


def _event(n: int, timestamp: str, local_time: str) -> dict[str, Any]:
    return {
        "xdm": {
            "eventType": "web.webpagedetails.pageViews",
            "timestamp": timestamp,
            "placeContext": {"localTime": local_time},
            "web": {"webPageDetails": {"name": f"page-{n}", "URL": f"https://shop.test/{n}"}},
        }
    }


def _send(koppla: Koppla, events: list[dict[str, Any]]) -> None:
    response = httpx.post(
        f"{koppla.url}/ee/v1/interact?configId={DEMO_DATASTREAM_ID}",
        content=codec.dumps({"events": events}),
        headers={"content-type": "text/plain"},
        timeout=30,
    )
    assert response.status_code == 200, response.text


def _query(koppla: Koppla, token: str, sql: str) -> list[list[Any]]:
    response = httpx.post(
        f"{koppla.url}/api/v1/query",
        json={"sql": sql},
        headers={"authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    rows: list[list[Any]] = response.json()["rows"]
    return rows


def _wait_for(koppla: Koppla, token: str, sql: str, count: int) -> None:
    """Poll until `sql` (a count) reaches `count`: the pipeline runs in the server."""
    deadline = time.monotonic() + 60
    while _query(koppla, token, sql) != [[count]]:
        assert time.monotonic() < deadline, f"{sql} never reached {count}"
        time.sleep(0.2)


def test_date_times_read_back_exactly_as_sent(koppla: Koppla) -> None:
    koppla.start()
    token = koppla.token()
    _send(koppla, [_event(n, *pair) for n, pair in enumerate(SENT)])
    _wait_for(koppla, token, "SELECT count(*) FROM demo_events", len(SENT))

    rows = _query(koppla, token, AS_SENT)
    assert rows == [[f"page-{n}", *pair] for n, pair in enumerate(SENT)]
    kept = _query(
        koppla, token, "SELECT _koppla.datetimes FROM demo_events ORDER BY web.webPageDetails.name"
    )
    assert kept[0] == [{"placeContext.localTime": SENT[0][1]}]
    assert kept[4] == [{"timestamp": SENT[4][0], "placeContext.localTime": SENT[4][1]}]
    instants = _query(
        koppla, token, "SELECT DISTINCT placeContext.localTime FROM demo_events ORDER BY 1"
    )
    assert instants == [
        ["2026-12-04T16:56:45Z"],
        ["2026-12-04T16:56:45.187000Z"],
        ["2026-12-04T16:56:45.187123Z"],
    ]


def test_the_quarantine_keeps_the_record_as_sent(koppla: Koppla) -> None:
    koppla.start()
    token = koppla.token()
    bad = _event(0, "2026-12-04T17:56:45.187+01:00", "2026-12-04T11:26:45.187-05:30")
    bad["xdm"]["web"]["webPageDetails"]["pageViews"] = {"value": "one"}
    _send(koppla, [bad])
    _wait_for(koppla, token, "SELECT count(*) FROM quarantine", 1)

    [[record]] = _query(koppla, token, "SELECT record FROM quarantine")
    held = codec.loads(record)
    assert held["timestamp"] == "2026-12-04T17:56:45.187+01:00"
    assert held["placeContext"]["localTime"] == "2026-12-04T11:26:45.187-05:30"


def test_a_dataset_written_before_datetimes_existed_takes_new_events(
    home: Path, koppla: Koppla
) -> None:
    home.mkdir(parents=True)
    layout = Layout(home)
    catalog = Catalog(layout.catalog)
    dataset = catalog.dataset(ensure_demo(catalog).event_dataset_id)
    catalog.close()
    current = dataset_arrow_schema(builtin_registry().get(dataset.schema_id))
    old = pa.schema([field for field in current if field.name != "_datetimes"])
    path = layout.dataset(dataset.id)
    path.mkdir(parents=True)
    DeltaTable.create(str(path), schema=old)
    before = {"_id": "before", "timestamp": datetime(2026, 12, 3, tzinfo=UTC), "_batch_id": "b-0"}
    write_deltalake(str(path), pa.Table.from_pylist([before], schema=old), mode="append")

    koppla.start()
    token = koppla.token()
    _send(koppla, [_event(0, *SENT[0])])
    _wait_for(koppla, token, "SELECT count(*) FROM demo_events", 2)
    sql = "SELECT _koppla.datetimes['placeContext.localTime'] FROM demo_events ORDER BY timestamp"
    assert _query(koppla, token, sql) == [[None], [SENT[0][1]]]
