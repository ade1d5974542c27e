"""The Bloom filter never forgets an id and rarely claims one it never saw."""

from __future__ import annotations

import pytest

from koppla.platform.datasets import bloom
from koppla.platform.datasets.bloom import BloomFilter


def keys(prefix: str, count: int) -> list[bytes]:
    return [f"{prefix}-{n}".encode() for n in range(count)]


def test_every_added_id_is_found_and_few_others_are() -> None:
    added, others = keys("in", 20_000), keys("out", 20_000)
    ids = BloomFilter()
    ids.add(added)
    assert all(key in ids for key in added)
    false_positives = sum(key in ids for key in others)
    assert false_positives <= 2  # 1e-6 expected: about 0.02 of 20,000


def test_a_full_segment_starts_a_larger_one_and_old_ids_stay_found(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(bloom, "FIRST_CAPACITY", 100)
    ids = BloomFilter()
    added = keys("k", 350)
    for start in range(0, 350, 50):
        ids.add(added[start : start + 50])
    assert [(s.capacity, s.count) for s in ids.segments] == [(100, 100), (200, 200), (400, 50)]
    assert all(key in ids for key in keys("k", 350))
    assert ids.nbytes() == sum(len(s.bits) for s in ids.segments)
    assert ids.nbytes() < 700 * 4  # about 3.6 bytes per id of capacity


def test_an_empty_filter_holds_nothing() -> None:
    assert b"x" not in BloomFilter()


def test_a_large_batch_gets_one_segment_sized_for_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bloom, "FIRST_CAPACITY", 100)
    ids = BloomFilter()
    ids.add(keys("k", 1_000))
    assert [(s.capacity, s.count) for s in ids.segments] == [(1_000, 1_000)]


def test_segments_stop_growing_at_their_largest(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bloom, "FIRST_CAPACITY", 100)
    monkeypatch.setattr(bloom, "MAX_CAPACITY", 300)
    ids = BloomFilter()
    for start in range(0, 1_000, 100):
        ids.add(keys(f"k{start}", 100))
    assert [s.capacity for s in ids.segments] == [100, 200, 300, 300, 300]
    assert all(key in ids for start in range(0, 1_000, 100) for key in keys(f"k{start}", 100))
