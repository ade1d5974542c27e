"""The state of a Koppla home at a glance: pipeline, datasets, spool backlog, profiles, counters.

What an operator checks first: is the pipeline running and what failed last, is anything waiting
to be stored (spool backlog), did the last batches land, how much was refused (quarantine) or
dropped (consent).
"""

from __future__ import annotations

import logging
from typing import Any

import psycopg

from koppla.core import clock
from koppla.core.layout import Layout
from koppla.core.redact import redact
from koppla.platform.catalog.access import DEFAULT_SANDBOX
from koppla.platform.datasets.location import table_location
from koppla.platform.datasets.quarantine import TABLE_NAME as QUARANTINE
from koppla.platform.pipeline import health
from koppla.platform.pipeline.cursor import Cursors
from koppla.platform.pipeline.shared import worker_states
from koppla.platform.profiles.tail import latest_version
from koppla.platform.query.engine import Scope
from koppla.platform.query.errors import QueryBusy, QueryFailed, QueryTimeout
from koppla.platform.query.result import TableInfo
from koppla.platform.spool.backlog import oldest_waiting_ms, waiting_bytes
from koppla.web.liveness import HEARTBEAT_FRESH_S
from koppla.web.services import Services

log = logging.getLogger(__name__)


def spool_backlog(services: Services) -> list[dict[str, Any]]:
    """Per spool stream: bytes accepted but not yet stored, and how long the oldest of them
    has waited (`lagS`, 0 when nothing waits)."""
    if services.log_backlog is not None:  # the shared log: records, as last measured
        records = services.log_backlog.waiting()
        return [{"stream": name, "backlogRecords": n, "lagS": None} for name, n in records.items()]
    layout = services.layout
    cursors = Cursors(layout.pipeline_state / "cursors.json")
    now = clock.now_ms()
    streams = []
    for stream, waiting in waiting_bytes(layout.spool, cursors.get).items():
        oldest = oldest_waiting_ms(layout.spool, stream, cursors.get(stream)) if waiting else None
        lag = 0.0 if oldest is None else max(0.0, (now - oldest) / 1000)
        streams.append({"stream": stream, "backlogBytes": waiting, "lagS": round(lag, 1)})
    return streams


def backlog_total(services: Services) -> int:
    """Bytes accepted but not yet stored, every stream together (what backpressure bounds);
    with a shared log, records."""
    if services.log_backlog is not None:
        return services.log_backlog.total()
    cursors = Cursors(services.layout.pipeline_state / "cursors.json")
    return sum(waiting_bytes(services.layout.spool, cursors.get).values())


def pipeline_state(layout: Layout, now_ms: int) -> dict[str, Any]:
    """The pipeline as its heartbeat file tells it: running or not, last error, restarts.

    Every value but `running` is None before the pipeline's first heartbeat.
    """
    beat = health.read(layout.pipeline_health)
    if beat is None:
        return dict.fromkeys(_PIPELINE_KEYS) | {"running": False}
    age_s = max(0.0, (now_ms - beat.heartbeat_ms) / 1000)
    return {
        "running": age_s <= HEARTBEAT_FRESH_S,
        "pid": beat.pid,
        "startedAt": clock.iso_ms(beat.started_ms),
        "heartbeatAt": clock.iso_ms(beat.heartbeat_ms),
        "heartbeatAgeS": round(age_s, 1),
        "progressAt": clock.iso_ms(beat.progress_ms),
        "lastError": beat.last_error,
        "lastErrorAt": clock.iso_ms(beat.last_error_ms),
        "restarts": beat.restarts,
    }


def describe_pipeline(state: dict[str, Any]) -> list[str]:
    """`pipeline_state` (or, with a shared log, the workers) as lines for a terminal."""
    if "workers" in state:
        if state["workers"] is None:
            return [f"pipeline workers: unknown ({state.get('lastError') or 'not shown'})"]
        if not state["workers"]:
            return ["pipeline workers: none has started"]
        return [
            f"pipeline worker {w['worker']}: {'live' if w['live'] else 'GONE'}, last heartbeat "
            f"{w['heartbeatAgeS']:.0f} s ago, reading {', '.join(w['partitions']) or 'nothing'}"
            for w in state["workers"]
        ]
    if state["heartbeatAt"] is None:
        return ["pipeline: no heartbeat yet (not started)"]
    running = "running" if state["running"] else "NOT RUNNING"
    lines = [
        f"pipeline: {running} (pid {state['pid']}, last heartbeat {state['heartbeatAgeS']:.0f} s "
        f"ago, restarted {state['restarts']} times)"
    ]
    if state["lastError"] is not None:
        lines.append(f"pipeline last error at {state['lastErrorAt']}: {state['lastError']}")
    return lines


