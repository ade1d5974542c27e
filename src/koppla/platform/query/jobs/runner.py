"""Asynchronous queries: submitted, run by a small pool of worker threads, paged when done.

A job moves SUBMITTED → IN_PROGRESS → SUCCESS, or ends FAILED, TIMEOUT or KILLED (cancelled).
The job records (`jobs.sqlite`) and the result rows (`results/<id>.arrow`) live under
`<home>/query`, so both outlive the process; a job the process was running or about to run
when it stopped is marked FAILED when the next one starts. Workers take jobs fairly between
organizations (`FairQueue`): one organization runs at most `workers - 1` jobs at once, so its
endless queries never hold every worker. Each job streams its rows from the engine straight
into its result file, up to `max_rows` (then `truncated`) and `max_result_bytes` (then FAILED);
an organization whose kept results take `org_result_bytes` may submit no more until some
expire or are soft-deleted. Cancelling a running job interrupts its query and frees its worker
and engine slot. A page of results holds at most `page_bytes` of values. Result files are
deleted `retention_hours` after their query ended (`cleanup`), or when their query is
soft-deleted; the job then says so.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import pyarrow as pa

from koppla.core import clock
from koppla.core.errors import Conflict, InvalidInput, NotFound, TransientError
from koppla.core.layout import Layout
from koppla.core.settings import Settings
from koppla.core.sqlite import SqliteFile
from koppla.core.text import check_unicode
from koppla.platform.query.errors import QueryBusy, QueryTimeout
from koppla.platform.query.jobs import budget
from koppla.platform.query.jobs import store as job_schema
from koppla.platform.query.jobs import templates as template_schema
from koppla.platform.query.jobs.admit import admitted
from koppla.platform.query.jobs.listing import Listing
from koppla.platform.query.jobs.model import (
    TERMINAL,
    JobError,
    QueryJob,
    ResultPage,
    State,
    Submission,
)
from koppla.platform.query.jobs.params import check_params, substitute
from koppla.platform.query.jobs.queue import FairQueue
from koppla.platform.query.jobs.results import ResultFiles, RowTooLarge
from koppla.platform.query.jobs.store import JobStore
from koppla.platform.query.jobs.templates import TemplateStore
from koppla.platform.query.result import Column

log = logging.getLogger(__name__)

Scope = tuple[str, str]
"""An organization id and a sandbox name."""

DEFAULT_WORKERS = 3
"""Worker threads: one organization may use all but one of them (two by default)."""
DEFAULT_MAX_ROWS = 1_000_000
"""The default of the `query_job_max_rows` setting."""
DEFAULT_MAX_RESULT_BYTES = 256 * 2**20
"""The default of the `query_job_max_result_bytes` setting."""
DEFAULT_PAGE_BYTES = 64 * 2**20
"""The default of the `query_max_result_bytes` setting, which bounds one page of results."""
DEFAULT_RETENTION_HOURS = 24.0
"""The default of the `query_results_hours` setting."""
MAX_ACTIVE_PER_ORG = 20
"""Most SUBMITTED or IN_PROGRESS jobs one organization may have; more are refused."""
MAX_PAGE_ROWS = 1_000
MAX_SQL_CHARS = 1_000_000
"""Adobe's limit on a query's SQL (1,000,000 bytes); counted here in characters."""
MAX_NAME_CHARS = 1_000
MAX_DESCRIPTION_CHARS = 1_000
BUSY_RETRIES = 20
"""Times a job waits for an engine slot (`slot_wait_s` each) before it fails."""
BATCH_READ_ROWS = 2_048
"""Rows read from the engine at once: one DuckDB vector, so a batch of wide rows stays small."""
QUOTA_RETRY_S = 60
CLEANUP_EVERY_MS = 60_000
REINTERRUPT_S = 0.1
RESTARTED = JobError(
    "XX000", "the server restarted while the query ran; submit it again", "SYSTEM_ERROR"
)
CANCELLED = JobError("57014", "query was cancelled")


class RowStream(Protocol):
    """What a job reads of the engine's `RowStream`."""

    @property
    def columns(self) -> tuple[Column, ...]: ...

    @property
    def schema(self) -> pa.Schema: ...

    def batches(self, rows: int = ...) -> Iterator[pa.RecordBatch]: ...

    def cancel(self) -> None: ...


