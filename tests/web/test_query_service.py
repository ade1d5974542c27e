"""Adobe's Query Service API over HTTP: submit, poll, page, cancel, templates, organizations."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx
import pytest
from fastapi import FastAPI

from koppla.core.settings import Settings
from koppla.platform.query.jobs.params import substitute
from koppla.platform.query.jobs.runner import QueryJobs, open_query_jobs
from koppla.web import errors
from koppla.web.routes import query_service, query_templates
from koppla.web.services import Services

pytestmark = pytest.mark.anyio

OTHER_ORG = "OTHERORG0000000000000000@AdobeOrg"
QUERIES = "/data/foundation/query/queries"
TEMPLATES = "/data/foundation/query/query-templates"
LONG = "SELECT count(*) FROM range(100000000000)"
TERMINAL = {"SUCCESS", "FAILED", "KILLED", "TIMEOUT"}
WAIT_S = 60.0


@pytest.fixture
def jobs(settings: Settings, services: Services) -> Iterator[QueryJobs]:
    """The home's query jobs, opened as the server opens them."""
    opened = open_query_jobs(settings, services.layout, services.query)
    yield opened
    opened.close()


@asynccontextmanager
async def serving(services: Services, jobs: QueryJobs) -> AsyncIterator[httpx.AsyncClient]:
    """A client for an app serving the query service's routes over `services` and `jobs`."""
    app = FastAPI()
    app.state.services = services
    app.state.query_jobs = jobs
    app.include_router(query_service.router)
    app.include_router(query_templates.router)
    errors.install(app)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as client:
        yield client


@pytest.fixture
async def http(services: Services, jobs: QueryJobs) -> AsyncIterator[httpx.AsyncClient]:
    """A client for an app serving the query service's routes over the real services."""
    async with serving(services, jobs) as client:
        yield client


@pytest.fixture
def narrow_jobs(settings: Settings, services: Services) -> Iterator[QueryJobs]:
    """Query jobs opened as the server opens them, with small byte caps: 200 KB per job,
    50 KB per page."""
    small = settings.model_copy(
        update={"query_job_max_result_bytes": 200_000, "query_max_result_bytes": 50_000}
    )
    opened = open_query_jobs(small, services.layout, services.query)
    yield opened
    opened.close()


@pytest.fixture
def ann(services: Services) -> dict[str, str]:
    """A token of the home's organization, named ann."""
    return {"authorization": f"Bearer {services.catalog.add_token('ann')}"}


@pytest.fixture
def bob(services: Services) -> dict[str, str]:
    """Another token of the home's organization, named bob."""
    return {"authorization": f"Bearer {services.catalog.add_token('bob')}"}


@pytest.fixture
def eve(services: Services) -> dict[str, str]:
    """A token of another organization."""
    return {"authorization": f"Bearer {services.catalog.add_token('eve', org_id=OTHER_ORG)}"}


async def submit(http: httpx.AsyncClient, auth: dict[str, str], **body: Any) -> dict[str, Any]:
    """POST /queries; the 202 answer's query."""
    answer = await http.post(QUERIES, json=body, headers=auth)
    assert answer.status_code == 202, answer.text
    query: dict[str, Any] = answer.json()
    return query


