"""Whether what the edge accepts is being stored: the verdict behind `GET /api/v1/health`.

Healthy means the pipeline's heartbeat is fresh and, if anything waits in the spool, the
pipeline made progress within `pipeline_stall_s`. Without a heartbeat file the answer depends on
whether this server runs a pipeline beside it (`koppla up`): then the pipeline is given
`STARTUP_GRACE_S` to write its first heartbeat, after which its silence is an outage. A server
that runs no pipeline of its own (an app built in a test) is healthy until a heartbeat says
otherwise.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from koppla.platform.pipeline.health import PipelineHealth

HEARTBEAT_FRESH_S = 10.0
"""A heartbeat older than this means the pipeline process is not running."""
STARTUP_GRACE_S = 30.0
"""How long a freshly started server waits for its pipeline's first heartbeat."""

PipelineState = Literal["running", "starting", "unsupervised", "down", "stalled"]


@dataclass(frozen=True, slots=True)
class Watch:
    """What the server knows of its pipeline besides the heartbeat file."""

    since_ms: int
    """When the server started (epoch milliseconds)."""
    supervised: bool = False
    """True when a pipeline process runs beside this server (`koppla up`)."""


@dataclass(frozen=True, slots=True)
class Verdict:
    """The health check's answer: healthy or not, the pipeline's state, and why."""

    healthy: bool
    pipeline: PipelineState
    reason: str | None = None


def verdict(
    health: PipelineHealth | None,
    backlog_bytes: Callable[[], int],
    watch: Watch,
    *,
    now_ms: int,
    stall_s: float,
) -> Verdict:
    """Judge the pipeline from its last heartbeat; `backlog_bytes` is asked only when needed."""
    if health is None:
        return _without_heartbeat(watch, now_ms)
    up_s = _age_s(now_ms, watch.since_ms)
    if watch.supervised and health.heartbeat_ms < watch.since_ms and up_s < STARTUP_GRACE_S:
        return Verdict(True, "starting")  # the heartbeat is a previous run's
    suffix = _last_error(health, now_ms)
    silent_s = _age_s(now_ms, health.heartbeat_ms)
    if silent_s > HEARTBEAT_FRESH_S:
        reason = f"pipeline not running (last heartbeat {silent_s:.0f} s ago){suffix}"
        return Verdict(False, "down", reason)
    still_s = _age_s(now_ms, health.progress_ms)
    if still_s > stall_s:
        waiting = backlog_bytes()
        if waiting > 0:
            reason = f"backlog of {waiting} bytes has not moved for {still_s:.0f} s{suffix}"
            return Verdict(False, "stalled", reason)
    return Verdict(True, "running")


def _without_heartbeat(watch: Watch, now_ms: int) -> Verdict:
    if not watch.supervised:
        return Verdict(True, "unsupervised")
    up_s = _age_s(now_ms, watch.since_ms)
    if up_s < STARTUP_GRACE_S:
        return Verdict(True, "starting")
    reason = f"pipeline not running (no heartbeat since the server started {up_s:.0f} s ago)"
    return Verdict(False, "down", reason)


def _last_error(health: PipelineHealth, now_ms: int) -> str:
    if health.last_error is None:
        return ""
    if health.last_error_ms is None:
        return f"; last error: {health.last_error}"
    return f"; last error {_age_s(now_ms, health.last_error_ms):.0f} s ago: {health.last_error}"


def _age_s(now_ms: int, then_ms: int) -> float:
    return max(0.0, (now_ms - then_ms) / 1000)
