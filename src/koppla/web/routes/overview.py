"""The overview (`GET /api/v1/overview`): what an organization's admin checks first.

Events per minute by event type over the last hour (from its event datasets), the pipeline's
health, the spool's backlog, how many of its records wait in the quarantine, its newest
batches. The admin page `/admin/` shows the same document.

The events chart reads only the columns `timestamp` and `eventType` of rows whose `timestamp`
falls in the hour; the filter reaches the Delta files' statistics, so older files are skipped
and a big dataset costs what its last hour holds. It shows the `TOP_EVENT_TYPES` busiest event
types of the hour and counts the rest together as `(other)`, so the answer stays a few thousand
rows however many event types arrive; the total is counted apart and is exact.
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
from koppla.web.status import backlog_total, pipeline_state, quarantined

router = APIRouter(prefix="/api/v1", tags=["overview"])

WINDOW_MINUTES = 60
RECENT_BATCHES = 10
EVENT_COLUMNS = frozenset({"timestamp", "eventType"})
"""The columns that make a dataset an event dataset for the chart."""
TOP_EVENT_TYPES = 20
"""How many event types the chart shows apart; the others are counted as `OTHER`."""
OTHER = "(other)"
NO_TYPE = "(none)"


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
    backlog = backlog_total(svc)
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
    per minute. The `TOP_EVENT_TYPES` busiest event types of the hour have a series each, busiest
    first; the rest are added up in one series `(other)`, last, and `otherEventTypes` says how
    many they are. `total` is every event of the hour. `error` says why the counts could not be
    read (they are then empty) or are incomplete.
    """
    end_s = now_ms // 60_000 * 60 + 60
    start_s = end_s - WINDOW_MINUTES * 60
    minutes = list(range(start_s, end_s, 60))
    shown: dict[str, Any] = {
        "minutes": minutes,
        "series": [],
        "total": 0,
        "otherEventTypes": 0,
        "error": None,
    }
    sources = [t.name for t in tables if {c.name for c in t.columns} >= EVENT_COLUMNS]
    if not sources:
        return shown
    try:
        result = svc.query.run(_events_sql(sources, start_s, end_s), scope=scope)
    except (QueryFailed, QueryTimeout, QueryBusy) as error:
        return shown | {"error": str(error)}
    counts: dict[str | None, list[int]] = {}
    for minute, event_type, count, total, types in result.rows:
        series = counts.setdefault(event_type, [0] * len(minutes))
        series[(int(minute) - start_s) // 60] += int(count)
        shown["total"] = int(total)
        shown["otherEventTypes"] = max(0, int(types) - TOP_EVENT_TYPES)
    other = counts.pop(None, None)
    ordered = sorted(counts.items(), key=lambda item: (-sum(item[1]), item[0]))
    shown["series"] = [{"eventType": name, "counts": values} for name, values in ordered]
    if other is not None:
        shown["series"].append({"eventType": OTHER, "counts": other})
    if result.truncated:
        shown["error"] = (
            f"the chart shows only part of the hour: its counts came to more than "
            f"{len(result.rows)} rows (query_max_rows); the total is complete"
        )
    return shown


def _events_sql(sources: list[str], start_s: int, end_s: int) -> str:
    """One query over every event dataset (names are checked SQL identifiers): rows of
    (minute, event type or NULL for the folded ones, count, the hour's total, how many event
    types the hour had)."""
    start = clock.iso_ms(start_s * 1000)
    end = clock.iso_ms(end_s * 1000)
    parts = [
        f'SELECT "timestamp" AS ts, "eventType" AS event_type FROM "{name}" '
        f"WHERE \"timestamp\" >= TIMESTAMPTZ '{start}' AND \"timestamp\" < TIMESTAMPTZ '{end}'"
        for name in sources
    ]
    return (
        "WITH events AS (SELECT ts, coalesce(event_type, '" + NO_TYPE + "') AS event_type "
        f"FROM ({' UNION ALL '.join(parts)})), "
        "top AS (SELECT event_type FROM events GROUP BY event_type "
        f"ORDER BY count(*) DESC, event_type LIMIT {TOP_EVENT_TYPES}), "
        "hour AS (SELECT count(*) AS total, count(DISTINCT event_type) AS types FROM events), "
        "counted AS (SELECT CAST(epoch(date_trunc('minute', e.ts)) AS BIGINT) AS minute, "
        "t.event_type AS event_type, count(*) AS n "
        "FROM events e LEFT JOIN top t ON e.event_type = t.event_type GROUP BY ALL) "
        "SELECT c.minute, c.event_type, c.n, h.total, h.types FROM counted c CROSS JOIN hour h "
        "ORDER BY c.event_type NULLS LAST, c.minute"
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
