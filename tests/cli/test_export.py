"""`koppla export`: the events of a dataset exactly as they were sent to the edge."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pyarrow.parquet as pq
import pytest
import typer
from typer.testing import CliRunner, Result

from koppla.cli import build
from koppla.cli import export as export_command
from koppla.core import codec
from koppla.platform.catalog.models import Datastream
from koppla.platform.pipeline.runner import Pipeline
from koppla.web.services import Services
from tests.platform.datasets.sent_events import SENT, expected, land

pytestmark = pytest.mark.anyio

Export = Callable[..., Result]


def cli() -> typer.Typer:
    """The `koppla` app, with `export` (added here until the command list names it)."""
    app = build()
    if not any(c.name == "export" for c in app.registered_commands):
        app.command("export")(export_command.export)
    return app


@pytest.fixture
def export(settings: Any) -> Export:
    """Runs `koppla export <args> --home <the test's home>`."""
    runner = CliRunner()

    def invoke(*args: str) -> Result:
        return runner.invoke(cli(), ["export", *args, "--home", str(settings.home)])

    return invoke


@pytest.fixture
async def landed(client: httpx.AsyncClient, demo: Datastream, pipeline: Pipeline) -> None:
    """`SENT` stored in `demo_events` through the edge and the pipeline."""
    await land(client, demo, pipeline)


def records(stdout: str) -> list[dict[str, Any]]:
    lines = stdout.splitlines()
    assert all(lines), "one object a line, no blank lines"
    return sorted((codec.loads(line) for line in lines), key=lambda r: r["_id"])


def by_id(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(events, key=lambda r: r["_id"])


async def test_export_gives_back_exactly_the_events_sent(landed: None, export: Export) -> None:
    result = export("demo_events", "--format", "jsonl")
    assert result.exit_code == 0, result.output
    assert records(result.stdout) == by_id(expected())
    assert result.stderr == ""


async def test_field_for_field_with_the_types_and_text_sent(landed: None, export: Export) -> None:
    out = export("demo_events").stdout
    line = next(x for x in out.splitlines() if "export-product-view" in x)
    assert '"quantity":2,' in line and '"priceTotal":19.0' in line
    assert '"timestamp":"2026-12-01T10:00:00+02:00"' in line
    assert "Smörgåsbord 🍞 «fresh»" in line
    assert "null" not in line
    page_view = next(r for r in records(out) if r["_id"] == "export-page-view")
    assert page_view == SENT[0] | {
        "web": {"webPageDetails": {"name": "home", "pageViews": {"value": 1.0}}}
    }


async def test_since_and_until_pick_events_by_their_instant(landed: None, export: Export) -> None:
    # export-unknown-fields is at 2026-12-03T05:00:00.5Z (sent as 23:30 at -05:30 the day before)
    result = export("demo_events", "--since", "2026-12-03T05:00:00Z", "--until", "2026-12-03")
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    result = export("demo_events", "--since", "2026-12-02", "--until", "2026-12-03T12:00:00.123Z")
    assert [r["_id"] for r in records(result.stdout)] == ["export-unknown-fields"]


async def test_one_batch(landed: None, export: Export, services: Services) -> None:
    [batch] = services.catalog.batches(dataset_id=services.catalog.dataset("demo_events").id)
    result = export("demo_events", "--batch", batch.id)
    assert result.exit_code == 0, result.output
    assert records(result.stdout) == by_id(expected())


async def test_parquet_holds_the_rows_as_stored(
    landed: None, export: Export, tmp_path: Path
) -> None:
    target = tmp_path / "out" / "events.parquet"
    target.parent.mkdir()
    result = export("demo_events", "--format", "parquet", "--output", str(target))
    assert result.exit_code == 0, result.output
    assert "exported 4 events of demo_events" in result.stderr
    assert list(target.parent.iterdir()) == [target]  # no partial file left behind
    table = pq.read_table(target)
    assert table.num_rows == len(SENT)
    assert "_batch_id" not in table.schema.names and "_unknown" not in table.schema.names
    rows = {r["_id"]: r for r in table.to_pylist(maps_as_pydicts="strict")}
    order = rows["export-order"]["commerce"]["order"]
    assert (order["purchaseID"], order["priceTotal"], order["payments"]) == ("100000042", 42.5, [])
    assert order["createdDate"] == datetime(2026, 12, 3, 12, tzinfo=UTC)
    item = rows["export-product-view"]["productListItems"][0]
    assert (item["name"], item["quantity"], item["priceTotal"]) == (
        "Smörgåsbord 🍞 «fresh»",
        2,
        19.0,
    )
    assert rows["export-page-view"]["timestamp"] == datetime(2026, 12, 1, 8, tzinfo=UTC)


async def test_json_lines_to_a_file(landed: None, export: Export, tmp_path: Path) -> None:
    target = tmp_path / "events.jsonl"
    result = export("demo_events", "--output", str(target))
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert records(target.read_text()) == by_id(expected())


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("nope",), "DATASET"),
        (("demo_events", "--since", "yesterday"), "--since"),
        (("demo_events", "--until", "2026-13-01"), "--until"),
        (("demo_events", "--format", "csv"), "--format"),
        (("demo_events", "--format", "parquet"), "--output"),
        (("demo_events", "--batch", "0123456789abcdef"), "--batch"),
    ],
)
async def test_a_wrong_argument_exits_2_naming_it(
    demo: Datastream, export: Export, args: tuple[str, ...], needle: str
) -> None:
    result = export(*args)
    assert result.exit_code == 2
    [line] = result.stderr.splitlines()
    assert line.startswith("error: ") and needle in line
    assert result.stdout == ""


async def test_a_time_bound_on_profile_records_exits_2(demo: Datastream, export: Export) -> None:
    result = export("demo_profiles", "--since", "2026-01-01")
    assert result.exit_code == 2
    assert "--since" in result.stderr and "timestamp" in result.stderr
