"""psql, the real client, against Koppla's PostgreSQL server: connect with a token, `\\dt`,
`\\d`, and the documented check query."""

from __future__ import annotations

import os
import shutil
import subprocess

from pg_server import EVENTS, Pg
from tests.require import unavailable


def psql(pg: Pg, command: str, *, password: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run `psql -c command` against the server; unaligned output, no psqlrc."""
    binary = shutil.which("psql")
    if binary is None:
        unavailable("psql is not installed")
    env = {**os.environ, "PGPASSWORD": password if password is not None else pg.token}
    env.pop("PGSERVICE", None)
    dsn = (
        f"host=127.0.0.1 port={pg.port} dbname=prod:all user={pg.org_id} sslmode=require "
        "gssencmode=disable connect_timeout=10"
    )
    return subprocess.run(
        [binary, "-X", "-A", "-F", "|", "-v", "ON_ERROR_STOP=1", dsn, "-c", command],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def test_dt_lists_the_dataset(pg: Pg) -> None:
    done = psql(pg, "\\dt")
    assert done.returncode == 0, done.stderr
    assert "public|demo_events|table|" in done.stdout


def test_d_describes_the_dataset_columns(pg: Pg) -> None:
    done = psql(pg, "\\d demo_events")
    assert done.returncode == 0, done.stderr
    assert 'Table "public.demo_events"' in done.stdout
    assert "timestamp|timestamp with time zone|" in done.stdout
    assert "eventType|text|" in done.stdout
    assert "_koppla|json|" in done.stdout


def test_the_documented_check_query_returns_the_rows_newest_first(pg: Pg) -> None:
    done = psql(pg, "SELECT * from demo_events ORDER BY timestamp DESC")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    header = lines[0].split("|")
    assert header[:3] == ["_id", "timestamp", "eventType"]
    assert lines[-1] == f"({EVENTS} rows)"
    first = lines[1].split("|")
    assert first[:3] == ["e-29", "2026-12-01 10:00:29.123+00", "web.webpagedetails.pageViews"]
    assert lines[EVENTS].split("|")[0] == "e-0"


def test_a_wrong_token_is_refused_at_connect(pg: Pg) -> None:
    done = psql(pg, "SELECT 1", password="kpl_not-a-token")
    assert done.returncode != 0
    assert "password authentication failed" in done.stderr


def test_psql_sees_server_version_and_tls(pg: Pg) -> None:
    done = psql(pg, "SHOW server_version")
    assert done.returncode == 0, done.stderr
    assert "15.0 (Koppla)" in done.stdout
