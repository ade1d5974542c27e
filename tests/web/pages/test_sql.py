"""The SQL editor page and its JSON twin: rows, the console's error, history, saved queries."""

from __future__ import annotations

import html
from collections.abc import AsyncIterator
from html.parser import HTMLParser

import httpx
import pytest

from koppla.core import codec
from koppla.core.settings import Settings
from koppla.platform.catalog.models import Datastream
from koppla.platform.pipeline.runner import Pipeline
from koppla.web.services import Services
from tests.web.pages.signin import add_user, admin_app, csrf_field, sign_in

pytestmark = pytest.mark.anyio

SQL = "SELECT * FROM demo_events ORDER BY timestamp DESC"
OTHER_ORG = "OTHERORG0000000000000000@AdobeOrg"
EVE = "eve@other.example"
EVE_PASSWORD = "another long password"
HTMX = {"HX-Request": "true"}


class Tables(HTMLParser):
    """The cells of a page's `<table id=...>` elements, row by row (header row first)."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self._table: str | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self._table = dict(attrs).get("id") or ""
            self.tables[self._table] = []
        elif tag == "tr" and self._table is not None:
            self.tables[self._table].append([])
        elif tag in ("td", "th") and self._table is not None:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._table is not None and self._cell is not None:
            self.tables[self._table][-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def results(page: str) -> list[dict[str, str]]:
    """The results table of the editor as dicts by column name."""
    parser = Tables()
    parser.feed(page)
    header, *rows = parser.tables["results"]
    return [dict(zip(header, row, strict=True)) for row in rows]


def console(page: str) -> str:
    """The text of the editor's console."""
    start = page.index('id="console"')
    return html.unescape(page[page.index(">", start) + 1 : page.index("</div>", start)]).strip()


async def send_page_view(http: httpx.AsyncClient, stream: Datastream, url: str) -> None:
    """Send one page view to the edge, as the Web SDK does."""
    xdm = {
        "eventType": "web.webpagedetails.pageViews",
        "timestamp": "2026-12-01T10:00:00Z",
        "web": {"webPageDetails": {"URL": url, "name": "home"}},
    }
    body = codec.dumps({"events": [{"xdm": xdm}]})
    answer = await http.post(f"/ee/v1/interact?configId={stream.id}", content=body)
    assert answer.status_code == 200, answer.text


@pytest.fixture
async def http(settings: Settings, demo: Datastream) -> AsyncIterator[httpx.AsyncClient]:
    """A client signed in as a person of the demo organization."""
    async with admin_app(settings) as client:
        await sign_in(client)
        yield client


async def editor_csrf(http: httpx.AsyncClient) -> str:
    page = await http.get("/admin/query")
    assert page.status_code == 200, page.text
    return csrf_field(page.text)


async def run(http: httpx.AsyncClient, sql: str, *, htmx: bool = False) -> httpx.Response:
    csrf = await editor_csrf(http)
    return await http.post(
        "/admin/query/run", data={"sql": sql, "csrf": csrf}, headers=HTMX if htmx else {}
    )


async def test_without_a_session_the_editor_sends_to_the_login_form(
    settings: Settings, demo: Datastream
) -> None:
    async with admin_app(settings) as http:
        answer = await http.get("/admin/query")
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/admin/login?next=")


async def test_the_editor_opens_on_the_newest_rows_of_a_dataset(http: httpx.AsyncClient) -> None:
    page = await http.get("/admin/query")

    assert page.status_code == 200
    assert f">{SQL}</textarea>" in page.text
    assert "<code>demo_events</code>" in page.text  # the organization's tables
    assert "Run a query to see its rows here." in console(page.text)


async def test_a_sent_event_shows_up_in_the_rows_of_a_query(
    http: httpx.AsyncClient, demo: Datastream, pipeline: Pipeline
) -> None:
    await send_page_view(http, demo, "https://shop.example/")
    pipeline.step()

    answer = await run(http, SQL)

    assert answer.status_code == 200
    (row,) = results(answer.text)
    assert row["eventType"] == "web.webpagedetails.pageViews"
    page = codec.loads(row["web"])["webPageDetails"]
    assert (page["URL"], page["name"]) == ("https://shop.example/", "home")
    assert row["timestamp"] == "2026-12-01T10:00:00Z"
    assert console(answer.text).startswith("1 row in ")
    assert "cut-off" not in answer.text