_PIPELINE_KEYS = (
    "pid",
    "startedAt",
    "heartbeatAt",
    "heartbeatAgeS",
    "progressAt",
    "lastError",
    "lastErrorAt",
    "restarts",
)


def profiles_state(services: Services) -> dict[str, Any]:
    """The profile store's size, how many commits of each profile-enabled dataset wait, and
    when the profile stage last made a pass (`lastPassAgeS` grows while it is down)."""
    cursors = services.profiles.cursors()
    tables = table_location(services.settings)
    waiting = {}
    for dataset in services.catalog.datasets():
        if dataset.profile_enabled:
            latest = latest_version(tables.table(dataset.id), tables.storage_options())
            waiting[dataset.name] = max(0, latest - cursors.get(dataset.id, -1))
    beat = services.layout.profiles_beat
    last = int(beat.stat().st_mtime * 1000) if beat.exists() else None
    age = None if last is None else round(max(0, clock.now_ms() - last) / 1000, 1)
    return {
        **services.profiles.summary(),
        "commitsWaiting": waiting,
        "lastPassAt": clock.iso_ms(last),
        "lastPassAgeS": age,
    }


def quarantined(services: Services, scope: Scope, tables: list[TableInfo]) -> int | None:
    """How many of the scope's records are in the quarantine (None when it cannot be read)."""
    if QUARANTINE not in {t.name for t in tables}:
        return 0
    try:
        rows = services.query.run(f"SELECT count(*) FROM {QUARANTINE}", scope=scope).rows
    except (QueryFailed, QueryTimeout, QueryBusy):
        return None
    return int(rows[0][0])


def status(
    services: Services, org_id: str | None = None, sandbox: str = DEFAULT_SANDBOX
) -> dict[str, Any]:
    """A JSON-ready overview of the pipeline, datasets, batches, spool and counters; with
    `org_id`, of that organization's datasets (in `sandbox`) and datastreams only, and of the
    profile store only when it is that organization's."""
    scope = None if org_id is None else (org_id, sandbox)
    tables = services.query.tables_info(scope)
    counts = {t.name: t.row_count for t in tables}
    datasets = []
    for dataset in services.catalog.datasets(org_id, None if org_id is None else sandbox):
        last = services.catalog.batches(dataset_id=dataset.id, limit=1)
        datasets.append(
            {
                "name": dataset.name,
                "id": dataset.id,
                "rows": counts.get(dataset.name),
                "profileEnabled": dataset.profile_enabled,
                "lastBatch": None
                if not last
                else {
                    "id": last[0].id,
                    "status": last[0].status,
                    "records": last[0].records,
                    "failedRecords": last[0].failed_records,
                    "at": clock.iso_ms(last[0].completed_ms or last[0].created_ms),
                },
            }
        )
    return {
        "pipeline": _pipeline(services, _owns_profiles(services, scope)),
        "datasets": datasets,
        "quarantinedRecords": (
            counts.get(QUARANTINE) if scope is None else quarantined(services, scope, tables)
        ),
        "spool": spool_backlog(services),
        "profiles": profiles_state(services) if _owns_profiles(services, scope) else None,
        "datastreams": [
            {"id": s.id, "orgId": s.org_id, "counters": services.catalog.counters(s.id)}
            for s in services.catalog.datastreams(org_id, None if org_id is None else sandbox)
        ],
    }


def _pipeline(services: Services, operator: bool) -> dict[str, Any]:
    """The pipeline process of this home, or with a shared log the workers of the deployment
    (each with the partitions it reads: for the operator, the home's organization; others
    learn only whether the pipeline runs)."""
    now = clock.now_ms()
    if not services.settings.spool_url:
        return pipeline_state(services.layout, now)
    try:
        workers = worker_states(services.settings.catalog_url, now)
    except (psycopg.Error, ValueError) as error:
        log.warning("pipeline workers unknown: %s", redact(str(error)))
        return {"running": None, "workers": None, "lastError": "the catalog is unreachable"}
    running = any(w["live"] for w in workers)
    return {"running": running, "workers": workers if operator else None}


def _owns_profiles(services: Services, scope: Scope | None) -> bool:
    """True for the operator's view and for the home's organization in `prod` (the profile
    store holds that organization's profiles)."""
    return scope is None or scope == (services.catalog.default_org(), DEFAULT_SANDBOX)
