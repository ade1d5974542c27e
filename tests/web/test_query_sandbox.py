"""`POST /api/v1/query` reads datasets and nothing else: no file, no temp file, no setting."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from koppla.core.layout import Layout
from koppla.core.settings import Settings
from koppla.web.services import Services
from tests.platform.query.file_probes import SECRET, SETTING_PROBES, file_probes, plant_files

pytestmark = pytest.mark.anyio


def _probes(temp_dir: Path, cwd_tmp: Path) -> list[str]:
    return [
        *file_probes(str(temp_dir)),
        *file_probes(str(cwd_tmp)),
        *file_probes(".tmp"),
        *SETTING_PROBES,
    ]


async def test_every_file_and_setting_is_refused_over_http(
    client: httpx.AsyncClient,
    services: Services,
    settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    temp_dir = Layout(settings.home).query_tmp
    plant_files(temp_dir)
    plant_files(tmp_path / ".tmp")
    auth = {"authorization": f"Bearer {services.catalog.add_token('t')}"}
    for sql in _probes(temp_dir, tmp_path / ".tmp"):
        response = await client.post("/api/v1/query", json={"sql": sql}, headers=auth)
        assert response.status_code == 400, sql
        detail = response.json()["detail"]
        assert SECRET not in response.text, sql
        assert "not allowed" in detail or "not a dataset name" in detail, sql
        if str(temp_dir) not in sql:
            assert str(temp_dir) not in response.text, sql
    ok = await client.post("/api/v1/query", json={"sql": "SELECT 1 AS one"}, headers=auth)
    assert ok.json()["rows"] == [[1]]


async def test_the_servers_temp_directory_is_private(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    assert Layout(settings.home).query_tmp.stat().st_mode & 0o777 == 0o700