async def test_rows_past_the_cap_are_cut_off_with_a_note(
    http: httpx.AsyncClient, demo: Datastream, pipeline: Pipeline
) -> None:
    for n in range(3):
        await send_page_view(http, demo, f"https://shop.example/{n}")
    pipeline.step()
    csrf = await editor_csrf(http)

    answer = await http.post(
        "/admin/query/run", data={"sql": SQL, "csrf": csrf, "max_rows": "2"}, headers=HTMX
    )

    assert len(results(answer.text)) == 2
    assert "Cut off at 2 rows" in answer.text


async def test_a_bad_query_shows_the_apis_error_text_in_the_console(
    http: httpx.AsyncClient,
) -> None:
    bad = "SELECT nothing FROM demo_events"
    csrf = await editor_csrf(http)
    api = await http.post("/api/v1/query", json={"sql": bad}, headers={"X-CSRF-Token": csrf})
    assert api.status_code == 400
    refused = await http.post(
        "/api/v1/query", json={"sql": "DROP TABLE demo_events"}, headers={"X-CSRF-Token": csrf}
    )

    shown = await run(http, bad, htmx=True)
    shown_refused = await run(http, "DROP TABLE demo_events", htmx=True)

    assert shown.status_code == 200  # htmx swaps only 2xx answers
    assert console(shown.text) == api.json()["detail"]
    assert console(shown_refused.text) == refused.json()["detail"]
    assert 'id="results"' not in shown.text


async def test_the_editor_runs_only_over_the_persons_organization(
    settings: Settings, http: httpx.AsyncClient, demo: Datastream, pipeline: Pipeline
) -> None:
    await send_page_view(http, demo, "https://shop.example/")
    pipeline.step()
    add_user(settings, EVE, EVE_PASSWORD, org_id=OTHER_ORG)
    http.cookies.clear()
    await sign_in(http, EVE, EVE_PASSWORD)

    page = await http.get("/admin/query")
    answer = await run(http, SQL)

    assert "demo_events" not in page.text.split('id="tables-title"')[1]
    assert 'id="results"' not in answer.text
    assert "demo_events" in console(answer.text)  # named as missing, not read


async def test_each_run_goes_to_the_history_newest_first(http: httpx.AsyncClient) -> None:
    await run(http, "SELECT 1 AS one")
    await run(http, "SELEC 2")

    history = (await http.get("/api/v1/queries/history")).json()["history"]
    page = await run(http, "SELECT 3 AS three", htmx=True)

    assert [(h["sql"], h["ok"], h["rows"]) for h in history] == [
        ("SELEC 2", False, 0),
        ("SELECT 1 AS one", True, 1),
    ]
    assert "syntax error" in history[0]["error"]
    assert history[1]["error"] is None
    assert history[1]["elapsedMs"] >= 0 and history[1]["at"].endswith("Z")
    # the htmx answer brings the new history with it, newest first
    oob = page.text[page.text.index('id="history" hx-swap-oob') :]
    assert oob.index("SELECT 3 AS three") < oob.index("SELEC 2") < oob.index("SELECT 1 AS one")


async def test_a_blank_query_is_explained_and_left_out_of_the_history(
    http: httpx.AsyncClient,
) -> None:
    answer = await run(http, "  ", htmx=True)

    assert console(answer.text) != ""
    assert 'class="console failed"' in answer.text
    assert (await http.get("/api/v1/queries/history")).json()["history"] == []


async def test_a_run_of_the_history_loads_into_the_editor(http: httpx.AsyncClient) -> None:
    await run(http, "SELECT 41 + 1 AS answer")
    (entry,) = (await http.get("/api/v1/queries/history")).json()["history"]

    page = await http.get(f"/admin/query?history={entry['id']}")

    assert ">SELECT 41 + 1 AS answer</textarea>" in page.text


async def test_a_query_saved_in_the_page_can_be_loaded_and_deleted(
    http: httpx.AsyncClient,
) -> None:
    csrf = await editor_csrf(http)
    saved = await http.post(
        "/admin/query/saved",
        data={"csrf": csrf, "name": "Newest events", "sql": SQL},
        headers=HTMX,
    )
    assert saved.status_code == 200
    assert "Newest events" in saved.text
    (query,) = (await http.get("/api/v1/queries/saved")).json()["queries"]
    assert (query["name"], query["sql"]) == ("Newest events", SQL)

    loaded = await http.get(f"/admin/query?saved={query['id']}")
    assert f">{SQL}</textarea>" in loaded.text
    assert f'data-sql="{html.escape(SQL)}"' in loaded.text

    deleted = await http.post(
        f"/admin/query/saved/{query['id']}/delete", data={"csrf": csrf}, headers=HTMX
    )
    assert deleted.status_code == 200
    assert "No saved queries yet" in deleted.text
    assert (await http.get("/api/v1/queries/saved")).json()["queries"] == []


