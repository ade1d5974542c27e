from koppla.platform.spool.stream_buffer import PartitionBuffer


def test_a_chunk_that_starts_before_the_offset_asked_for_is_trimmed() -> None:
    buffer = PartitionBuffer(5)
    missing = buffer.accept(3, [b"3", b"4", b"5", b"6"])
    assert missing == 0
    assert buffer.take(5, 1024) == [(5, b"5"), (6, b"6")]
    assert buffer.next == 7


def test_a_chunk_after_the_offset_asked_for_reports_the_records_gone() -> None:
    buffer = PartitionBuffer(0)
    assert buffer.accept(100, [b"100", b"101"]) == 100
    assert buffer.covers(0) and buffer.covers(50)  # served from the first record still there
    assert buffer.take(0, 1024) == [(100, b"100"), (101, b"101")]


def test_records_taken_stay_until_a_read_passes_them() -> None:
    buffer = PartitionBuffer(0)
    buffer.accept(0, [b"a", b"b", b"c"])
    assert buffer.take(0, 2) == [(0, b"a"), (1, b"b")]
    assert buffer.take(1, 1024) == [(1, b"b"), (2, b"c")]  # a reader that used only `a`
    assert not buffer.covers(0)  # passed: reading it again needs a new subscription
    assert buffer.covers(3) and not buffer.covers(4)
    assert buffer.size == 2


def test_a_read_returns_at_least_one_record_however_large() -> None:
    buffer = PartitionBuffer(0)
    buffer.accept(0, [b"x" * 100, b"y"])
    assert buffer.take(0, 10) == [(0, b"x" * 100)]
    assert buffer.has_from(1) and not buffer.has_from(2)
