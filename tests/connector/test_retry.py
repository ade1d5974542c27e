"""Retry semantics: which answers are retried, backoff with jitter, `Retry-After` honoured."""

from __future__ import annotations

import random
from email.utils import formatdate

import httpx
import pytest

from koppla.connector.retry import (
    Backoff,
    Rejected,
    Unauthorized,
    Unavailable,
    error_for_status,
    retry_after_seconds,
)
from koppla.core.errors import is_retryable


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_429_and_5xx_are_retried(status: int) -> None:
    error = error_for_status(status, "busy", None)
    assert isinstance(error, Unavailable)
    assert is_retryable(error)


@pytest.mark.parametrize("status", [400, 413, 422])
def test_other_4xx_are_given_up(status: int) -> None:
    error = error_for_status(status, "bad", None)
    assert isinstance(error, Rejected) and error.status == status
    assert not is_retryable(error)


@pytest.mark.parametrize("status", [401, 403, 404])
def test_configuration_errors_are_terminal_but_distinct(status: int) -> None:
    assert isinstance(error_for_status(status, "no", None), Unauthorized)


@pytest.mark.parametrize("status", [200, 207])
def test_success_is_no_error(status: int) -> None:
    assert error_for_status(status, "", None) is None


def test_network_errors_are_retried() -> None:
    assert is_retryable(Unavailable("platform unreachable"))
    assert is_retryable(ConnectionRefusedError())
    assert not isinstance(httpx.ConnectError("x"), Unavailable)  # wrapped by the sender


def test_retry_after_in_seconds_or_as_a_date() -> None:
    assert retry_after_seconds("7") == 7.0
    assert retry_after_seconds(None) is None
    assert retry_after_seconds("soon") is None
    now = 1_800_000_000.0
    assert retry_after_seconds(formatdate(now + 30, usegmt=True), now=now) == pytest.approx(30)
    assert retry_after_seconds(formatdate(now - 30, usegmt=True), now=now) == 0.0
    assert error_for_status(429, "", "12").retry_after == 12.0  # type: ignore[union-attr]


def test_backoff_grows_exponentially_with_jitter_up_to_the_cap() -> None:
    backoff = Backoff(base_s=1.0, cap_s=8.0, rng=random.Random(1))
    delays = [backoff.failed() for _ in range(6)]
    for attempt, delay in enumerate(delays):
        ceiling = min(8.0, 2.0**attempt)
        assert ceiling / 2 <= delay <= ceiling
    assert max(delays) <= 8.0
    assert not backoff.ready()
    backoff.succeeded()
    assert backoff.ready() and backoff.attempts == 0


def test_a_longer_retry_after_wins_over_the_backoff() -> None:
    backoff = Backoff(base_s=0.5, cap_s=30.0, rng=random.Random(2))
    assert backoff.delay(retry_after=20.0) == 20.0
    assert backoff.delay(retry_after=0.01) >= 0.25
