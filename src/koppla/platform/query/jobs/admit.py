"""What `POST /queries` admits: one read-only SELECT, checked before the job is queued.

Adobe answers 400 at submission for SQL it cannot run, so the guard runs here, synchronously.
Adobe's derived datasets (`CREATE TABLE x AS SELECT ...`, `INSERT INTO x SELECT ...`) are
refused with their own message: Koppla does not write query results into datasets yet.
"""

from __future__ import annotations

import re

from koppla.platform.query.errors import QueryRefused
from koppla.platform.query.guard import check_sql

DERIVED_DATASETS = (
    "derived datasets (CREATE TABLE ... AS SELECT, INSERT INTO ... SELECT, ctasParameters, "
    "insertIntoParameters) are not supported yet: run the SELECT and page its results"
)
_DERIVED = re.compile(
    r"^(?:\s|--[^\n]*(?:\n|$)|/\*.*?\*/)*"
    r"(?:CREATE\s+(?:OR\s+REPLACE\s+)?(?:(?:TEMP|TEMPORARY)\s+)?TABLE\b|INSERT\s+INTO\b)",
    re.IGNORECASE | re.DOTALL,
)


def admitted(sql: str) -> str:
    """`sql` stripped when it is one SELECT the guard admits, else `QueryRefused` (400) naming
    why; derived-dataset statements are refused as not supported yet."""
    if _DERIVED.match(sql):
        raise QueryRefused(DERIVED_DATASETS, field="sql")
    try:
        return check_sql(sql)
    except QueryRefused as refused:
        raise QueryRefused(str(refused), field=refused.field or "sql") from None
