"""Admin pages: datasets, their batches, and the quarantine, of the signed-in organization.

- `/admin/datasets`: every dataset (name, id, schema, rows, last batch, Profile) and the
  datastreams landing in them. JSON twin: `GET /api/v1/datasets`.
- `/admin/datasets/{id}`: its schema's fields, row count, newest batches with their status.
  JSON twin: `GET /api/v1/datasets/{id}`.
- `/admin/batches/{id}`: status, counts, errors, and the records it refused (an ingestion
  batch's row errors, a streaming batch's quarantined records). JSON twins:
  `GET /api/v1/batches/{id}` and `/failed`.
- `/admin/quarantine`: refused records, filtered by dataset, datastream, problem text, time;
  each with its problems and the record as sent. Its twin is the SQL the page shows, through
  `POST /api/v1/query`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from koppla.core import clock, codec
from koppla.core.errors import NotFound
from koppla.platform.catalog.access import DEFAULT_SANDBOX
from koppla.platform.datasets.quarantine import TABLE_NAME as QUARANTINE
from koppla.platform.query.errors import QueryBusy, QueryFailed, QueryTimeout
from koppla.web.auth import Svc
from koppla.web.pages.render import page
from koppla.web.pages.session import SignedIn, principal
from koppla.web.routes.datasets import failed_records, get_batch
from koppla.web.services import Services
from koppla.xdm.registry import SchemaRegistry
from koppla.xdm.types import Array, Map, Object, Scalar, Type

router = APIRouter(include_in_schema=False)

BATCHES_SHOWN = 50
REFUSED_SHOWN = 100
QUARANTINE_LIMITS = (50, 100, 500)
PROBLEM_TEXT_MAX = 200


@dataclass(frozen=True, slots=True)
class FieldSummary:
    """One top-level field of a schema, as the dataset page lists it."""

    name: str
    type: str
    required: bool
    leaves: int
    description: str


@router.get("/admin/datasets", response_class=HTMLResponse)
def datasets_page(request: Request, svc: Svc, session: SignedIn) -> HTMLResponse:
    """Every dataset and datastream of the person's organization."""
    org_id, sandbox = session.org_id, DEFAULT_SANDBOX
    rows = _row_counts(svc, org_id)
    datasets = svc.catalog.datasets(org_id, sandbox)
    shown = []
    for dataset in datasets:
        last = svc.catalog.batches(dataset_id=dataset.id, limit=1)
        shown.append(
            {
                "dataset": dataset,
                "schema": _schema_title(svc.registry, dataset.schema_id),
                "rows": rows.get(dataset.name),
                "last": last[0] if last else None,
            }
        )
    names = {d.id: d.name for d in datasets}
    streams = [
        {
            "stream": s,
            "events": names.get(s.event_dataset_id),
            "counters": svc.catalog.counters(s.id),
        }
        for s in svc.catalog.datastreams(org_id, sandbox)
    ]
    return page(request, "datasets.html", datasets=shown, datastreams=streams, dataset_names=names)


@router.get("/admin/datasets/{key}", response_class=HTMLResponse)
def dataset_page(key: str, request: Request, svc: Svc, session: SignedIn) -> HTMLResponse:
    """One dataset: its schema's fields, row count and newest batches."""
    try:
        dataset = svc.catalog.dataset(key, session.org_id, DEFAULT_SANDBOX)
    except NotFound:
        return _not_found(request, f"No dataset {key!r} in your organization.")
    batches = svc.catalog.batches(dataset_id=dataset.id, limit=BATCHES_SHOWN)
    return page(
        request,
        "datasets_detail.html",
        dataset=dataset,
        schema=_schema_title(svc.registry, dataset.schema_id),
        fields=schema_fields(svc.registry, dataset.schema_id),
        rows=_row_counts(svc, session.org_id).get(dataset.name),
        batches=batches,
        sql=f"SELECT * FROM {dataset.name} LIMIT 100",
    )


