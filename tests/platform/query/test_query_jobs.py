"""Asynchronous query jobs: states, paged results, cancelling, restarts, templates, expiry."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from koppla.core import clock
from koppla.core.errors import Conflict, InvalidInput, NotFound
from koppla.platform.query.engine import QueryEngine, ScopedTables
from koppla.platform.query.errors import QueryBusy, QueryRefused
from koppla.platform.query.jobs import store as job_schema
from koppla.platform.query.jobs.listing import Listing, listing
from koppla.platform.query.jobs.model import TERMINAL, QueryJob, State
from koppla.platform.query.jobs.queue import FairQueue
from koppla.platform.query.jobs.runner import RESTARTED, QueryJobs
from koppla.platform.query.jobs.store import JOB_ORDERS, JOB_RULES

ORG = ("ORG1@AdobeOrg", "prod")
OTHER = ("ORG2@AdobeOrg", "prod")
LONG = "SELECT count(*) FROM range(100000000000)"
ENDLESS = "SELECT count(*) FROM range(1000000000000000) t(i) WHERE i % 7 = 3"
"""Runs for weeks unless cancelled (`LONG` ends on its own within seconds)."""
POLL_S = 0.02
WAIT_S = 60.0


@pytest.fixture
def engine() -> Iterator[QueryEngine]:
    """An engine whose scoped queries see no datasets (the queries read `range`)."""
    with QueryEngine(lambda: {}, scoped=lambda scope: ScopedTables({})) as query_engine:
        yield query_engine


@pytest.fixture
def open_jobs(engine: QueryEngine, tmp_path: Path) -> Iterator[Callable[..., QueryJobs]]:
    """Opens `QueryJobs` over `tmp_path / "query"`; every one opened is closed after the test."""
    opened: list[QueryJobs] = []

    def opener(**options: object) -> QueryJobs:
        jobs = QueryJobs(engine, tmp_path / "query", **options)  # type: ignore[arg-type]
        opened.append(jobs)
        return jobs

    yield opener
    for jobs in opened:
        jobs.close()


@pytest.fixture
def jobs(open_jobs: Callable[..., QueryJobs]) -> QueryJobs:
    """Query jobs with one worker, so a job that holds it blocks every other."""
    return open_jobs(workers=1)


def wait_for(
    jobs: QueryJobs,
    job: QueryJob,
    states: frozenset[State] = TERMINAL,
    scope: tuple[str, str] = ORG,
) -> QueryJob:
    """Poll the job until it reaches one of `states`."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        current = jobs.get(scope, job.id)
        if current.state in states:
            return current
        time.sleep(POLL_S)
    raise AssertionError(f"job {job.id} stayed {jobs.get(scope, job.id).state}")


def submit(jobs: QueryJobs, sql: str, **options: object) -> QueryJob:
    """Submit `sql` as ann of ORG."""
    return jobs.submit(sql, scope=ORG, owner="ann", **options)  # type: ignore[arg-type]


def test_a_query_moves_through_its_states_to_success_and_its_rows_page_in_order(
    jobs: QueryJobs,
) -> None:
    job = submit(jobs, "SELECT i, 'row ' || i AS label FROM range(250) t(i) ORDER BY i")
    assert job.state == "SUBMITTED"
    done = wait_for(jobs, job)
    assert done.state == "SUCCESS"
    assert (done.row_count, done.truncated) == (250, False)
    assert [c.name for c in done.columns] == ["i", "label"]
    assert done.started_ms is not None and done.ended_ms is not None

    pages = [jobs.results(ORG, job.id, start, 100) for start in (0, 100, 200)]
    assert [len(p.rows) for p in pages] == [100, 100, 50]
    rows = [row for page in pages for row in page.rows]
    assert rows == [[i, f"row {i}"] for i in range(250)]
    assert {p.row_count for p in pages} == {250}
    assert jobs.results(ORG, job.id, 250, 100).rows == []