class Engine(Protocol):
    """What a job needs of the query engine: its rows as a stream."""

    def stream(
        self, sql: str, *, scope: Scope | None = None, timeout_s: float | None = None
    ) -> AbstractContextManager[RowStream]: ...


@dataclass
class _Running:
    """A job a worker is running: its stream, once open, and whether it was cancelled.

    DuckDB's interrupt stops only a query that is executing at that moment; one that arrives
    just before execution starts is lost. So a cancelled stream is interrupted again every
    `REINTERRUPT_S` until the worker lets go of it (`done`).
    """

    stream: RowStream | None = None
    cancelled: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)
    finished: threading.Event = field(default_factory=threading.Event)

    def attach(self, stream: RowStream) -> None:
        """The worker opened its stream; interrupt it at once if the job was cancelled."""
        with self.lock:
            self.stream = stream
            if self.cancelled:
                self._interrupt()

    def detach(self) -> None:
        """The worker is about to close its stream; nothing may interrupt it from now on."""
        with self.lock:
            self.stream = None

    def cancel(self) -> None:
        """Cancel the job: interrupt its stream now and again until the worker lets go."""
        with self.lock:
            self.cancelled = True
            self._interrupt()

    def done(self) -> None:
        """The worker is done with the job."""
        self.finished.set()

    def _interrupt(self) -> None:
        if self.stream is None:
            return
        self.stream.cancel()
        threading.Thread(target=self._reinterrupt, daemon=True).start()

    def _reinterrupt(self) -> None:
        while not self.finished.wait(REINTERRUPT_S):
            with self.lock:
                if self.stream is None:
                    return
                self.stream.cancel()


@dataclass(frozen=True, slots=True)
class _Outcome:
    state: State
    row_count: int = 0
    truncated: bool = False
    columns: tuple[Column, ...] = ()
    error: JobError | None = None
    file_bytes: int = 0


