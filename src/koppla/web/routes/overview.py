"""The overview (`GET /api/v1/overview`): what an organization's admin checks first.

Events per minute by event type over the last hour (from its event datasets), the pipeline's
health, the spool's backlog, how many of its records wait in the quarantine, its newest
batches. The admin page `/admin/` shows the same document.

The events chart reads only the columns `timestamp` and `eventType` of rows whose `timestamp`
falls in the hour; the filter reaches the Delta files' statistics, so older files are skipped
and a big dataset costs what its last hour holds.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from koppla.core import clock
from koppla.platform.catalog.models import Batch
from koppla.platform.pipeline import health as heartbeat
from koppla.platform.query.engine import Scope
from koppla.platform.query.errors import QueryBusy, QueryFailed, QueryTimeout
from koppla.platform.query.result import TableInfo
from koppla.web.auth import Caller, Svc
from koppla.web.liveness import Watch, verdict
from koppla.web.routes.batch_view import batch_metrics
from koppla.web.services import Services
from koppla.web.status import pipeline_state, quarantined, spool_backlog

router = APIRouter(prefix="/api/v1", tags=["overview"])

WINDOW_MINUTES = 60
RECENT_BATCHES = 10
EVENT_COLUMNS = frozenset({"timestamp", "eventType"})
"""The columns that make a dataset an event dataset for the chart."""


@router.get("/overview")
def get_overview(request: Request, svc: Svc, caller: Caller) -> dict[str, Any]:
    """Events per minute by event type over the last hour, pipeline health, spool backlog,
    quarantined records and the newest batches of the caller's organization and sandbox."""
    scope = (caller.org_id, caller.sandbox)
    return overview(svc, scope, watch_of(request), now_ms=clock.now_ms())


def watch_of(request: Request) -> Watch:
    """What the app knows of its pipeline process (for the health verdict)."""
    found: Watch = getattr(request.app.state, "watch", Watch(since_ms=0))
    return found


def overview(svc: Services, scope: Scope, watch: Watch, *, now_ms: int) -> dict[str, Any]:
    """The overview document of `scope` (an organization and sandbox) at `now_ms`."""
    org_id, sandbox = scope
    tables = svc.query.tables_info(scope)
    backlog = sum(s["backlogBytes"] for s in spool_backlog(svc))
    found = verdict(
        heartbeat.read(svc.layout.pipeline_health),
        lambda: backlog,
        watch,
        now_ms=now_ms,
        stall_s=svc.settings.pipeline_stall_s,
    )
    datasets = svc.catalog.datasets(org_id, sandbox)
    batches = svc.catalog.batches(limit=RECENT_BATCHES, org_id=org_id, sandbox=sandbox)
    names = {d.id: d.name for d in datasets}
    return {
        "orgId": org_id,
        "sandbox": sandbox,
        "at": clock.iso_ms(now_ms),
        "health": {
            "status": "ok" if found.healthy else "unavailable",
            "pipeline": found.pipeline,
            "reason": found.reason,
        },
        "pipeline": pipeline_state(svc.layout, now_ms),
        "spoolBacklogBytes": backlog,
        "quarantinedRecords": quarantined(svc, scope, tables),
        "datasets": len(datasets),
        "eventsPerMinute": events_per_minute(svc, scope, tables, now_ms=now_ms),
        "recentBatches": [_batch(b, names.get(b.dataset_id, b.dataset_id)) for b in batches],
    }


def events_per_minute(
    svc: Services, scope: Scope, tables: list[TableInfo], *, now_ms: int
) -> dict[str, Any]:
    """Counts of events per minute and event type over the last `WINDOW_MINUTES` minutes
    (the current minute included), from every event dataset of `scope`.

    `minutes` are the minutes' starts (epoch seconds, oldest first); each series has one count
    per minute. `error` says why the counts could not be read (they are then empty).
    """
    end_s = now_ms // 60_000 * 60 + 60
    start_s = end_s - WINDOW_MINUTES * 60
    minutes = list(range(start_s, end_s, 60))
    shown: dict[str, Any] = {"minutes": minutes, "series": [], "total": 0, "error": None}
    sources = [t.name for t in tables if {c.name for c in t.columns} >= EVENT_COLUMNS]
    if not sources:
        return shown
    sql = _events_sql(sources, start_s, end_s)
    try:
        rows = svc.query.run(sql, scope=scope).rows
    except (QueryFailed, QueryTimeout, QueryBusy) as error:
        return shown | {"error": str(error)}
    counts: dict[str, list[int]] = {}
    for minute, event_type, count in rows:
        series = counts.setdefault(str(event_type), [0] * len(minutes))
        series[(int(minute) - start_s) // 60] += int(count)
    ordered = sorted(counts.items(), key=lambda item: (-sum(item[1]), item[0]))
    shown["series"] = [{"eventType": name, "counts": values} for name, values in ordered]
    shown["total"] = sum(sum(values) for values in counts.values())
    return shown


def _events_sql(sources: list[str], start_s: int, end_s: int) -> str:
    """One query over every event dataset (names are checked SQL identifiers)."""
    start = clock.iso_ms(start_s * 1000)
    end = clock.iso_ms(end_s * 1000)
    parts = [
        f'SELECT "timestamp" AS ts, "eventType" AS event_type FROM "{name}" '
        f"WHERE \"timestamp\" >= TIMESTAMPTZ '{start}' AND \"timestamp\" < TIMESTAMPTZ '{end}'"
        for name in sources
    ]
    return (
        "SELECT CAST(epoch(date_trunc('minute', ts)) AS BIGINT) AS minute, "
        "coalesce(event_type, '(none)') AS event_type, count(*) AS n "
        f"FROM ({' UNION ALL '.join(parts)}) GROUP BY ALL"
    )


def _batch(batch: Batch, dataset_name: str) -> dict[str, Any]:
    return {
        "id": batch.id,
        "datasetId": batch.dataset_id,
        "dataset": dataset_name,
        "status": batch.status,
        "source": batch.source,
        "createdAt": clock.iso_ms(batch.created_ms),
        "completedAt": clock.iso_ms(batch.completed_ms),
        "metrics": batch_metrics(batch),
    }
