"""The connector's state: small per order, delivered messages counted not kept, and an older
connector's state file migrated on open (resumable after kill -9)."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from koppla.connector.demo_store import DemoShop, create_demo_schema
from koppla.connector.events import SHIPMENT_COMPLETED, EventContext, history
from koppla.connector.runner import Connector
from koppla.connector.settings import ConnectorSettings, load_settings
from koppla.connector.snapshot import build_snapshot, snapshot_hash
from koppla.connector.source import StoreSource, connect
from koppla.connector.state import FeedCommit, State
from koppla.core import codec

T0 = datetime(2026, 3, 1, 8, 0)
CTX = EventContext("base", "env-1")

OLD_SCHEMA = """
CREATE TABLE cursor (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE snapshot (
  order_id INTEGER PRIMARY KEY, website TEXT NOT NULL, hash TEXT NOT NULL, doc BLOB NOT NULL,
  synced_ms INTEGER NOT NULL
);
CREATE TABLE outbox (
  seq INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT NOT NULL UNIQUE, order_id INTEGER NOT NULL,
  website TEXT NOT NULL, event_type TEXT NOT NULL, body BLOB NOT NULL,
  status TEXT NOT NULL DEFAULT 'pending', attempts INTEGER NOT NULL DEFAULT 0, error TEXT,
  created_ms INTEGER NOT NULL, sent_ms INTEGER, target TEXT NOT NULL DEFAULT 'events',
  customer_id INTEGER
);
CREATE INDEX outbox_status ON outbox (status, seq);
"""
"""The state file of the connector before this one (whole snapshots, delivered rows kept)."""


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def settings_for(home: Path, dsn: str) -> ConnectorSettings:
    site = {
        "website_code": "base",
        "org_id": "KOPPLADEMO00000000000000@AdobeOrg",
        "datastream_id": "ds",
        "dataset_id": "set",
        "environment_id": "env-1",
    }
    return load_settings(
        home,
        source_dsn=dsn,
        change_tracking="poll",
        platform_url="http://127.0.0.1:9",
        websites=[site],
    )


def shop_with_lives(tmp_path: Path) -> tuple[str, dict[str, int]]:
    """A demo shop with an order in each life: placed, complete, closed, canceled, invoiced."""
    dsn = f"sqlite:///{tmp_path / 'shop.sqlite'}"
    engine = connect(dsn)
    create_demo_schema(engine)
    shop = DemoShop(engine, seed=31)
    orders = {
        life: shop.place(at(0)) for life in ("placed", "complete", "closed", "canceled", "invoiced")
    }
    for life in ("complete", "closed", "invoiced"):
        shop.act(orders[life], "invoice", at(1))
    for life in ("complete", "closed"):
        shop.act(orders[life], "ship", at(5))
    shop.act(orders["closed"], "refund", at(9))
    shop.act(orders["canceled"], "cancel", at(2))
    engine.dispose()
    return dsn, orders


def write_old_state(path: Path, dsn: str, orders: dict[str, int]) -> dict[str, Any]:
    """The state the old connector left: a whole snapshot per order (without the trail, which it
    did not read), every event it derived delivered and kept as `sent`, one refused, one
    pending. The closed order's complete state passed between two looks: no ShipmentCompleted."""
    engine = connect(dsn)
    rows = StoreSource(engine).read(sorted(orders.values()))
    engine.dispose()
    closed = orders.get("closed")
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path)
    db.executescript(OLD_SCHEMA)
    sent = 0
    for oid, order_rows in rows.items():
        doc = build_snapshot(order_rows)
        del doc["statusHistory"]
        db.execute(
            "INSERT INTO snapshot VALUES (?, 'base', ?, ?, 1)",
            (oid, snapshot_hash(doc), codec.dumps(doc)),
        )
        for event in history(doc, CTX):
            if oid == closed and event["eventType"] == SHIPMENT_COMPLETED:
                continue
            db.execute(
                "INSERT INTO outbox (event_id, order_id, website, event_type, body, status, "
                "created_ms, sent_ms) VALUES (?, ?, 'base', ?, ?, 'sent', 1, 2)",
                (event["_id"], oid, event["eventType"], codec.dumps(event)),
            )
            sent += 1
    for event_id, status in (("refused-1", "failed"), ("waiting-1", "pending")):
        db.execute(
            "INSERT INTO outbox (event_id, order_id, website, event_type, body, status, error, "
            "created_ms) VALUES (?, 0, 'base', 'commerce.backofficeOrderPlaced', ?, ?, ?, 3)",
            (
                event_id,
                codec.dumps({"_id": event_id}),
                status,
                "400: no" if status == "failed" else None,
            ),
        )
    db.execute("INSERT INTO cursor VALUES ('initial_sync_done', '1')")
    db.commit()
    db.close()
    return {"sent": sent}


