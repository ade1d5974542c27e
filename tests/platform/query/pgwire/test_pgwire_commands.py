"""Statements a session answers itself, and how query text is split into statements."""

from __future__ import annotations

import pytest

from koppla.platform.query.pgwire.commands import (
    CommandRefused,
    SessionState,
    run_command,
    split_statements,
)


def test_split_statements_understands_quotes_and_comments() -> None:
    assert split_statements("SELECT ';' AS x; -- a; comment\n") == ["SELECT ';' AS x"]
    assert len(split_statements("SELECT 1; DROP TABLE t")) == 2
    assert split_statements(" ; ;-- nothing") == []
    assert split_statements('SELECT "a;b" /* ; */ FROM t;') == ['SELECT "a;b" /* ; */ FROM t']


def test_harmless_settings_are_accepted_and_reported() -> None:
    state = SessionState.initial("org", "")
    result = run_command("SET application_name = 'bi tool'", state)
    assert result.changed == ("application_name",)
    assert state.parameters["application_name"] == "bi tool"
    run_command("SET statement_timeout = '5s'", state)
    assert state.statement_timeout_ms == 5000
    assert run_command("SET TIME ZONE 'UTC'", state).tag == "SET"


@pytest.mark.parametrize(
    "sql",
    ["SET memory_limit = '10GB'", "SET enable_external_access = true", "SET TimeZone = 'CET'"],
)
def test_other_settings_are_refused(sql: str) -> None:
    with pytest.raises(CommandRefused) as refused:
        run_command(sql, SessionState.initial("org", ""))
    assert refused.value.code == "42501"


def test_transactions_move_the_status() -> None:
    state = SessionState.initial("org", "")
    run_command("BEGIN", state)
    assert state.transaction == "T"
    state.transaction = "E"
    assert run_command("COMMIT", state).tag == "ROLLBACK"
    assert state.transaction == "I"


def test_show_answers_from_the_session_parameters() -> None:
    state = SessionState.initial("org", "")
    assert run_command("SHOW transaction isolation level", state).rows == (("read committed",),)
    assert run_command("show standard_conforming_strings", state).rows == (("on",),)
    with pytest.raises(CommandRefused):
        run_command("SHOW temp_directory", state)
