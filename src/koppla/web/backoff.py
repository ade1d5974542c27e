"""How long the supervisor waits before restarting a child that died: exponential, capped."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class Backoff:
    """Delays of 1 s, 2 s, 4 s … up to `cap_s`; back to `first_s` once a child stayed up.

    A child that ran for `reset_after_s` or longer before dying is taken to have recovered, so
    its next restart is quick again.
    """

    first_s: float = 1.0
    cap_s: float = 60.0
    reset_after_s: float = 60.0
    failures: int = 0
    """Deaths in a row, each after less than `reset_after_s` of uptime."""

    def delay_s(self, uptime_s: float) -> float:
        """The wait before the next start of a child that died after `uptime_s` seconds."""
        if uptime_s >= self.reset_after_s:
            self.failures = 0
        delay = min(self.cap_s, self.first_s * 2.0 ** min(self.failures, 32))
        self.failures += 1
        return delay
