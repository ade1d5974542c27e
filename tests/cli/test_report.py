"""`koppla report`: the commerce reports in the terminal."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from deltalake import write_deltalake
from typer.testing import CliRunner, Result

from koppla.cli import report
from koppla.core import codec
from koppla.core.layout import Layout
from koppla.core.settings import Settings
from koppla.platform.catalog.demo import ensure_demo
from koppla.platform.catalog.store import Catalog
from koppla.platform.datasets.tables import provision
from koppla.platform.query.commerce_sample import Expected, generate_history
from koppla.xdm.registry import builtin_registry


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def expected(home: Path) -> Expected:
    """The demo datasets, `demo_events` holding a generated week."""
    settings = Settings.load(home=home)
    home.mkdir(parents=True)
    layout = Layout(home)
    catalog = Catalog(layout.catalog)
    try:
        stream = ensure_demo(catalog)
        provision(layout, builtin_registry(), catalog.dataset(stream.event_dataset_id))
        path = str(layout.dataset(stream.event_dataset_id))
    finally:
        catalog.close()
    storefront, backoffice, known = generate_history(200, 7, seed=7)
    write_deltalake(path, storefront, mode="append")
    write_deltalake(path, backoffice, mode="append")
    assert settings.home == home
    return known


def koppla(home: Path, *args: str) -> Result:
    """`koppla report <args> --home <home>` (the command alone, as the CLI registers it)."""
    app = typer.Typer()
    app.command("report")(report.report)
    app.command("other")(lambda: None)  # a second command keeps `report` a subcommand
    return CliRunner().invoke(app, ["report", *args, "--home", str(home)])


def test_without_a_name_the_reports_are_listed(home: Path) -> None:
    result = koppla(home)
    assert result.exit_code == 0
    for name in ("funnel", "abandoned_carts", "revenue_by_day", "tracking_coverage"):
        assert name in result.stdout


def test_a_report_prints_json(home: Path, expected: Expected) -> None:
    until = expected.end.isoformat()
    result = koppla(home, "tracking_coverage", "-p", f"until={until}", "-p", "days=7", "--json")
    assert result.exit_code == 0, result.stderr
    rows = codec.loads(result.stdout)["rows"]
    gap = next(r for r in rows if r[0] == expected.gap_day.isoformat())
    assert gap[4] == len(expected.coverage[expected.gap_day].orders_not_tracked)


def test_sql_prints_the_query(home: Path, expected: Expected) -> None:
    result = koppla(home, "funnel", "--sql", "--events", "demo_events")
    assert result.exit_code == 0
    assert result.stdout.startswith("WITH _shoppers AS")


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("abandoned_carts", "-p", "hours=1; DROP TABLE x"), "hours"),
        (("abandoned_carts", "-p", "hours"), "NAME=VALUE"),
        (("nope",), "no report"),
    ],
)
def test_bad_input_exits_2_naming_it(home: Path, args: tuple[str, ...], needle: str) -> None:
    result = koppla(home, *args)
    assert result.exit_code == 2
    assert needle in result.stderr
