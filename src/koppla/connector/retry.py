"""When to try a platform call again: the error classes, backoff with jitter, `Retry-After`.

One predicate decides retry or give up: `koppla.core.errors.is_retryable`. HTTP answers are
turned into errors here (`error_for_status`), so the predicate sees 429/5xx as `Unavailable`
(transient) and other 4xx as `Rejected` (terminal).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC
from email.utils import parsedate_to_datetime

from koppla.core import clock
from koppla.core.errors import TerminalError, TransientError


class Unavailable(TransientError):
    """The platform cannot take the request now (429, 5xx, network); try again later."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Rejected(TerminalError):
    """The platform refused the request for good (a 4xx other than 429)."""

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message)
        self.status = status


class Unauthorized(Rejected):
    """401/403/404: token, organization or datastream is wrong; the events wait for a fix."""


def retry_after_seconds(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` header (delta seconds or an HTTP date), or None."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    current = clock.now().timestamp() if now is None else now
    return max(0.0, when.timestamp() - current)


def error_for_status(status: int, detail: str, retry_after: str | None) -> Exception | None:
    """The error an HTTP status stands for, or None for success (2xx)."""
    if 200 <= status < 300:
        return None
    message = f"platform answered {status}: {detail[:500]}"
    if status == 429 or status >= 500:
        return Unavailable(message, retry_after=retry_after_seconds(retry_after))
    if status in (401, 403, 404):
        return Unauthorized(message, status=status)
    return Rejected(message, status=status)


@dataclass(slots=True)
class Backoff:
    """Exponential backoff with full jitter, capped; a server's `Retry-After` wins when longer."""

    base_s: float = 0.5
    cap_s: float = 30.0
    attempts: int = 0
    not_before: float = 0.0
    rng: random.Random = field(default_factory=random.Random)

    def delay(self, retry_after: float | None = None) -> float:
        """The wait before the next attempt after one more failure."""
        ceiling = min(self.cap_s, self.base_s * 2.0**self.attempts)
        jittered = ceiling / 2 + self.rng.uniform(0, ceiling / 2)
        return max(jittered, retry_after or 0.0)

    def failed(self, retry_after: float | None = None) -> float:
        """Note a failure; return the delay chosen (the next attempt is not before then)."""
        wait = self.delay(retry_after)
        self.attempts += 1
        self.not_before = clock.monotonic() + wait
        return wait

    def succeeded(self) -> None:
        """Note a success: the next failure starts from the base delay again."""
        self.attempts = 0
        self.not_before = 0.0

    def ready(self) -> bool:
        """True when the next attempt may go now."""
        return clock.monotonic() >= self.not_before
