"""Token buckets: burst, refill, the wait they announce, and memory that stays bounded."""

from __future__ import annotations

import pytest

from koppla.platform.edge.ratelimit import RateLimiter
from tests.platform.edge.fakes import FakeClock


def test_a_burst_of_two_seconds_passes_then_the_wait_is_announced(fake_clock: FakeClock) -> None:
    limiter = RateLimiter(10)
    assert [limiter.take("a") for _ in range(20)] == [0] * 20
    assert limiter.take("a") == 1
    assert limiter.take("b") == 0  # another key has its own bucket


def test_tokens_refill_at_the_rate(fake_clock: FakeClock) -> None:
    limiter = RateLimiter(10)
    for _ in range(20):
        limiter.take("a")
    fake_clock.advance(0.5)
    assert [limiter.take("a") for _ in range(5)] == [0] * 5
    assert limiter.take("a") == 1


def test_the_wait_covers_the_missing_tokens(fake_clock: FakeClock) -> None:
    limiter = RateLimiter(100)
    assert limiter.take("stream", 200) == 0
    assert limiter.take("stream", 150) == 2  # 150 tokens at 100 a second
    fake_clock.advance(2)
    assert limiter.take("stream", 150) == 0


def test_a_cost_above_the_burst_passes_once_the_bucket_is_full(fake_clock: FakeClock) -> None:
    limiter = RateLimiter(1)
    assert limiter.take("stream", 1000) == 0
    assert limiter.take("stream", 1000) == 2
    fake_clock.advance(2)
    assert limiter.take("stream", 1000) == 0


def test_memory_is_bounded_by_forgetting_idle_buckets_first(fake_clock: FakeClock) -> None:
    limiter = RateLimiter(1, max_keys=100)
    for n in range(100):
        limiter.take(f"idle-{n}")
    fake_clock.advance(5)
    limiter.take("busy")
    assert len(limiter) == 1  # the idle buckets were full again, so forgetting them is free
    for n in range(1000):
        limiter.take(f"flood-{n}")
    assert len(limiter) <= 100


def test_a_rate_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        RateLimiter(0)