def test_an_old_state_becomes_small_marks_and_sends_only_what_it_missed(tmp_path: Path) -> None:
    dsn, orders = shop_with_lives(tmp_path)
    settings = settings_for(tmp_path / "home", dsn)
    old = write_old_state(settings.state_path, dsn, orders)
    connector = Connector(settings)
    try:
        state = connector.state
        tables = {
            r[0] for r in state._file.all("SELECT name FROM sqlite_master WHERE type='table'")
        }
        assert "snapshot" not in tables
        marks = state.orders(orders.values())
        assert {life: sorted(k[0] for k in marks[oid].emitted) for life, oid in orders.items()} == {
            "placed": ["P"],
            "complete": ["C", "I", "P", "S"],
            "closed": ["I", "M", "P", "S"],  # its ShipmentCompleted may never have been sent
            "canceled": ["P", "X"],
            "invoiced": ["I", "P"],
        }
        backlog = state.backlog()
        assert (backlog.sent, backlog.failed, backlog.pending) == (old["sent"], 1, 1)
        assert state.failed() == [("refused-1", "commerce.backofficeOrderPlaced", "400: no")]
        report = connector.reindex()
        pending = [(e.order_id, e.event_type, e.body.get("timestamp")) for e in state.pending(100)]
    finally:
        connector.close()
    assert report.events == 1
    assert pending == [
        (0, "commerce.backofficeOrderPlaced", None),  # the one the old connector left waiting
        (orders["closed"], SHIPMENT_COMPLETED, "2026-03-01T13:00:00.000Z"),  # when it shipped
    ]


def test_a_migration_killed_midway_resumes_to_the_same_state(tmp_path: Path) -> None:
    dsn, lives = shop_with_lives(tmp_path)
    engine = connect(dsn)
    DemoShop(engine, seed=32).generate(40)
    engine.dispose()
    engine = connect(dsn)
    every = [i for ids in StoreSource(engine).order_ids(["base"]) for i in ids]
    engine.dispose()
    killed, clean = tmp_path / "killed" / "state.sqlite", tmp_path / "clean" / "state.sqlite"
    write_old_state(killed, dsn, {**lives, **{str(i): i for i in every}})
    write_old_state(clean, dsn, {**lives, **{str(i): i for i in every}})
    script = (
        "import os, signal, sys\n"
        "from pathlib import Path\n"
        "import koppla.connector.state as st\n"
        "st.MIGRATE_BATCH = 7\n"
        "step = st.State._migrate_batch\n"
        "done = []\n"
        "def dying(self):\n"
        "    n = step(self)\n"
        "    done.append(n)\n"
        "    if len(done) == 3:\n"
        "        os.kill(os.getpid(), signal.SIGKILL)\n"
        "    return n\n"
        "st.State._migrate_batch = dying\n"
        "st.State(Path(sys.argv[1]))\n"
    )
    run = subprocess.run([sys.executable, "-c", script, str(killed)], check=False)
    assert run.returncode == -signal.SIGKILL
    with sqlite3.connect(killed) as db:
        left = db.execute("SELECT count(*) FROM snapshot").fetchone()[0]
        moved = db.execute("SELECT count(*) FROM order_feed").fetchone()[0]
    assert (moved, left) == (21, len(every) - 21)  # three batches of 7 made it, the rest waits

    def content(path: Path) -> tuple[list[Any], Any]:
        state = State(path)
        try:
            marks = state._file.all(
                "SELECT order_id, website, hash, emitted FROM order_feed ORDER BY 1"
            )
            return marks, state.backlog()
        finally:
            state.close()

    assert content(killed) == content(clean)
    assert len(content(killed)[0]) == len(every)


def test_the_space_of_old_snapshots_is_given_back(tmp_path: Path) -> None:
    dsn, _lives = shop_with_lives(tmp_path)
    engine = connect(dsn)
    DemoShop(engine, seed=33).generate(300)
    every = [i for ids in StoreSource(engine).order_ids(["base"]) for i in ids]
    engine.dispose()
    path = tmp_path / "state.sqlite"
    write_old_state(path, dsn, {str(i): i for i in every})
    before = path.stat().st_size
    State(path).close()
    after = sum(p.stat().st_size for p in tmp_path.glob("state.sqlite*"))
    assert after < before / 4, (before, after)


