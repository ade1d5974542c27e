"""The pipeline workers' shared state on a real PostgreSQL: leases, cursors, id claims."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import psycopg
import pytest

from koppla.platform.pipeline.shared import Leases, SharedState
from koppla.platform.spool.position import START, Position
from tests.require import unavailable

pytestmark = pytest.mark.integration

POSTGRES_URL = os.environ.get(
    "KOPPLA_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
).replace("postgresql+psycopg://", "postgresql://")

PARTITIONS = [f"koppla-spool-{i}" for i in range(4)]


@pytest.fixture
def url() -> Iterator[str]:
    """A URL whose search path is a fresh schema, dropped afterwards."""
    schema = f"koppla_test_{uuid.uuid4().hex[:10]}"
    try:
        admin = psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as error:
        unavailable(f"PostgreSQL unreachable at {POSTGRES_URL}: {error}")
    with admin:
        admin.execute(f"CREATE SCHEMA {schema}")
        joiner = "&" if "?" in POSTGRES_URL else "?"
        try:
            yield f"{POSTGRES_URL}{joiner}options=-csearch_path%3D{schema}"
        finally:
            admin.execute(f"DROP SCHEMA {schema} CASCADE")


def test_the_first_claim_wins_and_a_replay_keeps_its_own(url: str) -> None:
    one, two = SharedState(url, "w1", PARTITIONS), SharedState(url, "w2", PARTITIONS)
    try:
        a, b = one.dedupe("ds"), two.dedupe("ds")
        first, second = str(uuid.uuid4()), str(uuid.uuid4())
        assert a.taken([(first, 10), (second, 11)], owner="p0", done=-1) == set()
        # the same events on another partition: another owner claimed them first
        assert b.taken([(first, 5), (second, 6)], owner="p1", done=-1) == {first, second}
        # p0 crashed before committing and replays: its own claims past `done` are still its own
        assert a.taken([(first, 10), (second, 11)], owner="p0", done=9) == set()
        # once its commit holds position 10, a resend of `first` later on p0 is a duplicate
        assert b.taken([(first, 40)], owner="p0", done=10) == {first}
        # another dataset is another namespace of ids
        assert one.dedupe("other").taken([(first, 1)], owner="p1", done=-1) == set()
        assert a.seen([first, str(uuid.uuid4())]) == {first}
    finally:
        one.close()
        two.close()


def test_one_id_twice_in_a_claim_is_claimed_once(url: str) -> None:
    state = SharedState(url, "w1", PARTITIONS)
    try:
        same = str(uuid.uuid4())
        index = state.dedupe("ds")
        assert index.taken([(same, 3), (same, 4)], owner="p0", done=-1) == set()
        assert index.taken([(same, 3)], owner="p1", done=-1) == {same}
    finally:
        state.close()


def test_batch_ingestion_adds_ids_that_streaming_then_leaves_out(url: str) -> None:
    state = SharedState(url, "w1", PARTITIONS)
    try:
        stored = str(uuid.uuid4())
        index = state.dedupe("ds")
        index.add([stored])
        assert index.taken([(stored, 7)], owner="p0", done=-1) == {stored}
    finally:
        state.close()


def test_cursors_are_shared_and_never_move_back(url: str) -> None:
    one, two = SharedState(url, "w1", PARTITIONS), SharedState(url, "w2", PARTITIONS)
    try:
        assert one.cursors.get("koppla-spool-0") == START
        one.cursors.set("koppla-spool-0", Position(0, 500))
        assert two.cursors.get("koppla-spool-0") == Position(0, 500)
        two.cursors.set("koppla-spool-0", Position(0, 200))  # a worker that lost the partition
        assert one.cursors.get("koppla-spool-0") == Position(0, 500)
        assert one.cursors.all() == {"koppla-spool-0": Position(0, 500)}
    finally:
        one.close()
        two.close()


def test_workers_share_partitions_and_a_survivor_takes_a_dead_workers_share(url: str) -> None:
    first = Leases(url, "w1", PARTITIONS)
    second = Leases(url, "w2", PARTITIONS)
    try:
        assert first.refresh(force=True) == PARTITIONS  # alone: everything
        second.refresh(force=True)  # counts two live workers, finds nothing free
        first.refresh(force=True)  # gives back down to its share of two
        second.refresh(force=True)
        held_1, held_2 = set(first.held()), set(second.held())
        assert len(held_1) == len(held_2) == 2
        assert held_1 | held_2 == set(PARTITIONS)
        assert first.maintenance != second.maintenance  # exactly one moves batches on
        # the first worker's connection dies (its machine is gone): its locks go with it
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_locks "
                "WHERE locktype = 'advisory' AND pid <> pg_backend_pid() AND objid = ANY(%s)",
                ([_objid(name) for name in held_1],),
            )
            admin.execute("DELETE FROM pipeline_workers WHERE worker = 'w1'")
        assert set(second.refresh(force=True)) == set(PARTITIONS)
        # the first worker comes back: its old leases are gone, it shares again
        first.refresh(force=True)
        assert not set(first.held()) & set(second.held())
    finally:
        first.close()
        second.close()


def _objid(name: str) -> int:
    """The advisory lock's second key as pg_locks shows it (an unsigned oid)."""
    import zlib

    return zlib.crc32(name.encode())


def test_a_released_claim_lets_a_corrected_resend_through(url: str) -> None:
    state = SharedState(url, "w1", PARTITIONS)
    try:
        index = state.dedupe("ds")
        event_id = str(uuid.uuid4())
        assert index.taken([(event_id, 3)], owner="p0", done=-1) == set()
        index.release([event_id], owner="p1")  # not its claim: kept
        assert index.taken([(event_id, 9)], owner="p1", done=-1) == {event_id}
        index.release([event_id], owner="p0")  # the record was quarantined, not stored
        assert index.taken([(event_id, 9)], owner="p1", done=-1) == set()
    finally:
        state.close()