def test_a_long_query_is_cancelled_killed_and_its_worker_runs_the_next(jobs: QueryJobs) -> None:
    long = submit(jobs, LONG)
    wait_for(jobs, long, frozenset({"IN_PROGRESS"}))
    assert jobs.cancel(ORG, long.id).state == "KILLED"
    after = submit(jobs, "SELECT 42 AS answer")
    assert wait_for(jobs, after).state == "SUCCESS"  # one worker: the long query let go of it
    assert jobs.results(ORG, after.id).rows == [[42]]
    killed = jobs.get(ORG, long.id)
    assert killed.state == "KILLED"
    assert [e.message for e in killed.errors] == ["query was cancelled"]
    with pytest.raises(Conflict, match="already ended KILLED"):
        jobs.cancel(ORG, long.id)


def test_a_waiting_query_cancelled_never_runs(jobs: QueryJobs) -> None:
    long = submit(jobs, LONG)
    wait_for(jobs, long, frozenset({"IN_PROGRESS"}))
    waiting = submit(jobs, "SELECT 1 AS one")
    assert jobs.cancel(ORG, waiting.id).state == "KILLED"
    jobs.cancel(ORG, long.id)
    last = submit(jobs, "SELECT 2 AS two")
    assert wait_for(jobs, last).state == "SUCCESS"
    never = jobs.get(ORG, waiting.id)
    assert (never.state, never.started_ms) == ("KILLED", None)


def test_a_query_past_its_time_limit_ends_timeout(open_jobs: Callable[..., QueryJobs]) -> None:
    jobs = open_jobs(timeout_s=0.2)
    stopped = wait_for(jobs, submit(jobs, LONG))
    assert stopped.state == "TIMEOUT"
    assert "time limit" in stopped.errors[0].message


def test_an_organization_with_too_many_queries_waiting_is_told_to_wait(
    open_jobs: Callable[..., QueryJobs],
) -> None:
    jobs = open_jobs(max_active=1)
    long = submit(jobs, LONG)
    with pytest.raises(QueryBusy, match="already has 1 queries waiting or running"):
        submit(jobs, "SELECT 1 AS one")
    other = jobs.submit("SELECT 1 AS one", scope=OTHER, owner="eve")
    jobs.cancel(ORG, long.id)
    assert other.state == "SUBMITTED"
    assert submit(jobs, "SELECT 1 AS one").state == "SUBMITTED"


def test_a_query_the_engine_rejects_ends_failed_with_the_engines_message(
    jobs: QueryJobs,
) -> None:
    failed = wait_for(jobs, submit(jobs, "SELECT * FROM no_such_table"))
    assert failed.state == "FAILED"
    (error,) = failed.errors
    assert "unknown table no_such_table" in error.message
    assert error.error_type == "USER_ERROR"
    with pytest.raises(Conflict, match="is FAILED"):
        jobs.results(ORG, failed.id)


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("DROP TABLE x", "DROP is not allowed"),
        ("COPY (SELECT 1) TO 'out.csv'", "COPY is not allowed"),
        ("SELECT 1; SELECT 2", "multiple statements"),
        ("CREATE TABLE copy AS SELECT 1", "derived datasets"),
        ("-- note\nINSERT INTO t SELECT 1", "derived datasets"),
    ],
)
def test_sql_that_cannot_run_is_refused_when_submitted(
    jobs: QueryJobs, sql: str, message: str
) -> None:
    with pytest.raises(QueryRefused, match=message):
        submit(jobs, sql)
    assert jobs.list(ORG, _all())[0] == []


def test_another_organization_neither_reads_nor_lists_nor_cancels_a_query(
    jobs: QueryJobs,
) -> None:
    job = wait_for(jobs, submit(jobs, "SELECT 1 AS one"))
    for call in (jobs.get, jobs.cancel, jobs.results, jobs.soft_delete):
        with pytest.raises(NotFound):
            call(OTHER, job.id)
    with pytest.raises(NotFound):
        jobs.get((ORG[0], "dev"), job.id)
    assert jobs.list(OTHER, _all())[0] == []
    assert [j.id for j in jobs.list(ORG, _all())[0]] == [job.id]


