"""Byte budgets of asynchronous queries: what one job keeps, what one page holds, and what one
organization keeps on disk, with the messages that name the setting behind each.

A job's rows are counted in Arrow bytes as they are written (`query_job_max_result_bytes`). A
page is cut where its rows pass `query_max_result_bytes`, measured twice: in Arrow bytes before
any row becomes a Python value, so no more than the budget is ever converted, and then as the
Python values the page is answered with (`value_bytes`, as `POST /api/v1/query` counts them).
An organization's kept result files may take `ORG_RESULT_FILES` times a job's budget.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyarrow as pa

from koppla.platform.query.fetch import value_bytes

ORG_RESULT_FILES = 4
"""An organization's kept result files may take this many times `query_job_max_result_bytes`."""


def size_text(size: int) -> str:
    """`size` bytes for people: `256 MiB` when it is a whole number of units, else bytes."""
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if size >= scale and size % scale == 0:
            return f"{size // scale} {unit}"
    return f"{size} bytes"


def job_too_large(max_bytes: int, rows: int) -> str:
    """Why a job failed: its rows passed `query_job_max_result_bytes` within its first `rows`."""
    return (
        f"the result is larger than query_job_max_result_bytes ({size_text(max_bytes)}) within "
        f"its first {rows} rows: select fewer or narrower columns, fewer rows (LIMIT), or "
        "aggregate; an operator can raise query_job_max_result_bytes"
    )


def row_too_large(job_id: str, row: int, max_bytes: int) -> str:
    """Why a page cannot be answered: row `row` alone passes `query_max_result_bytes`."""
    return (
        f"row {row} of query {job_id} alone is larger than query_max_result_bytes "
        f"({size_text(max_bytes)}), the most one page of results may hold: select narrower "
        "columns (substring, length) and run the query again; an operator can raise "
        "query_max_result_bytes"
    )


def over_quota(kept: int, quota: int) -> str:
    """Why an organization may not submit: its kept results take `kept` of `quota` bytes."""
    return (
        f"results of this organization take {kept} bytes, at most {quota} "
        f"({size_text(quota)}, {ORG_RESULT_FILES} times query_job_max_result_bytes) may be kept; "
        "wait for them to expire (query_results_hours) or delete queries (soft_delete removes "
        "their results)"
    )


def fitting_rows(table: pa.Table, max_bytes: int) -> int:
    """How many of `table`'s first rows take at most `max_bytes` in Arrow (0: not even one).

    A prefix only grows as rows are added, so the count is found by bisection on slices, which
    copy nothing."""
    if table.nbytes <= max_bytes:
        return int(table.num_rows)
    low, high = 0, int(table.num_rows)  # table.slice(0, low) fits; table.slice(0, high) does not
    while high - low > 1:
        middle = (low + high) // 2
        if table.slice(0, middle).nbytes <= max_bytes:
            low = middle
        else:
            high = middle
    return low


def rows_within(rows: Sequence[Sequence[Any]], max_bytes: int) -> int:
    """How many of `rows`' first Python rows take at most `max_bytes` as values."""
    used = 0
    for index, row in enumerate(rows):
        used += value_bytes(row)
        if used > max_bytes:
            return index
    return len(rows)