class QueryJobs:
    """Submits, runs, lists, cancels and pages asynchronous queries; safe to share."""

    def __init__(
        self,
        engine: Engine,
        directory: Path,
        *,
        workers: int = DEFAULT_WORKERS,
        max_rows: int = DEFAULT_MAX_ROWS,
        max_result_bytes: int = DEFAULT_MAX_RESULT_BYTES,
        page_bytes: int = DEFAULT_PAGE_BYTES,
        org_result_bytes: int | None = None,
        retention_hours: float = DEFAULT_RETENTION_HOURS,
        timeout_s: float | None = None,
        max_active: int = MAX_ACTIVE_PER_ORG,
        now_ms: Callable[[], int] = clock.now_ms,
    ) -> None:
        """Open the job records under `directory`, mark jobs a stopped process left unfinished
        FAILED, and start `workers` worker threads, of which one organization may use at most
        `max(1, workers - 1)`. `timeout_s` limits each query (default: the engine's
        `stream_timeout_s`); one organization may have `max_active` queries waiting or
        running at once, and kept results of `org_result_bytes` (default:
        `budget.ORG_RESULT_FILES` times `max_result_bytes`). A job keeps at most `max_rows` rows
        and `max_result_bytes` Arrow bytes; a page holds at most `page_bytes` of values."""
        self._engine = engine
        self._file = SqliteFile(
            directory / "jobs.sqlite", job_schema.SCHEMA + template_schema.SCHEMA
        )
        self._jobs = JobStore(self._file)
        self.templates = TemplateStore(self._file)
        self._files = ResultFiles(directory / "results")
        self._max_rows = max_rows
        self._max_bytes = max_result_bytes
        self._page_bytes = page_bytes
        self._org_bytes = (
            budget.ORG_RESULT_FILES * max_result_bytes
            if org_result_bytes is None
            else org_result_bytes
        )
        self._retention_ms = int(retention_hours * 3_600_000)
        self._timeout_s = timeout_s
        self._max_active = max_active
        self._now_ms = now_ms
        self._running: dict[str, _Running] = {}
        self._lock = threading.Lock()
        self._closed = False
        self._last_cleanup_ms = 0
        for job_id in self._jobs.fail_unfinished(now_ms(), RESTARTED):
            self._files.delete(job_id)
        self._files.sweep()
        self._queue = FairQueue(per_org=max(1, workers - 1))
        self._workers = [
            threading.Thread(target=self._serve, name=f"query-job-{number}", daemon=True)
            for number in range(workers)
        ]
        for worker in self._workers:
            worker.start()

    def submit(
        self,
        sql: str | None,
        *,
        scope: Scope,
        owner: str,
        client: str = "API",
        client_id: str = "",
        name: str = "",
        description: str = "",
        template_id: str | None = None,
        params: dict[str, Any] | None = None,
    ) -> QueryJob:
        """Queue one query (SQL, or a template's) and return it SUBMITTED.

        `params` fill the SQL's `$name` placeholders (over a template's defaults) as literals.
        Raises `InvalidInput` (400) naming the field when the SQL is refused, a parameter is
        missing or unknown, or both or neither of `sql` and `template_id` are given;
        `NotFound` for a template `scope` has not; `QueryBusy` (503) when the organization
        already has `max_active` queries waiting or running, or its kept results take
        `org_result_bytes` or more.
        """
        text, merged, template_name = self._source(scope, sql, template_id, params or {})
        effective = admitted(substitute(text, merged))
        request = Submission(
            org_id=scope[0],
            sandbox=scope[1],
            user_id=owner,
            sql=text,
            effective_sql=effective,
            client=_text(client, "client", 100),
            client_id=client_id,
            name=_text(name, "name", MAX_NAME_CHARS),
            description=_text(description, "description", MAX_DESCRIPTION_CHARS),
            params=merged,
            template_id=template_id or "",
            template_name=template_name,
        )
        if self._jobs.active(scope[0]) >= self._max_active:
            message = (
                f"this organization already has {self._max_active} queries waiting or "
                "running; wait for some to end or cancel them"
            )
            raise QueryBusy(message, retry_after_s=5)
        self.cleanup()
        kept = self._jobs.kept_bytes(scope[0])
        if kept >= self._org_bytes:
            raise QueryBusy(budget.over_quota(kept, self._org_bytes), retry_after_s=QUOTA_RETRY_S)
        job = self._jobs.add(request, self._now_ms())
        with self._lock:
            if self._closed:
                raise TransientError("the query service is shutting down")
            self._queue.put(scope[0], job.id)
        return job

    def get(self, scope: Scope, job_id: str) -> QueryJob:
        """The job `job_id` of `scope`; `NotFound` when `scope` has none by that id."""
        job = self._jobs.find(*scope, job_id)
        if job is None:
            raise NotFound(f"no query {job_id!r} in this organization and sandbox")
        return job

    def list(
        self, scope: Scope, listing: Listing, *, include_deleted: bool = False
    ) -> tuple[list[QueryJob], int | None]:
        """A page of `scope`'s jobs and the order key of the next page (None: last page)."""
        return self._jobs.page(*scope, listing, include_deleted=include_deleted)

    def cancel(self, scope: Scope, job_id: str) -> QueryJob:
        """Stop a waiting or running job (it becomes KILLED); `Conflict` (409) when it had
        already ended, `NotFound` when `scope` has no such job."""
        job = self.get(scope, job_id)
        if job.state not in TERMINAL and self._jobs.kill(job_id, self._now_ms(), CANCELLED):
            with self._lock:
                running = self._running.get(job_id)
            if running is not None:
                running.cancel()
            return self.get(scope, job_id)
        ended = self.get(scope, job_id)
        raise Conflict(f"query {job_id} cannot be cancelled: it already ended {ended.state}")

    def soft_delete(self, scope: Scope, job_id: str) -> QueryJob:
        """Hide a job from lists (Adobe's `soft_delete`) and delete its results (a job still
        waiting or running keeps none when it ends); `NotFound` as `get`."""
        self.get(scope, job_id)
        if self._jobs.soft_delete(job_id, self._now_ms()):
            self._files.delete_kept(job_id)
        return self.get(scope, job_id)

    def results(self, scope: Scope, job_id: str, start: int = 0, limit: int = 100) -> ResultPage:
        """Rows `start` to `start + limit` of a SUCCESS job's result: fewer when more would
        take over `page_bytes` as values (the page's `start` plus its row count is where the
        next begins).

        Raises `InvalidInput` for a bad `start` or `limit` (1 to 1000), `NotFound` as `get`,
        `Conflict` when the job has not succeeded (yet), was soft-deleted, its results
        expired, or row `start` alone takes over `page_bytes` (naming
        `query_max_result_bytes`).
        """
        if start < 0:
            raise InvalidInput(f"start must be 0 or more, got {start}", field="start")
        if not 1 <= limit <= MAX_PAGE_ROWS:
            message = f"limit must be from 1 to {MAX_PAGE_ROWS}, got {limit}"
            raise InvalidInput(message, field="limit")
        self.cleanup()
        job = self.get(scope, job_id)
        if job.deleted:
            raise Conflict(f"query {job_id} was deleted (soft_delete) and its results with it")
        if job.state != "SUCCESS":
            message = f"query {job_id} is {job.state}; results exist once it is SUCCESS"
            raise Conflict(message)
        if job.results != "kept":
            hours = self._retention_ms / 3_600_000
            message = (
                f"the results of query {job_id} expired: results are kept {hours:g} h "
                "(query_results_hours); run the query again"
            )
            raise Conflict(message)
        try:
            rows = self._files.page(job_id, start, limit, self._page_bytes)
        except FileNotFoundError:  # expired or deleted by another call in between
            raise Conflict(f"the results of query {job_id} expired; run it again") from None
        except RowTooLarge as large:
            raise Conflict(budget.row_too_large(job_id, large.row, self._page_bytes)) from None
        return ResultPage(job.columns, rows, start, limit, job.row_count, job.truncated)

    def cleanup(self, now_ms: int | None = None) -> int:
        """Delete result files older than the retention; the number deleted. Runs at most once
        a minute unless `now_ms` is given."""
        now = self._now_ms() if now_ms is None else now_ms
        if now_ms is None and now - self._last_cleanup_ms < CLEANUP_EVERY_MS:
            return 0
        self._last_cleanup_ms = now
        expired = self._jobs.expire(now - self._retention_ms, now)
        for job_id in expired:
            self._files.delete(job_id)
        return len(expired)

    def close(self) -> None:
        """Cancel running queries, stop the workers and close the files. Jobs left waiting
        are marked FAILED when the next `QueryJobs` opens the directory."""
        with self._lock:
            self._closed = True
            running = list(self._running.values())
        self._queue.close()
        for job in running:
            job.cancel()
        for worker in self._workers:
            worker.join()
        self._files.close()
        self._file.close()

    def _source(
        self, scope: Scope, sql: str | None, template_id: str | None, params: dict[str, Any]
    ) -> tuple[str, dict[str, Any], str]:
        """The SQL to run, its parameters (a template's defaults overridden), template name."""
        params = check_params(params)
        if (sql is None) == (template_id is None):
            message = "give either sql or templateId (one of them, not both)"
            raise InvalidInput(message, field="sql")
        if sql is not None:
            check_unicode(sql, "sql")
            if not sql.strip() or len(sql) > MAX_SQL_CHARS:
                message = f"sql is required, at most {MAX_SQL_CHARS} characters"
                raise InvalidInput(message, field="sql")
            return sql, params, ""
        template = self.templates.get(scope, str(template_id))
        if template is None:
            raise NotFound(f"no query template {template_id!r} in this organization and sandbox")
        return template.sql, {**template.params, **params}, template.name

    def _serve(self) -> None:
        """A worker thread: run the jobs the queue hands it until it closes."""
        while (taken := self._queue.take()) is not None:
            org_id, job_id = taken
            try:
                self._work(job_id)
            finally:
                self._queue.done(org_id)

    def _work(self, job_id: str) -> None:
        """Run one job on a worker thread; never raises."""
        try:
            if not self._jobs.start(job_id, self._now_ms()):
                return  # cancelled while it waited
            running = _Running()
            with self._lock:
                if self._closed:
                    return
                self._running[job_id] = running
            try:
                outcome = self._outcome(job_id, running)
            finally:
                running.done()
                with self._lock:
                    self._running.pop(job_id, None)
            self._finish(job_id, outcome)
        except Exception:
            log.exception("query job %s could not be run", job_id)

    def _finish(self, job_id: str, outcome: _Outcome) -> None:
        errors = () if outcome.error is None else (outcome.error,)
        kept = outcome.state == "SUCCESS"
        finished = self._jobs.finish(
            job_id,
            outcome.state,
            self._now_ms(),
            row_count=outcome.row_count,
            truncated=outcome.truncated,
            columns=outcome.columns,
            errors=errors,
            results="kept" if kept else "none",
            result_bytes=outcome.file_bytes,
        )
        if not finished or not kept:  # cancelled meanwhile: its rows are not wanted
            self._files.delete(job_id)

    def _outcome(self, job_id: str, running: _Running) -> _Outcome:
        job = self._jobs.get(job_id)
        if job is None:
            return _Outcome("FAILED", error=RESTARTED)
        kept = self._jobs.kept_bytes(job.request.org_id)
        if kept >= self._org_bytes:  # results of its organization's earlier jobs filled it
            return _Outcome(
                "FAILED", error=JobError("53400", budget.over_quota(kept, self._org_bytes))
            )
        for _ in range(BUSY_RETRIES):
            try:
                return self._run(job, running)
            except QueryBusy:
                if running.cancelled:
                    break
                continue
            except QueryTimeout as error:
                return _Outcome("TIMEOUT", error=JobError("57014", str(error)))
            except InvalidInput as error:
                state: State = "KILLED" if running.cancelled else "FAILED"
                return _Outcome(state, error=CANCELLED if running.cancelled else _user(error))
            except TransientError as error:
                return _Outcome("FAILED", error=JobError("58000", str(error), "SYSTEM_ERROR"))
        if running.cancelled:
            return _Outcome("KILLED", error=CANCELLED)
        busy = "every query slot stayed busy (query_max_concurrent); submit the query again"
        return _Outcome("FAILED", error=JobError("53000", busy, "SYSTEM_ERROR"))

    def _run(self, job: QueryJob, running: _Running) -> _Outcome:
        scope = (job.request.org_id, job.request.sandbox)
        sql = job.request.effective_sql
        with self._engine.stream(sql, scope=scope, timeout_s=self._timeout_s) as rows:
            running.attach(rows)
            try:
                return self._write(job.id, rows, running)
            finally:
                running.detach()

    def _write(self, job_id: str, rows: RowStream, running: _Running) -> _Outcome:
        """Write the stream's rows to the job's result file, up to the row cap; FAILED, and
        the file dropped, once they pass the byte cap."""
        if running.cancelled:  # before it started: nothing to interrupt yet
            return _Outcome("KILLED", error=CANCELLED)
        with self._files.writer(job_id, rows.schema) as writer:
            truncated = False
            for batch in rows.batches(BATCH_READ_ROWS):
                room = self._max_rows - writer.rows
                kept = batch.slice(0, room) if batch.num_rows > room else batch
                if writer.bytes + kept.nbytes > self._max_bytes:
                    message = budget.job_too_large(self._max_bytes, writer.rows + kept.num_rows)
                    return _Outcome("FAILED", error=JobError("54000", message))
                writer.write(kept)
                if kept is not batch:
                    truncated = True
                    break
            writer.commit()
        return _Outcome(
            "SUCCESS", writer.rows, truncated, rows.columns, file_bytes=writer.file_bytes
        )


def _user(error: InvalidInput) -> JobError:
    return JobError("42000", str(error))


def _text(value: str, field_name: str, most: int) -> str:
    check_unicode(value, field_name)
    if len(value) > most:
        message = f"{field_name} must be at most {most} characters, got {len(value)}"
        raise InvalidInput(message, field=field_name)
    return value


def open_query_jobs(settings: Settings, layout: Layout, engine: Engine) -> QueryJobs:
    """The query jobs of a Koppla home (`<home>/query`), with the settings' row and byte caps
    (a page holds at most `query_max_result_bytes`), result retention and streaming time
    limit."""
    return QueryJobs(
        engine,
        layout.home / "query",
        max_rows=settings.query_job_max_rows,
        max_result_bytes=settings.query_job_max_result_bytes,
        page_bytes=settings.query_max_result_bytes,
        retention_hours=settings.query_results_hours,
        timeout_s=settings.query_stream_timeout_s,
    )