def test_a_restart_marks_the_queries_that_were_running_or_waiting_failed(
    open_jobs: Callable[..., QueryJobs],
) -> None:
    before = open_jobs(workers=1)
    running = submit(before, LONG)
    wait_for(before, running, frozenset({"IN_PROGRESS"}))
    waiting = submit(before, "SELECT 1 AS one")
    after = open_jobs(workers=1)  # a new process opens the same home
    for job_id in (running.id, waiting.id):
        failed = after.get(ORG, job_id)
        assert failed.state == "FAILED"
        assert [e.message for e in failed.errors] == [RESTARTED.message]
    before.close()
    assert after.get(ORG, running.id).state == "FAILED"


def test_the_row_cap_keeps_the_first_rows_and_says_more_existed(
    open_jobs: Callable[..., QueryJobs],
) -> None:
    jobs = open_jobs(max_rows=1500)
    done = wait_for(jobs, submit(jobs, "SELECT i FROM range(5000) t(i) ORDER BY i"))
    assert (done.state, done.row_count, done.truncated) == ("SUCCESS", 1500, True)
    assert jobs.results(ORG, done.id, 1400, 1000).rows == [[i] for i in range(1400, 1500)]
    exact = wait_for(jobs, submit(jobs, "SELECT i FROM range(1500) t(i)"))
    assert (exact.row_count, exact.truncated) == (1500, False)


def test_results_expire_after_the_retention(
    open_jobs: Callable[..., QueryJobs], tmp_path: Path
) -> None:
    jobs = open_jobs(retention_hours=1)
    done = wait_for(jobs, submit(jobs, "SELECT 1 AS one"))
    assert done.ended_ms is not None
    assert jobs.cleanup(now_ms=done.ended_ms + 3_600_000 - 1) == 0
    assert jobs.results(ORG, done.id).rows == [[1]]
    assert jobs.cleanup(now_ms=done.ended_ms + 3_600_001) == 1
    assert jobs.get(ORG, done.id).results == "expired"
    with pytest.raises(Conflict, match=r"expired: results are kept 1 h \(query_results_hours\)"):
        jobs.results(ORG, done.id)
    assert list((tmp_path / "query" / "results").iterdir()) == []


def test_a_template_runs_with_a_hostile_parameter_as_one_literal(jobs: QueryJobs) -> None:
    template = jobs.templates.add(
        ORG,
        "ann",
        "matching",
        "SELECT count(*) AS n, $x AS asked FROM (VALUES ('a'), ('b')) t(x) WHERE x = $x",
        {"x": "a"},
        now_ms=1,
    )
    default = wait_for(jobs, jobs.submit(None, scope=ORG, owner="bob", template_id=template.id))
    assert jobs.results(ORG, default.id).rows == [[1, "a"]]
    hostile = "x' OR '1'='1"
    job = jobs.submit(None, scope=ORG, owner="bob", template_id=template.id, params={"x": hostile})
    done = wait_for(jobs, job)
    assert jobs.results(ORG, done.id).rows == [[0, hostile]]
    assert (done.request.template_name, done.request.params) == ("matching", {"x": hostile})


@pytest.mark.parametrize(
    ("sql", "params", "message"),
    [
        ("SELECT $a AS a", {}, r"no value for parameter \$a"),
        ("SELECT 1 AS a", {"b": 1}, "parameter 'b' is not used"),
        ("SELECT $a AS a", {"a": [1]}, "a must be a string, number, boolean or null"),
        ("SELECT $a AS a", {"a'; DROP": 1}, "is no parameter name"),
    ],
)
def test_a_missing_unknown_or_unusable_parameter_is_refused_by_name(
    jobs: QueryJobs, sql: str, params: dict[str, object], message: str
) -> None:
    with pytest.raises(InvalidInput, match=message) as refused:
        submit(jobs, sql, params=params)
    assert refused.value.field == "queryParameters"