async def poll(
    http: httpx.AsyncClient, auth: dict[str, str], query_id: str, states: set[str] = TERMINAL
) -> dict[str, Any]:
    """GET /queries/{id} until its state is one of `states`."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        query: dict[str, Any] = (await http.get(f"{QUERIES}/{query_id}", headers=auth)).json()
        if query["state"] in states:
            return query
        await anyio.sleep(0.02)
    raise AssertionError(f"query {query_id} never reached {states}")


async def test_a_query_is_submitted_polled_to_success_and_paged(
    http: httpx.AsyncClient, ann: dict[str, str]
) -> None:
    sql = "SELECT i, i * 2 AS twice FROM range(250) t(i) ORDER BY i"
    submitted = await submit(http, ann, sql=sql, name="doubles", description="each i twice")
    assert submitted["state"] == "SUBMITTED"
    assert (submitted["sql"], submitted["userId"], submitted["client"]) == (sql, "ann", "API")
    assert (submitted["isCTAS"], submitted["isInsertInto"], submitted["errors"]) == (
        False,
        False,
        [],
    )
    assert submitted["_links"]["cancel"]["body"] == '{"op": "cancel"}'
    done = await poll(http, ann, submitted["id"])
    assert (done["state"], done["rowCount"], done["truncated"]) == ("SUCCESS", 250, False)
    assert (done["name"], done["description"]) == ("doubles", "each i twice")

    rows: list[list[int]] = []
    url: str | None = done["_links"]["results"]["href"] + "?limit=100"
    pages = 0
    while url is not None:
        page = (await http.get(url, headers=ann)).json()
        assert page["columns"] == [
            {"name": "i", "type": "BIGINT"},
            {"name": "twice", "type": "BIGINT"},
        ]
        assert (page["rowCount"], page["limit"]) == (250, 100)
        rows.extend(page["rows"])
        pages += 1
        url = page["_links"].get("next", {}).get("href")
    assert pages == 3
    assert rows == [[i, i * 2] for i in range(250)]


async def test_a_long_query_is_cancelled_and_a_second_cancel_conflicts(
    http: httpx.AsyncClient, ann: dict[str, str]
) -> None:
    long = await submit(http, ann, sql=LONG)
    await poll(http, ann, long["id"], {"IN_PROGRESS"})
    cancel = await http.patch(f"{QUERIES}/{long['id']}", json={"op": "cancel"}, headers=ann)
    assert cancel.status_code == 202
    killed = await poll(http, ann, long["id"])
    assert killed["state"] == "KILLED"
    again = await http.patch(f"{QUERIES}/{long['id']}", json={"op": "cancel"}, headers=ann)
    assert again.status_code == 409
    assert "already ended KILLED" in again.json()["detail"]
    results = await http.get(f"{QUERIES}/{long['id']}/results", headers=ann)
    assert results.status_code == 409
    later = await submit(http, ann, sql="SELECT 'after' AS word")
    assert (await poll(http, ann, later["id"]))["state"] == "SUCCESS"


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"sql": "DROP TABLE x"}, "sql", "DROP is not allowed"),
        ({"sql": "COPY (SELECT 1) TO 'x.csv'"}, "sql", "COPY is not allowed"),
        ({"sql": "CREATE TABLE t AS (SELECT 1)"}, "sql", "derived datasets"),
        ({"sql": "SELECT 1", "ctasParameters": {"datasetName": "t"}}, None, "derived datasets"),
        ({"sql": "SELECT $n AS n"}, "queryParameters", "no value for parameter $n"),
        ({"sql": "SELECT 1", "queryParameters": {"n": 1}}, "queryParameters", "'n' is not used"),
        ({}, "sql", "either sql or templateId"),
    ],
)
async def test_a_query_that_cannot_run_is_a_400_naming_why(
    http: httpx.AsyncClient, ann: dict[str, str], body: dict[str, Any], field: str, words: str
) -> None:
    answer = await http.post(QUERIES, json=body, headers=ann)
    assert answer.status_code == 400
    assert words in answer.json()["detail"]
    if field is not None:
        assert answer.json()["field"] == field
    assert (await http.get(QUERIES, headers=ann)).json()["queries"] == []


async def test_a_failing_query_ends_failed_with_the_engines_message(
    http: httpx.AsyncClient, ann: dict[str, str]
) -> None:
    query = await submit(http, ann, sql="SELECT * FROM no_such_dataset")
    failed = await poll(http, ann, query["id"])
    assert failed["state"] == "FAILED"
    (error,) = failed["errors"]
    assert "unknown table no_such_dataset" in error["message"]
    assert error["errorType"] == "USER_ERROR"


async def test_another_organization_gets_404_and_an_empty_list(
    http: httpx.AsyncClient, ann: dict[str, str], eve: dict[str, str]
) -> None:
    query = await submit(http, ann, sql="SELECT 1 AS one")
    await poll(http, ann, query["id"])
    own = f"{QUERIES}/{query['id']}"
    assert (await http.get(own, headers=eve)).status_code == 404
    assert (await http.get(f"{own}/results", headers=eve)).status_code == 404
    assert (await http.patch(own, json={"op": "cancel"}, headers=eve)).status_code == 404
    assert (await http.get(QUERIES, headers=eve)).json()["queries"] == []
    dev = {**ann, "x-sandbox-name": "dev"}
    assert (await http.get(own, headers=dev)).status_code == 404


async def test_the_history_lists_each_users_queries_with_adobes_filters(
    http: httpx.AsyncClient, ann: dict[str, str], bob: dict[str, str]
) -> None:
    first = await submit(http, ann, sql="SELECT 1 AS one")
    second = await submit(http, ann, sql="SELECT 2 AS two")
    theirs = await submit(http, bob, sql="SELECT 3 AS three")
    for query in (first, second, theirs):
        await poll(http, ann, query["id"])
    listed = await http.get(QUERIES, params={"property": "userId==ann", "limit": 1}, headers=ann)
    page = listed.json()
    assert [q["id"] for q in page["queries"]] == [second["id"]]
    assert (page["_page"]["count"], page["_page"]["orderby"]) == (1, "-created")
    following = await http.get(page["_links"]["next"]["href"], headers=ann)
    assert [q["id"] for q in following.json()["queries"]] == [first["id"]]
    assert following.json()["_links"] == {}
    everyone = (await http.get(QUERIES, headers=bob)).json()["queries"]
    assert [q["id"] for q in everyone] == [theirs["id"], second["id"], first["id"]]
    bad = await http.get(QUERIES, params={"property": "state>1"}, headers=ann)
    assert (bad.status_code, bad.json()["field"]) == (400, "property")


async def test_templates_are_kept_listed_counted_changed_run_and_deleted(
    http: httpx.AsyncClient, ann: dict[str, str], bob: dict[str, str], eve: dict[str, str]
) -> None:
    sql = "SELECT count(*) AS n, $who AS who FROM (VALUES ('ann'), ('bob')) t(x) WHERE x = $who"
    body = {"name": "by person", "sql": sql, "queryParameters": {"who": "ann"}}
    created = await http.post(TEMPLATES, json=body, headers=ann)
    assert created.status_code == 202
    template = created.json()
    assert (template["name"], template["userId"], template["queryParameters"]) == (
        "by person",
        "ann",
        {"who": "ann"},
    )
    own = f"{TEMPLATES}/{template['id']}"
    assert (await http.get(own, headers=bob)).json()["sql"] == sql
    assert (await http.get(own, headers=eve)).status_code == 404
    assert (await http.get(f"{TEMPLATES}/count", headers=ann)).json()["totalCount"] == 1
    assert (await http.get(f"{TEMPLATES}/count", headers=eve)).json()["totalCount"] == 0
    named = await http.get(TEMPLATES, params={"property": "name~person"}, headers=bob)
    assert [t["id"] for t in named.json()["templates"]] == [template["id"]]

    hostile = "x' OR '1'='1"
    run = await submit(http, bob, templateId=template["id"], queryParameters={"who": hostile})
    assert run["templateName"] == "by person"
    done = await poll(http, bob, run["id"])
    page = (await http.get(f"{QUERIES}/{run['id']}/results", headers=bob)).json()
    assert page["rows"] == [[0, hostile]]
    assert done["effectiveSQL"] == substitute(sql, {"who": hostile})
    assert done["effectiveSQL"].count("'x'' OR ''1''=''1'") == 2
    assert (done["sql"], done["queryParameters"]) == (sql, {"who": hostile})

    changed = {"name": "renamed", "sql": "SELECT $who AS who", "queryParameters": {"who": "b"}}
    updated = await http.put(own, json=changed, headers=bob)
    assert updated.status_code == 202
    assert (updated.json()["name"], updated.json()["lastUpdatedBy"]) == ("renamed", "bob")
    assert (await http.put(own, json=changed, headers=eve)).status_code == 404
    assert (await http.delete(own, headers=eve)).status_code == 404
    assert (await http.delete(own, headers=ann)).json() == {"message": "Deleted", "statusCode": 202}
    assert (await http.get(own, headers=ann)).status_code == 404


async def test_a_template_that_could_not_run_is_a_400(
    http: httpx.AsyncClient, ann: dict[str, str]
) -> None:
    bad = {"name": "drop", "sql": "DROP TABLE x"}
    answer = await http.post(TEMPLATES, json=bad, headers=ann)
    assert answer.status_code == 400
    assert "DROP is not allowed" in answer.json()["detail"]


async def test_a_page_of_wide_rows_is_shorter_and_a_row_wider_than_a_page_is_a_409(
    services: Services, narrow_jobs: QueryJobs, ann: dict[str, str]
) -> None:
    sql = (
        "SELECT i, CASE WHEN i = 7 THEN repeat('y', 60000) ELSE repeat('x', 9000) END AS v "
        "FROM range(9) t(i) ORDER BY i"
    )
    async with serving(services, narrow_jobs) as http:
        query = await submit(http, ann, sql=sql)
        done = await poll(http, ann, query["id"])
        assert (done["state"], done["rowCount"]) == ("SUCCESS", 9)
        url = done["_links"]["results"]["href"]
        first = (await http.get(url, params={"limit": 9}, headers=ann)).json()
        count = len(first["rows"])
        assert 1 <= count < 7
        assert [row[0] for row in first["rows"]] == list(range(count))
        assert first["_page"] == {"start": 0, "count": count, "next": count}
        assert f"start={count}&limit=9" in first["_links"]["next"]["href"]
        wide = await http.get(url, params={"start": 7, "limit": 2}, headers=ann)
        assert wide.status_code == 409
        assert "row 7 of query" in wide.json()["detail"]
        assert "query_max_result_bytes" in wide.json()["detail"]
        last = (await http.get(url, params={"start": 8}, headers=ann)).json()
        assert ([row[0] for row in last["rows"]], last["_page"]["next"]) == ([8], None)


async def test_a_query_whose_values_pass_the_job_byte_cap_fails_naming_it(
    services: Services, narrow_jobs: QueryJobs, ann: dict[str, str]
) -> None:
    async with serving(services, narrow_jobs) as http:
        query = await submit(http, ann, sql="SELECT repeat('x', 2000) AS big FROM range(200)")
        failed = await poll(http, ann, query["id"])
        assert failed["state"] == "FAILED"
        (error,) = failed["errors"]
        assert "query_job_max_result_bytes" in error["message"]
        results = await http.get(f"{QUERIES}/{query['id']}/results", headers=ann)
        assert results.status_code == 409
    assert list((services.layout.home / "query" / "results").iterdir()) == []


async def test_an_organization_over_its_result_quota_gets_503_until_it_soft_deletes(
    services: Services, ann: dict[str, str], eve: dict[str, str]
) -> None:
    jobs = QueryJobs(services.query, services.layout.home / "query", org_result_bytes=20_000)
    try:
        async with serving(services, jobs) as http:
            sql = "SELECT i, md5(i::VARCHAR) AS h FROM range(2000) t(i)"
            big = await submit(http, ann, sql=sql)
            assert (await poll(http, ann, big["id"]))["state"] == "SUCCESS"
            refused = await http.post(QUERIES, json={"sql": "SELECT 1"}, headers=ann)
            assert refused.status_code == 503
            assert "results of this organization take" in refused.json()["detail"]
            assert "soft_delete" in refused.json()["detail"]
            assert int(refused.headers["retry-after"]) > 0
            await submit(http, eve, sql="SELECT 1 AS one")  # another organization is not held

            own = f"{QUERIES}/{big['id']}"
            deleted = await http.patch(own, json={"op": "soft_delete"}, headers=ann)
            assert deleted.status_code == 202
            assert (await http.get(f"{own}/results", headers=ann)).status_code == 409
            assert not (services.layout.home / "query" / "results" / f"{big['id']}.arrow").exists()
            again = await submit(http, ann, sql="SELECT 1 AS one")
            assert (await poll(http, ann, again["id"]))["state"] == "SUCCESS"
    finally:
        jobs.close()
