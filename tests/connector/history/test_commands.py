"""`koppla connector history:sync` refuses bad requests with the field and the reason."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from koppla.connector.commands import connector_app

SETTINGS = (
    '[[websites]]\nwebsite_code = "base"\norg_id = "KOPPLADEMO00000000000000@AdobeOrg"\n'
    'datastream_id = "ds"\ndataset_id = "set"\n'
)


@pytest.mark.parametrize(
    ("token", "args", "message"),
    [
        (None, ["--from", "2026-01-01", "--to", "2026-02-01"], "token: missing credentials"),
        ("t", ["--from", "2026-02-02", "--to", "2026-02-01"], "from: 2026-02-02 is after to"),
        ("t", ["--from", "2019-01-01", "--to", "2026-02-01"], "exceeds five years"),
        ("t", ["--from", "2026-01-01", "--to", "2999-01-01"], "to: 2999-01-01 is in the future"),
        ("t", ["--from", "yesterday", "--to", "2026-01-01"], "from: 'yesterday' is not a date"),
    ],
)
def test_a_refused_request_says_why_and_exits_2(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    token: str | None,
    args: list[str],
    message: str,
) -> None:
    monkeypatch.delenv("KOPPLA_CONNECTOR_TOKEN", raising=False)
    if token:
        monkeypatch.setenv("KOPPLA_CONNECTOR_TOKEN", token)
    (tmp_path / "connector.toml").write_text(SETTINGS)
    result = CliRunner().invoke(connector_app, ["history:sync", *args, "--home", str(tmp_path)])
    assert result.exit_code == 2, result.output
    assert message in result.output.replace("\n", " ")


def test_status_without_any_sync_says_so(tmp_path: Path) -> None:
    result = CliRunner().invoke(connector_app, ["history:status", "--home", str(tmp_path)])
    assert result.exit_code == 2
    assert "no history sync has been requested" in result.output