@router.get("/admin/batches/{batch_id}", response_class=HTMLResponse)
def batch_page(batch_id: str, request: Request, svc: Svc, session: SignedIn) -> HTMLResponse:
    """One batch: status, counts, errors, and each record it refused with its problems."""
    caller = principal(session)
    try:
        batch = svc.catalog.batch(batch_id, caller.org_id, caller.sandbox)
        dataset = svc.catalog.dataset(batch.dataset_id, caller.org_id, caller.sandbox)
    except NotFound:
        return _not_found(request, f"No batch {batch_id!r} in your organization.")
    shown = get_batch(batch.id, svc, caller)
    refused: list[dict[str, Any]] = []
    truncated = False
    if batch.failed_records and batch.status in ("success", "failed"):
        found = failed_records(batch.id, svc, caller, limit=REFUSED_SHOWN)
        refused = [_refused(r) for r in found["records"]]
        truncated = bool(found["truncated"])
    return page(
        request,
        "batch.html",
        batch=batch,
        shown=shown,
        dataset=dataset,
        refused=refused,
        truncated=truncated,
    )


@dataclass(frozen=True, slots=True)
class QuarantineFilter:
    """What the quarantine page is asked to show (the query string, as sent)."""

    dataset: str = ""
    datastream: str = ""
    problem: str = ""
    since: str = ""
    until: str = ""
    limit: int = QUARANTINE_LIMITS[1]

    @property
    def active(self) -> bool:
        """True when anything narrows the records shown."""
        return any((self.dataset, self.datastream, self.problem, self.since, self.until))

    def conditions(
        self, dataset_ids: set[str], datastream_ids: set[str]
    ) -> tuple[list[str], list[str]]:
        """SQL conditions for the filter, and a sentence for each part that cannot be used.

        Datasets and datastreams must be the organization's (so only known ids reach the
        SQL); the problem text is matched, without case, against each problem's path, code and
        message; times without an offset are UTC.
        """
        where: list[str] = []
        problems: list[str] = []
        for kind, column, value, known in (
            ("dataset", "dataset_id", self.dataset, dataset_ids),
            ("datastream", "datastream_id", self.datastream, datastream_ids),
        ):
            if value and value in known:
                where.append(f"{column} = {_literal(value)}")
            elif value:
                problems.append(f"no {kind} {value!r} in your organization")
        if self.problem.strip():
            text = _literal(self.problem.strip().lower())
            where.append(f"contains(lower(CAST(errors AS VARCHAR)), {text})")
        for name, value, operator in (("since", self.since, ">="), ("until", self.until, "<")):
            moment = _moment(value) if value.strip() else None
            if moment is not None:
                where.append(f"received_at {operator} TIMESTAMPTZ '{clock.iso(moment)}'")
            elif value.strip():
                problems.append(f"{name}: {value!r} is not a date and time (YYYY-MM-DDTHH:MM)")
        return where, problems


@router.get("/admin/quarantine", response_class=HTMLResponse)
def quarantine_page(
    request: Request,
    svc: Svc,
    session: SignedIn,
    dataset: str = "",
    datastream: str = "",
    problem: Annotated[str, Query(max_length=PROBLEM_TEXT_MAX)] = "",
    since: str = "",
    until: str = "",
    limit: int = QUARANTINE_LIMITS[1],
) -> HTMLResponse:
    """The quarantined records of the person's organization, newest first, filtered."""
    scope = (session.org_id, DEFAULT_SANDBOX)
    cap = limit if limit in QUARANTINE_LIMITS else QUARANTINE_LIMITS[1]
    chosen = QuarantineFilter(dataset, datastream, problem, since, until, cap)
    datasets = svc.catalog.datasets(*scope)
    streams = svc.catalog.datastreams(*scope)
    where, problems = chosen.conditions({d.id for d in datasets}, {s.id for s in streams})
    sql = quarantine_sql(where)
    records, truncated, error = _quarantined(svc, scope, sql, cap)
    return page(
        request,
        "quarantine.html",
        records=records,
        truncated=truncated,
        error=error,
        problems=problems,
        sql=sql,
        datasets=datasets,
        datastreams=streams,
        dataset_names={d.id: d.name for d in datasets},
        filters=chosen,
        limits=QUARANTINE_LIMITS,
    )


def quarantine_sql(conditions: list[str]) -> str:
    """The quarantine query of the page: newest first, `conditions` joined with AND."""
    where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
    return (
        "SELECT received_at, dataset_id, datastream_id, batch_id, event_id, event_type, "
        f"errors, record FROM {QUARANTINE}{where} ORDER BY received_at DESC"
    )