def test_sql_and_a_template_are_one_or_the_other(jobs: QueryJobs) -> None:
    with pytest.raises(InvalidInput, match="either sql or templateId"):
        jobs.submit(None, scope=ORG, owner="ann")
    with pytest.raises(InvalidInput, match="either sql or templateId"):
        jobs.submit("SELECT 1", scope=ORG, owner="ann", template_id="x")
    with pytest.raises(NotFound, match="no query template"):
        jobs.submit(None, scope=ORG, owner="ann", template_id="nope")


def test_a_template_of_another_organization_cannot_be_read_or_run(jobs: QueryJobs) -> None:
    template = jobs.templates.add(ORG, "ann", "t", "SELECT 1 AS one", {}, now_ms=1)
    assert jobs.templates.get(OTHER, template.id) is None
    assert jobs.templates.delete(OTHER, template.id) is False
    with pytest.raises(NotFound):
        jobs.submit(None, scope=OTHER, owner="eve", template_id=template.id)


def test_a_template_that_could_not_run_is_not_saved(jobs: QueryJobs) -> None:
    with pytest.raises(QueryRefused, match="DROP is not allowed"):
        jobs.templates.add(ORG, "ann", "bad", "DROP TABLE x", {}, now_ms=1)
    with pytest.raises(InvalidInput, match="name is required"):
        jobs.templates.add(ORG, "ann", " ", "SELECT 1", {}, now_ms=1)


def test_the_list_filters_by_user_and_state_and_pages_newest_first(jobs: QueryJobs) -> None:
    mine = [wait_for(jobs, submit(jobs, f"SELECT {i} AS i")) for i in range(3)]
    theirs = wait_for(jobs, jobs.submit("SELECT 9 AS i", scope=ORG, owner="bob"))
    first, following = jobs.list(ORG, _all(property="userId==ann", limit=2))
    assert [j.id for j in first] == [mine[2].id, mine[1].id]
    assert following is not None
    rest, last = jobs.list(ORG, _all(property="userId==ann", limit=2, start=_iso(following)))
    assert ([j.id for j in rest], last) == ([mine[0].id], None)
    assert [j.id for j in jobs.list(ORG, _all(property="userId==bob"))[0]] == [theirs.id]
    assert len(jobs.list(ORG, _all(property="state==SUCCESS,sql~SELECT"))[0]) == 4
    assert jobs.list(ORG, _all(property="state==FAILED"))[0] == []
    oldest = jobs.list(ORG, _all(orderby="+created", limit=1))[0]
    assert [j.id for j in oldest] == [mine[0].id]


