"""Text with a lone UTF-16 surrogate (JSON's `"\\ud800"`) is a 400 naming the field, not a 500."""

from __future__ import annotations

import httpx
import pytest

from koppla.web.services import Services

pytestmark = pytest.mark.anyio

LONE = "\\ud800"
"""A JSON escape that decodes to a lone surrogate: valid JSON, no UTF-8 form."""


async def _post(
    client: httpx.AsyncClient, path: str, body: str, auth: dict[str, str]
) -> httpx.Response:
    headers = auth | {"content-type": "application/json"}
    return await client.post(path, content=body.encode(), headers=headers)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (f'{{"name": "recent {LONE}", "sql": "SELECT 1"}}', "name"),
        (f'{{"name": "recent", "sql": "SELECT \'{LONE}\'"}}', "sql"),
    ],
)
async def test_saving_a_query_with_a_lone_surrogate_is_a_400_naming_the_field(
    client: httpx.AsyncClient, services: Services, body: str, field: str
) -> None:
    auth = {"authorization": f"Bearer {services.catalog.add_token('t')}"}

    answer = await _post(client, "/api/v1/queries/saved", body, auth)

    assert answer.status_code == 400, answer.text
    assert answer.json()["field"] == field
    assert answer.json()["detail"].startswith(f"{field} is not valid text: a lone UTF-16")
    listed = await client.get("/api/v1/queries/saved", headers=auth)
    assert listed.json()["queries"] == []


async def test_running_sql_with_a_lone_surrogate_is_a_400_naming_sql(
    client: httpx.AsyncClient, services: Services
) -> None:
    auth = {"authorization": f"Bearer {services.catalog.add_token('t')}"}

    answer = await _post(client, "/api/v1/query", f'{{"sql": "SELECT \'{LONE}\'"}}', auth)

    assert answer.status_code == 400, answer.text
    assert answer.json()["detail"].startswith("sql is not valid text: a lone UTF-16 surrogate")