def schema_fields(registry: SchemaRegistry, schema_id: str) -> list[FieldSummary]:
    """The top-level fields of a schema, with their type and how many leaf fields each holds
    (empty for a schema the registry does not know)."""
    if schema_id not in registry:
        return []
    root = registry.get(schema_id).root
    return [
        FieldSummary(name, _type_name(kind), name in root.required, _leaves(kind), _about(kind))
        for name, kind in root.fields.items()
    ]


def _type_name(kind: Type) -> str:
    if isinstance(kind, Scalar):
        return kind.kind
    if isinstance(kind, Object):
        return "object"
    if isinstance(kind, Array):
        return f"array of {_type_name(kind.items)}"
    return f"map of {_type_name(kind.values)}"


def _leaves(kind: Type) -> int:
    if isinstance(kind, Scalar):
        return 1
    if isinstance(kind, Object):
        return sum(_leaves(inner) for inner in kind.fields.values())
    if isinstance(kind, Array):
        return _leaves(kind.items)
    assert isinstance(kind, Map)
    return _leaves(kind.values)


def _about(kind: Type) -> str:
    return kind.description if isinstance(kind, Scalar | Object) else ""


def _schema_title(registry: SchemaRegistry, schema_id: str) -> str:
    return registry.get(schema_id).title if schema_id in registry else schema_id


def _row_counts(svc: Services, org_id: str) -> dict[str, int | None]:
    """Rows per dataset name, from the Delta tables' statistics (datasets not yet written are
    absent)."""
    return {t.name: t.row_count for t in svc.query.tables_info((org_id, DEFAULT_SANDBOX))}


def _refused(row: dict[str, Any]) -> dict[str, Any]:
    """A refused record, as the batch page shows it: where it was, its problems, as sent."""
    if "file" in row:
        where = f"{row['file']}, row {row['row']}"
    else:
        where = f"event {row.get('eventId') or '?'} ({row.get('eventType') or 'no event type'})"
    return {"where": where, "problems": row.get("errors") or [], "record": _pretty(row["record"])}


def _quarantined(
    svc: Services, scope: tuple[str, str], sql: str, cap: int
) -> tuple[list[dict[str, Any]], bool, str | None]:
    """The records of the quarantine query, whether more matched, and why it failed if it did."""
    if QUARANTINE not in {t.name for t in svc.query.tables_info(scope)}:
        return [], False, None
    try:
        result = svc.query.run(sql, max_rows=cap, scope=scope)
    except (QueryFailed, QueryTimeout, QueryBusy) as error:
        return [], False, str(error)
    records = [
        {
            "receivedAt": received_at,
            "datasetId": dataset_id,
            "datastreamId": datastream_id,
            "batchId": batch_id,
            "eventId": event_id,
            "eventType": event_type,
            "problems": problems or [],
            "record": _pretty(record),
        }
        for (
            received_at,
            dataset_id,
            datastream_id,
            batch_id,
            event_id,
            event_type,
            problems,
            record,
        ) in result.rows
    ]
    return records, result.truncated, None


def _pretty(record: Any) -> str:
    """A record as sent, indented when it is JSON."""
    if isinstance(record, str):
        try:
            return codec.dumps_pretty(codec.loads(record))
        except codec.JSONDecodeError:
            return record
    return codec.dumps_pretty(record)


def _literal(text: str) -> str:
    """`text` as a SQL string literal (quotes doubled, control characters dropped)."""
    kept = "".join(c for c in text if c.isprintable())
    return "'" + kept.replace("'", "''") + "'"


def _moment(value: str) -> datetime | None:
    """A `datetime-local` value (or ISO 8601 text) as a UTC moment; naive times are UTC.

    None for text that is no date and time, and for a moment outside the years 1 to 9999 in
    UTC (`0001-01-01T00:00+14:00` is still in year 0 there)."""
    try:
        moment = datetime.fromisoformat(value.strip())
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except (ValueError, OverflowError):
        return None


def _not_found(request: Request, message: str) -> HTMLResponse:
    return page(request, "_not_found.html", status_code=404, message=message)
