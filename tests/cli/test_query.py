"""`koppla query`: SQL over the datasets, and its guard."""

from __future__ import annotations

import pytest

from tests.cli.conftest import Koppla


@pytest.mark.parametrize(
    ("sql", "needle"),
    [
        ("DELETE FROM demo_events", "DELETE"),
        ("COPY demo_events TO '/tmp/out.csv'", "COPY"),
        ("ATTACH '/tmp/other.db' AS other", "ATTACH"),
        ("SELECT * FROM read_csv('/etc/passwd')", "file system access is disabled"),
    ],
)
def test_sql_that_writes_or_reads_files_is_refused(koppla: Koppla, sql: str, needle: str) -> None:
    koppla("demo")
    result = koppla("query", sql)
    assert result.exit_code == 2
    assert needle in result.stderr
    assert result.stdout == ""


def test_a_table_for_people(koppla: Koppla) -> None:
    koppla("demo")
    result = koppla("query", "SELECT 41 + 1 AS answer")
    assert result.exit_code == 0
    assert "answer" in result.stdout and "42" in result.stdout