async def test_saving_without_javascript_goes_back_to_the_editor(http: httpx.AsyncClient) -> None:
    csrf = await editor_csrf(http)
    saved = await http.post(
        "/admin/query/saved", data={"csrf": csrf, "name": "counts", "sql": "SELECT 1"}
    )
    unnamed = await http.post("/admin/query/saved", data={"csrf": csrf, "sql": "SELECT 2"})

    assert saved.status_code == 303
    assert saved.headers["location"].startswith("/admin/query?saved=")
    assert unnamed.status_code == 400
    assert "name is required" in unnamed.text
    assert ">SELECT 2</textarea>" in unnamed.text  # the SQL typed is kept


async def test_the_forms_need_the_sessions_csrf_token(http: httpx.AsyncClient) -> None:
    ran = await http.post("/admin/query/run", data={"sql": "SELECT 1"})
    saved = await http.post("/admin/query/saved", data={"name": "x", "sql": "SELECT 1"})

    assert (ran.status_code, saved.status_code) == (403, 403)
    assert (await http.get("/api/v1/queries/history")).json()["history"] == []


# ---- the JSON twin: /api/v1/queries/...


async def test_the_saved_query_api_saves_lists_and_deletes(
    http: httpx.AsyncClient, services: Services
) -> None:
    auth = {"authorization": f"Bearer {services.catalog.add_token('reports')}"}
    http.cookies.clear()

    made = await http.post(
        "/api/v1/queries/saved", json={"name": "recent", "sql": SQL}, headers=auth
    )
    again = await http.post(
        "/api/v1/queries/saved", json={"name": "recent", "sql": "SELECT 1"}, headers=auth
    )
    listed = await http.get("/api/v1/queries/saved", headers=auth)
    unnamed = await http.post("/api/v1/queries/saved", json={"name": "", "sql": SQL}, headers=auth)
    gone = await http.delete(f"/api/v1/queries/saved/{made.json()['id']}", headers=auth)
    twice = await http.delete(f"/api/v1/queries/saved/{made.json()['id']}", headers=auth)

    assert made.status_code == 201
    assert again.json()["id"] == made.json()["id"]
    assert [(q["name"], q["sql"]) for q in listed.json()["queries"]] == [("recent", "SELECT 1")]
    assert (unnamed.status_code, unnamed.json()["field"]) == (400, "name")
    assert (gone.status_code, twice.status_code) == (204, 404)
    services.close()


async def test_a_person_of_another_organization_sees_none_of_your_queries(
    settings: Settings, http: httpx.AsyncClient, services: Services
) -> None:
    csrf = await editor_csrf(http)
    await http.post("/admin/query/saved", data={"csrf": csrf, "name": "mine", "sql": SQL})
    await run(http, SQL)
    (mine,) = (await http.get("/api/v1/queries/saved")).json()["queries"]
    add_user(settings, EVE, EVE_PASSWORD, org_id=OTHER_ORG)
    http.cookies.clear()
    await sign_in(http, EVE, EVE_PASSWORD)
    eve_csrf = await editor_csrf(http)
    other_token = services.catalog.add_token("ann@shop.example", org_id=OTHER_ORG)

    page = await http.get("/admin/query")
    listed = await http.get("/api/v1/queries/saved")
    history = await http.get("/api/v1/queries/history")
    deleted = await http.delete(
        f"/api/v1/queries/saved/{mine['id']}", headers={"X-CSRF-Token": eve_csrf}
    )
    http.cookies.clear()
    same_name = await http.get(
        "/api/v1/queries/saved", headers={"authorization": f"Bearer {other_token}"}
    )

    assert "mine" not in page.text.split('id="saved-title"')[1].split("</section>")[0]
    assert listed.json() == {"queries": []}
    assert history.json() == {"history": []}
    assert deleted.status_code == 404
    assert same_name.json() == {"queries": []}  # the same name in another organization
    services.close()


async def test_the_saved_query_api_needs_credentials(http: httpx.AsyncClient) -> None:
    http.cookies.clear()
    for method, path in (
        ("GET", "/api/v1/queries/saved"),
        ("POST", "/api/v1/queries/saved"),
        ("DELETE", "/api/v1/queries/saved/abc"),
        ("GET", "/api/v1/queries/history"),
    ):
        assert (await http.request(method, path)).status_code == 401, path