@pytest.mark.parametrize(
    ("property", "message"),
    [
        ("owner==ann", "cannot filter on 'owner'"),
        ("state>SUCCESS", "state allows only the operators == !="),
        ("created>=yesterday", "must be a time"),
        ("userId", "has no operator"),
    ],
)
def test_a_filter_that_cannot_apply_is_refused(property: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        _all(property=property)


def test_soft_deleted_queries_leave_the_list_but_stay_readable(jobs: QueryJobs) -> None:
    job = wait_for(jobs, submit(jobs, "SELECT 1 AS one"))
    jobs.soft_delete(ORG, job.id)
    assert jobs.list(ORG, _all())[0] == []
    assert [j.id for j in jobs.list(ORG, _all(), include_deleted=True)[0]] == [job.id]
    assert jobs.get(ORG, job.id).deleted


def test_a_job_whose_values_pass_the_byte_cap_fails_naming_it_and_keeps_no_file(
    open_jobs: Callable[..., QueryJobs], tmp_path: Path
) -> None:
    jobs = open_jobs(max_result_bytes=100_000)
    wide = wait_for(jobs, submit(jobs, "SELECT repeat('x', 10000) AS big FROM range(200)"))
    assert wide.state == "FAILED"
    (error,) = wide.errors
    assert "larger than query_job_max_result_bytes" in error.message
    assert error.error_type == "USER_ERROR"
    assert list((tmp_path / "query" / "results").iterdir()) == []
    with pytest.raises(Conflict, match="is FAILED"):
        jobs.results(ORG, wide.id)
    narrow = wait_for(jobs, submit(jobs, "SELECT repeat('x', 10000) AS big FROM range(5)"))
    assert (narrow.state, narrow.row_count) == ("SUCCESS", 5)


def test_a_page_of_wide_rows_holds_fewer_rows_and_the_next_page_starts_after_them(
    open_jobs: Callable[..., QueryJobs],
) -> None:
    jobs = open_jobs(page_bytes=50_000)
    sql = "SELECT i, repeat('x', 10000) AS big FROM range(20) t(i) ORDER BY i"
    done = wait_for(jobs, submit(jobs, sql))
    first = jobs.results(ORG, done.id, 0, 20)
    assert 1 <= len(first.rows) < 20
    assert sum(len(row[1]) for row in first.rows) <= 50_000
    seen, start = [row[0] for row in first.rows], len(first.rows)
    while start < done.row_count:
        page = jobs.results(ORG, done.id, start, 20)
        assert page.rows, f"a page at {start} was empty"
        seen += [row[0] for row in page.rows]
        start += len(page.rows)
    assert seen == list(range(20))


def test_a_row_wider_than_a_page_is_refused_naming_the_setting(
    open_jobs: Callable[..., QueryJobs],
) -> None:
    jobs = open_jobs(page_bytes=50_000)
    sql = (
        "SELECT i, CASE WHEN i = 1 THEN repeat('x', 100000) ELSE 'a' END AS v "
        "FROM range(3) t(i) ORDER BY i"
    )
    done = wait_for(jobs, submit(jobs, sql))
    assert jobs.results(ORG, done.id, 0, 3).rows == [[0, "a"]]
    with pytest.raises(Conflict, match=r"row 1 of query .* larger than query_max_result_bytes"):
        jobs.results(ORG, done.id, 1, 3)
    assert jobs.results(ORG, done.id, 2, 3).rows == [[2, "a"]]


HEX_ROWS = "SELECT i, md5(i::VARCHAR) AS h FROM range(2000) t(i) ORDER BY i"
"""About 70 KB of values that compress poorly."""


def test_an_organization_whose_results_fill_its_quota_waits_until_it_deletes_some(
    open_jobs: Callable[..., QueryJobs], tmp_path: Path
) -> None:
    jobs = open_jobs(org_result_bytes=20_000)
    done = wait_for(jobs, submit(jobs, HEX_ROWS))
    assert done.state == "SUCCESS"
    with pytest.raises(QueryBusy, match=r"results of this organization take \d+ bytes"):
        submit(jobs, "SELECT 1 AS one")
    other = jobs.submit("SELECT 1 AS one", scope=OTHER, owner="eve")
    assert wait_for(jobs, other, scope=OTHER).state == "SUCCESS"

    deleted = jobs.soft_delete(ORG, done.id)
    assert (deleted.deleted, deleted.results) == (True, "none")
    assert not (tmp_path / "query" / "results" / f"{done.id}.arrow").exists()
    with pytest.raises(Conflict, match="was deleted"):
        jobs.results(ORG, done.id)
    assert wait_for(jobs, submit(jobs, "SELECT 1 AS one")).state == "SUCCESS"


def test_a_query_deleted_while_it_waits_keeps_no_results_when_it_ends(
    jobs: QueryJobs, tmp_path: Path
) -> None:
    long = submit(jobs, LONG)
    wait_for(jobs, long, frozenset({"IN_PROGRESS"}))
    waiting = submit(jobs, HEX_ROWS)
    jobs.soft_delete(ORG, waiting.id)
    jobs.cancel(ORG, long.id)
    ended = wait_for(jobs, waiting)
    assert (ended.state, ended.results, ended.row_count) == ("SUCCESS", "none", 2000)
    assert list((tmp_path / "query" / "results").iterdir()) == []


def test_one_organizations_endless_queries_leave_a_worker_for_another(
    open_jobs: Callable[..., QueryJobs],
) -> None:
    jobs = open_jobs(workers=2)
    endless = [submit(jobs, ENDLESS) for _ in range(3)]
    wait_for(jobs, endless[0], frozenset({"IN_PROGRESS"}))
    other = jobs.submit("SELECT 1 AS one", scope=OTHER, owner="eve")
    assert wait_for(jobs, other, scope=OTHER).state == "SUCCESS"
    states = sorted(jobs.get(ORG, job.id).state for job in endless)
    assert states == ["IN_PROGRESS", "SUBMITTED", "SUBMITTED"]
    for job in endless:
        jobs.cancel(ORG, job.id)


def test_an_organization_may_have_twenty_queries_waiting_or_running(jobs: QueryJobs) -> None:
    queued = [submit(jobs, ENDLESS)] + [submit(jobs, "SELECT 1 AS one") for _ in range(19)]
    with pytest.raises(QueryBusy, match="already has 20 queries waiting or running"):
        submit(jobs, "SELECT 1 AS one")
    for job in queued:
        jobs.cancel(ORG, job.id)


def test_job_records_of_an_older_koppla_open_and_count_no_kept_bytes(
    open_jobs: Callable[..., QueryJobs], tmp_path: Path
) -> None:
    older = job_schema.SCHEMA.replace(",\n  result_bytes INTEGER NOT NULL DEFAULT 0", "")
    assert "result_bytes" not in older
    (tmp_path / "query").mkdir()
    with sqlite3.connect(tmp_path / "query" / "jobs.sqlite") as db:
        db.executescript(older)
    jobs = open_jobs(org_result_bytes=20_000)
    done = wait_for(jobs, submit(jobs, HEX_ROWS))
    assert jobs.results(ORG, done.id, 0, 1).rows == [[0, "cfcd208495d565ef66e7dff9f98764da"]]
    with pytest.raises(QueryBusy, match="results of this organization take"):
        submit(jobs, "SELECT 1 AS one")


def test_the_queue_takes_turns_between_organizations_and_caps_each() -> None:
    queue = FairQueue(per_org=2)
    for job in ("a1", "a2", "a3"):
        queue.put("A", job)
    for job in ("b1", "b2"):
        queue.put("B", job)
    taken = [queue.next_job() for _ in range(5)]
    assert taken == [("A", "a1"), ("B", "b1"), ("A", "a2"), ("B", "b2"), None]
    queue.done("B")
    assert queue.next_job() is None  # B has none waiting; A runs its two already
    queue.done("A")
    assert queue.next_job() == ("A", "a3")
    assert (queue.running("A"), queue.running("B")) == (2, 1)
    queue.close()
    assert queue.take() is None


def test_the_queue_starts_the_organization_with_fewest_running_first() -> None:
    queue = FairQueue(per_org=2)
    queue.put("A", "a1")
    assert queue.next_job() == ("A", "a1")
    queue.put("A", "a2")
    queue.put("B", "b1")  # A queued first, but runs one already
    assert queue.next_job() == ("B", "b1")
    assert queue.next_job() == ("A", "a2")


def _all(
    *,
    property: str | None = None,
    orderby: str | None = None,
    start: str | None = None,
    limit: int | None = None,
) -> Listing:
    return listing(
        JOB_RULES, JOB_ORDERS, property=property, orderby=orderby, start=start, limit=limit
    )


def _iso(epoch_ms: int) -> str:
    return clock.iso_ms(epoch_ms) or ""
