"""Query jobs on disk (`<home>/query/jobs.sqlite`): every state change is one transaction.

A state change names the state it leaves (`UPDATE ... WHERE state = ?`), so a cancel and the
worker finishing the same job can race without either overwriting the other: the first wins.
Each job records the size of its kept result file (`result_bytes`), so an organization's share
of the disk is one sum; a soft-deleted job keeps no results.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from koppla.core import codec, ids
from koppla.core.sqlite import SqliteFile
from koppla.platform.query.jobs.listing import Listing, Rule, keyset_page
from koppla.platform.query.jobs.model import (
    ACTIVE,
    JobError,
    QueryJob,
    Results,
    State,
    Submission,
)
from koppla.platform.query.result import Column

SCHEMA = """
CREATE TABLE IF NOT EXISTS query_jobs (
  id TEXT PRIMARY KEY, org_id TEXT NOT NULL, sandbox TEXT NOT NULL, user_id TEXT NOT NULL,
  client TEXT NOT NULL, client_id TEXT NOT NULL, name TEXT NOT NULL, description TEXT NOT NULL,
  sql TEXT NOT NULL, effective_sql TEXT NOT NULL, params TEXT NOT NULL,
  template_id TEXT NOT NULL, template_name TEXT NOT NULL, state TEXT NOT NULL,
  created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL, started_ms INTEGER, ended_ms INTEGER,
  row_count INTEGER NOT NULL DEFAULT 0, truncated INTEGER NOT NULL DEFAULT 0,
  columns TEXT NOT NULL DEFAULT '[]', errors TEXT NOT NULL DEFAULT '[]',
  results TEXT NOT NULL DEFAULT 'none', deleted INTEGER NOT NULL DEFAULT 0,
  result_bytes INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS query_jobs_by_scope ON query_jobs(org_id, sandbox, created_ms);
CREATE INDEX IF NOT EXISTS query_jobs_by_state ON query_jobs(state);
"""
MIGRATIONS = (("query_jobs", "result_bytes", "INTEGER NOT NULL DEFAULT 0"),)
"""Columns a `jobs.sqlite` made by an older Koppla lacks."""

JOB_RULES: dict[str, Rule] = {
    "created": Rule("created_ms", (">=", "<=", "==", "!=", ">", "<"), "time"),
    "updated": Rule("updated_ms", (">=", "<=", "==", "!=", ">", "<"), "time"),
    "state": Rule("state", ("==", "!=")),
    "id": Rule("id", ("==", "!=", "~")),
    "userId": Rule("user_id", ("==",)),
    "client": Rule("client", ("==",)),
    "templateId": Rule("template_id", ("==",)),
    "templateName": Rule("template_name", ("~",)),
    "sql": Rule("sql", ("~",)),
    "scheduleId": Rule(None, ("==",)),
    "scheduleRunId": Rule(None, ("==",)),
}
"""The `property` filters of `GET /queries`, as Adobe documents them."""
JOB_ORDERS = {"created": "created_ms", "updated": "updated_ms"}

_COLUMNS = (
    "id, org_id, sandbox, user_id, client, client_id, name, description, sql, effective_sql, "
    "params, template_id, template_name, state, created_ms, updated_ms, started_ms, ended_ms, "
    "row_count, truncated, columns, errors, results, deleted"
)


class JobStore:
    """The job records; safe to share between threads."""

    def __init__(self, file: SqliteFile) -> None:
        """The job records of `file`, whose columns are brought up to date."""
        self._file = file
        file.add_columns(MIGRATIONS)

    def add(self, request: Submission, now_ms: int) -> QueryJob:
        """Record a new SUBMITTED job. Creation times are kept distinct (a later job gets at
        least the previous one's time plus 1 ms) so `start` pages never tie."""
        job_id = ids.new_uuid()
        with self._file.transaction() as db:
            (latest,) = db.execute("SELECT max(created_ms) FROM query_jobs").fetchone()
            created = now_ms if latest is None else max(now_ms, int(latest) + 1)
            db.execute(
                f"INSERT INTO query_jobs ({_COLUMNS}) VALUES "
                "(?,?,?,?,?,?,?,?,?,?,?,?,?,'SUBMITTED',?,?,NULL,NULL,0,0,'[]','[]','none',0)",
                (
                    job_id,
                    request.org_id,
                    request.sandbox,
                    request.user_id,
                    request.client,
                    request.client_id,
                    request.name,
                    request.description,
                    request.sql,
                    request.effective_sql,
                    codec.dumps(request.params).decode(),
                    request.template_id,
                    request.template_name,
                    created,
                    created,
                ),
            )
        return QueryJob(job_id, request, "SUBMITTED", created, created)

    def get(self, job_id: str) -> QueryJob | None:
        """The job `job_id`, of any organization."""
        row = self._file.one(f"SELECT {_COLUMNS} FROM query_jobs WHERE id=?", (job_id,))
        return None if row is None else _job(row)

    def find(self, org_id: str, sandbox: str, job_id: str) -> QueryJob | None:
        """The job `job_id` when it belongs to `org_id`'s `sandbox`, else None."""
        job = self.get(job_id)
        if job is None or (job.request.org_id, job.request.sandbox) != (org_id, sandbox):
            return None
        return job

    def start(self, job_id: str, now_ms: int) -> bool:
        """SUBMITTED → IN_PROGRESS; False when the job left SUBMITTED (it was cancelled)."""
        return self._move(job_id, ("SUBMITTED",), "IN_PROGRESS", now_ms, started_ms=now_ms)

    def finish(
        self,
        job_id: str,
        state: State,
        now_ms: int,
        *,
        row_count: int = 0,
        truncated: bool = False,
        columns: Iterable[Column] = (),
        errors: Iterable[JobError] = (),
        results: Results = "none",
        result_bytes: int = 0,
    ) -> bool:
        """IN_PROGRESS → `state` with `results` (of `result_bytes`); False when the job had
        already ended (cancelled), or was soft-deleted meanwhile so its results are not kept."""
        with self._file.transaction() as db:
            row = db.execute(
                "SELECT deleted FROM query_jobs WHERE id=? AND state='IN_PROGRESS'", (job_id,)
            ).fetchone()
            if row is None:
                return False
            refused = results == "kept" and bool(row[0])
            kept = results == "kept" and not refused
            db.execute(
                "UPDATE query_jobs SET state=?, updated_ms=?, ended_ms=?, row_count=?, "
                "truncated=?, columns=?, errors=?, results=?, result_bytes=? WHERE id=?",
                (
                    state,
                    now_ms,
                    now_ms,
                    row_count,
                    int(truncated),
                    codec.dumps([[c.name, c.type] for c in columns]).decode(),
                    codec.dumps([e.to_json() for e in errors]).decode(),
                    "none" if refused else results,
                    result_bytes if kept else 0,
                    job_id,
                ),
            )
            return not refused

    def kill(self, job_id: str, now_ms: int, error: JobError) -> bool:
        """SUBMITTED or IN_PROGRESS → KILLED; False when the job had already ended."""
        errors = codec.dumps([error.to_json()]).decode()
        return self._move(job_id, tuple(ACTIVE), "KILLED", now_ms, ended_ms=now_ms, errors=errors)

    def soft_delete(self, job_id: str, now_ms: int) -> bool:
        """Hide the job from lists (`excludeSoftDeleted`; it can still be read by id) and drop
        its results. True when it had ended, so its result file (if any) can go now; a job
        still waiting or running keeps none when it ends (`finish`)."""
        with self._file.transaction() as db:
            db.execute(
                "UPDATE query_jobs SET deleted=1, updated_ms=?, result_bytes=0, "
                "results=CASE results WHEN 'kept' THEN 'none' ELSE results END WHERE id=?",
                (now_ms, job_id),
            )
            row = db.execute("SELECT state FROM query_jobs WHERE id=?", (job_id,)).fetchone()
        return row is not None and row[0] not in ACTIVE

    def fail_unfinished(self, now_ms: int, error: JobError) -> list[str]:
        """Mark every SUBMITTED or IN_PROGRESS job FAILED with `error` (after a restart)."""
        errors = codec.dumps([error.to_json()]).decode()
        with self._file.transaction() as db:
            rows = db.execute(
                "SELECT id FROM query_jobs WHERE state IN ('SUBMITTED', 'IN_PROGRESS')"
            ).fetchall()
            db.execute(
                "UPDATE query_jobs SET state='FAILED', errors=?, updated_ms=?, "
                "ended_ms=? WHERE state IN ('SUBMITTED', 'IN_PROGRESS')",
                (errors, now_ms, now_ms),
            )
        return [str(row[0]) for row in rows]

    def expire(self, ended_before_ms: int, now_ms: int) -> list[str]:
        """Mark the kept results of jobs that ended before `ended_before_ms` expired; their ids."""
        with self._file.transaction() as db:
            rows = db.execute(
                "SELECT id FROM query_jobs WHERE results='kept' AND ended_ms < ?",
                (ended_before_ms,),
            ).fetchall()
            db.execute(
                "UPDATE query_jobs SET results='expired', result_bytes=0, updated_ms=? "
                "WHERE results='kept' AND ended_ms < ?",
                (now_ms, ended_before_ms),
            )
        return [str(row[0]) for row in rows]

    def active(self, org_id: str) -> int:
        """How many jobs of `org_id` are SUBMITTED or IN_PROGRESS."""
        row = self._file.one(
            "SELECT count(*) FROM query_jobs WHERE org_id=? AND state IN "
            "('SUBMITTED', 'IN_PROGRESS')",
            (org_id,),
        )
        return 0 if row is None else int(row[0])

    def kept_bytes(self, org_id: str) -> int:
        """The bytes of `org_id`'s kept result files, in every sandbox."""
        row = self._file.one(
            "SELECT coalesce(sum(result_bytes), 0) FROM query_jobs "
            "WHERE org_id=? AND results='kept'",
            (org_id,),
        )
        return 0 if row is None else int(row[0])

    def page(
        self, org_id: str, sandbox: str, listing: Listing, *, include_deleted: bool = False
    ) -> tuple[list[QueryJob], int | None]:
        """One page of `org_id`'s `sandbox` jobs, and the order key that starts the next."""
        select = f"SELECT {_COLUMNS} FROM query_jobs WHERE org_id=? AND sandbox=?"
        if not include_deleted:
            select += " AND deleted=0"
        by_created = listing.order_column == "created_ms"

        def key(job: QueryJob) -> int:
            return job.created_ms if by_created else job.updated_ms

        return keyset_page(self._file, select, (org_id, sandbox), listing, _job, key)

    def _move(
        self, job_id: str, sources: tuple[str, ...], target: State, now_ms: int, **values: object
    ) -> bool:
        sets = "".join(f", {name}=?" for name in values)
        marks = ",".join("?" * len(sources))
        with self._file.transaction() as db:
            moved = db.execute(
                f"UPDATE query_jobs SET state=?, updated_ms=?{sets} "
                f"WHERE id=? AND state IN ({marks})",
                (target, now_ms, *values.values(), job_id, *sources),
            )
            return moved.rowcount > 0


def _job(row: tuple[Any, ...]) -> QueryJob:
    request = Submission(
        org_id=row[1],
        sandbox=row[2],
        user_id=row[3],
        client=row[4],
        client_id=row[5],
        name=row[6],
        description=row[7],
        sql=row[8],
        effective_sql=row[9],
        params=codec.loads(row[10]),
        template_id=row[11],
        template_name=row[12],
    )
    return QueryJob(
        id=row[0],
        request=request,
        state=row[13],
        created_ms=row[14],
        updated_ms=row[15],
        started_ms=row[16],
        ended_ms=row[17],
        row_count=row[18],
        truncated=bool(row[19]),
        columns=tuple(Column(str(n), str(t)) for n, t in codec.loads(row[20])),
        errors=tuple(
            JobError(e["code"], e["message"], e["errorType"]) for e in codec.loads(row[21])
        ),
        results=row[22],
        deleted=bool(row[23]),
    )
