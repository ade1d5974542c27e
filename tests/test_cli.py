"""The command line: demo set-up, datasets, datastreams, tokens and SQL with its guard."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from koppla.cli import build
from koppla.core import codec
from koppla.platform.catalog.demo import DEMO_DATASTREAM_ID

Invoke = Callable[..., tuple[int, str]]


@pytest.fixture
def run(tmp_path: Path) -> Invoke:
    runner = CliRunner()
    app = build()

    def invoke(*args: str) -> tuple[int, str]:
        result = runner.invoke(app, [*args, "--home", str(tmp_path / "home")])
        return result.exit_code, result.output

    return invoke


def test_demo_then_query_json(run: Invoke) -> None:
    code, out = run("demo")
    assert code == 0 and DEMO_DATASTREAM_ID in out
    code, out = run("query", "SELECT count(*) AS n FROM demo_events", "--json")
    assert code == 0
    assert codec.loads(out)["rows"] == [[0]]


@pytest.mark.parametrize(
    ("sql", "needle"),
    [
        ("DELETE FROM demo_events", "DELETE"),
        ("COPY demo_events TO '/tmp/out.csv'", "COPY"),
        ("ATTACH '/tmp/other.db' AS other", "ATTACH"),
        ("SELECT * FROM read_csv('/etc/passwd')", "file system access is disabled"),
    ],
)
def test_sql_that_writes_or_reads_files_is_refused(run: Invoke, sql: str, needle: str) -> None:
    run("demo")
    code, out = run("query", sql)
    assert code == 2
    assert needle in out


def test_datasets_and_datastreams_with_their_rules(run: Invoke) -> None:
    code, out = run("dataset", "create", "web_events")
    assert code == 0 and "web_events" in out
    code, out = run("dataset", "create", "Bad-Name")
    assert code == 2 and "lowercase" in out
    code, out = run("datastream", "create", "--org", "short@AdobeOrg", "--dataset", "web_events")
    assert code == 2 and "24 letters or digits" in out
    org = "ABCDEFGHIJKLMNOPQRSTUVWX@AdobeOrg"
    code, out = run(
        "datastream",
        "create",
        "--org",
        org,
        "--dataset",
        "web_events",
        "--origin",
        "https://shop.example",
        "--id",
        "ds-1",
    )
    assert code == 0 and "ds-1" in out
    code, out = run("datastream", "list")
    assert "ds-1" in out and "https://shop.example" in out


def test_token_create_prints_a_token_once(run: Invoke) -> None:
    code, out = run("token", "create", "--name", "ci")
    assert code == 0 and out.strip().startswith("kpl_")
