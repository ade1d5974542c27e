"""The catalog as SQL tables: `datasets` and `batches` of the organization and sandbox queried.

They are live tables (read from the catalog when a query names them), so a data team can join
batch outcomes with the rows they brought: `SELECT b.status, count(*) FROM batches b JOIN
demo_events e ON e._koppla.batchId = b.id GROUP BY 1`. `batches` holds the newest
`BATCH_ROWS` batches.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pyarrow as pa

from koppla.platform.catalog.store import Catalog

BATCH_ROWS = 100_000
_TIME = pa.timestamp("ms", tz="UTC")

DATASETS_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("name", pa.string()),
        ("schemaId", pa.string()),
        ("description", pa.string()),
        ("profileEnabled", pa.bool_()),
        ("created", _TIME),
        ("sandbox", pa.string()),
    ]
)
_ERROR = pa.struct([("code", pa.string()), ("description", pa.string()), ("rows", pa.int64())])
BATCHES_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("datasetId", pa.string()),
        ("status", pa.string()),
        ("records", pa.int64()),
        ("failedRecords", pa.int64()),
        ("duplicates", pa.int64()),
        ("created", _TIME),
        ("completed", _TIME),
        ("source", pa.string()),
        ("inputFormat", pa.string()),
        ("createdBy", pa.string()),
        ("errors", pa.list_(_ERROR)),
    ]
)


def datasets_table(catalog: Catalog, org_id: str | None, sandbox: str | None) -> pa.Table:
    """The datasets of one organization and sandbox (all of them with None)."""
    rows = [
        {
            "id": d.id,
            "name": d.name,
            "schemaId": d.schema_id,
            "description": d.description,
            "profileEnabled": d.profile_enabled,
            "created": _moment(d.created_ms),
            "sandbox": d.sandbox,
        }
        for d in catalog.datasets(org_id, sandbox)
    ]
    return pa.Table.from_pylist(rows, schema=DATASETS_SCHEMA)


def batches_table(catalog: Catalog, org_id: str | None, sandbox: str | None) -> pa.Table:
    """The newest batches of one organization and sandbox's datasets (all with None)."""
    rows = [
        {
            "id": b.id,
            "datasetId": b.dataset_id,
            "status": b.status,
            "records": b.records,
            "failedRecords": b.failed_records,
            "duplicates": b.duplicates,
            "created": _moment(b.created_ms),
            "completed": _moment(b.completed_ms),
            "source": b.source,
            "inputFormat": b.input_format or None,
            "createdBy": b.created_by or None,
            "errors": [
                {"code": e.code, "description": e.description, "rows": e.record_count}
                for e in b.errors
            ],
        }
        for b in catalog.batches(limit=BATCH_ROWS, org_id=org_id, sandbox=sandbox)
    ]
    return pa.Table.from_pylist(rows, schema=BATCHES_SCHEMA)


def _moment(ms: int | None) -> datetime | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, tz=UTC)