def test_the_file_shrinks_once_a_large_backlog_is_delivered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("koppla.connector.state.GIVE_BACK_PAGES", 64)
    path = tmp_path / "state.sqlite"
    state = State(path)
    body = {"_id": "", "eventType": "commerce.backofficeOrderPlaced", "pad": "x" * 3000}
    events = [(n, "base", {**body, "_id": f"e-{n}"}) for n in range(2000)]
    state.commit(FeedCommit(events=events))
    full = state._file.one("PRAGMA page_count")
    state.mark_sent([e.seq for e in state.pending(5000)])
    shrunk = state._file.one("PRAGMA page_count")
    assert full and shrunk and shrunk[0] < full[0] / 10, (full, shrunk)
    assert state.backlog().sent == 2000
    state.close()


def test_a_migrated_closed_order_gets_its_missed_event_without_a_reindex(tmp_path: Path) -> None:
    dsn, orders = shop_with_lives(tmp_path)
    settings = settings_for(tmp_path / "home", dsn)
    write_old_state(settings.state_path, dsn, orders)
    with sqlite3.connect(settings.state_path) as db:  # the old connector had seen every change
        db.execute("INSERT INTO cursor VALUES ('poll_timestamp', '2026-03-05T00:00:00')")
    connector = Connector(settings)
    try:
        assert connector.state.unhashed_orders() == [orders["closed"]]
        first = connector.step()
        connector.step()  # looked at once: nothing more
        pending = [
            (e.order_id, e.event_type, e.body.get("timestamp"))
            for e in connector.state.pending(100)
        ]
        assert connector.state.unhashed_orders() == []
    finally:
        connector.close()
    assert first.sync.changed == 1
    assert pending == [
        (0, "commerce.backofficeOrderPlaced", None),  # the one the old connector left waiting
        (orders["closed"], SHIPMENT_COMPLETED, "2026-03-01T13:00:00.000Z"),
    ]


def test_a_reader_opens_an_old_state_file_without_changing_it(tmp_path: Path) -> None:
    dsn, orders = shop_with_lives(tmp_path)
    path = tmp_path / "state.sqlite"
    old = write_old_state(path, dsn, orders)
    reader = State(path, maintain=False)
    try:
        backlog = reader.backlog()
    finally:
        reader.close()
    assert (backlog.sent, backlog.failed, backlog.pending) == (old["sent"], 1, 1)
    with sqlite3.connect(path) as db:
        left = db.execute("SELECT count(*) FROM snapshot").fetchone()[0]
        kept = db.execute("SELECT count(*) FROM outbox WHERE status='sent'").fetchone()[0]
    assert (left, kept) == (len(orders), old["sent"])  # migrating is the connector's job


def test_a_state_file_that_cannot_be_compacted_still_opens(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from koppla.core.sqlite import SqliteFile

    class DiskFull(SqliteFile):
        def all(self, sql: str, args: Any = ()) -> list[tuple[Any, ...]]:
            if sql == "VACUUM":
                raise sqlite3.OperationalError("database or disk is full")
            return super().all(sql, args)

    dsn, orders = shop_with_lives(tmp_path)
    path = tmp_path / "state.sqlite"
    write_old_state(path, dsn, orders)
    monkeypatch.setattr("koppla.connector.state.SqliteFile", DiskFull)
    with caplog.at_level("WARNING", logger="koppla.connector.state"):
        state = State(path)
    assert "not compacted" in caplog.text and "disk is full" in caplog.text
    assert set(state.orders(orders.values())) == set(orders.values())  # migrated all the same
    state.close()
    monkeypatch.undo()
    state = State(path)  # the next open compacts it
    assert state._file.one("PRAGMA auto_vacuum") == (2,)
    state.close()


def test_processes_opening_an_old_state_at_once_migrate_it_once(tmp_path: Path) -> None:
    dsn, _lives = shop_with_lives(tmp_path)
    engine = connect(dsn)
    DemoShop(engine, seed=34).generate(60)
    every = [i for ids in StoreSource(engine).order_ids(["base"]) for i in ids]
    engine.dispose()
    path, clean = tmp_path / "racy" / "state.sqlite", tmp_path / "clean" / "state.sqlite"
    write_old_state(path, dsn, {str(i): i for i in every})
    write_old_state(clean, dsn, {str(i): i for i in every})
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "import koppla.connector.state as st\n"
        "st.MIGRATE_BATCH = 3\n"
        "st.State(Path(sys.argv[1]), maintain=sys.argv[2] == 'yes').close()\n"
    )
    runs = [
        subprocess.Popen([sys.executable, "-c", script, str(path), maintain])
        for maintain in ("yes", "yes", "yes", "no", "no")
    ]
    assert [run.wait(timeout=120) for run in runs] == [0] * len(runs)

    def content(path: Path) -> tuple[list[Any], Any]:
        state = State(path)
        try:
            marks = state._file.all(
                "SELECT order_id, website, hash, emitted FROM order_feed ORDER BY 1"
            )
            return marks, state.backlog()
        finally:
            state.close()

    assert content(path) == content(clean)
    assert len(content(path)[0]) == len(every)
