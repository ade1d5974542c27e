"""`koppla export`: a dataset's events as they were sent, as JSON lines or Parquet."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Annotated, BinaryIO, TypeAlias

import typer

from koppla.cli.common import HomeOption, catalog, err, fail, settings
from koppla.core.errors import KopplaError, NotFound
from koppla.core.layout import Layout
from koppla.platform.catalog.models import Dataset
from koppla.platform.datasets import export as exporting
from koppla.platform.datasets.location import table_location
from koppla.platform.schemas.registry import home_registry
from koppla.xdm.types import Schema

Writer: TypeAlias = Callable[[BinaryIO], int]
"""What `_write` runs: writes to a binary file, returns how many events it wrote."""

FORMAT_HELP = (
    "jsonl: one event a line, as sent (no nulls for absent fields); "
    "parquet: the rows as stored, in the schema's XDM columns (needs --output)."
)


def export(
    dataset: Annotated[str, typer.Argument(help="Dataset id or name.")],
    home: HomeOption = None,
    since: Annotated[
        str | None,
        typer.Option(
            help="Events at or after this ISO 8601 time (no offset: UTC).",
            metavar="ISO",
            show_default="the first event",
        ),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option(
            help="Events before this ISO 8601 time (no offset: UTC).",
            metavar="ISO",
            show_default="the last event",
        ),
    ] = None,
    batch: Annotated[
        str | None,
        typer.Option(
            "--batch",
            help="Only the events of this batch.",
            metavar="ID",
            show_default="every batch",
        ),
    ] = None,
    kind: Annotated[
        str, typer.Option("--format", help=FORMAT_HELP, metavar="jsonl|parquet")
    ] = "jsonl",
    output: Annotated[
        Path | None,
        typer.Option(help="File to write.", show_default="standard output"),
    ] = None,
) -> None:
    """Export a dataset's events exactly as they were sent (JSON lines), or as Parquet."""
    chosen = _format(kind, output)
    start, end = _moment("--since", since), _moment("--until", until)
    found, schema, (path, options) = _dataset(home, dataset, batch)
    try:
        if chosen == "jsonl":
            rows = exporting.export_rows(
                path, schema, storage_options=options, since=start, until=end, batch_id=batch
            )
            count = _write(output, lambda out: exporting.write_jsonl(rows, out))
        else:
            batches = exporting.export_batches(
                path, schema, storage_options=options, since=start, until=end, batch_id=batch
            )
            target = exporting.parquet_schema(schema)
            count = _write(output, lambda out: exporting.write_parquet(batches, target, out))
    except KopplaError as error:
        fail(str(error), 2)
    if output is not None:
        err.print(f"exported {count} events of {found.name} to {output}", highlight=False)


def _format(value: str, output: Path | None) -> exporting.Format:
    """The chosen format, checked; exits 2 naming `--format` or `--output`."""
    if value == "jsonl":
        return "jsonl"
    if value == "parquet":
        if output is None:
            fail("--output: parquet is written to a file; name one with --output PATH", 2)
        return "parquet"
    fail(f"--format: expected jsonl or parquet, got {value!r}", 2)


def _moment(option: str, value: str | None) -> datetime | None:
    """`value` read as an ISO 8601 date or date-time (UTC when it has no offset)."""
    if value is None:
        return None
    try:
        return exporting.utc(datetime.fromisoformat(value))
    except ValueError:
        fail(
            f"{option}: expected an ISO 8601 date-time such as 2026-12-01T00:00:00Z, got {value!r}",
            2,
        )


def _dataset(
    home: Path | None, key: str, batch: str | None
) -> tuple[Dataset, Schema, tuple[str, dict[str, str] | None]]:
    """The dataset, its schema, and its table with the storage options to read it; exits 2
    for an unknown dataset or batch."""
    loaded = settings(home)
    opened = catalog(loaded)
    try:
        try:
            found = opened.dataset(key)
        except NotFound:
            fail(f"DATASET: no dataset with id or name {key!r}", 2)
        if batch is not None:
            try:
                owner = opened.batch(batch).dataset_id
            except NotFound:
                owner = None
            if owner != found.id:
                fail(f"--batch: no batch {batch!r} in dataset {found.name}", 2)
    finally:
        opened.close()
    registry = home_registry(Layout(loaded.home), loaded.catalog_url)
    try:
        schema = registry.get(found.schema_id)
    except NotFound:
        fail(f"DATASET: {found.name}'s schema {found.schema_id} is not in the registry", 1)
    finally:
        registry.close()
    tables = table_location(loaded)
    return found, schema, (tables.table(found.id), tables.storage_options())


def _write(output: Path | None, write: Writer) -> int:
    """Run `write` on standard output, or on `output` (complete or not there at all)."""
    if output is None:
        try:
            count = write(sys.stdout.buffer)
            sys.stdout.buffer.flush()
        except BrokenPipeError:  # the reader stopped early (`| head`): not an error
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise typer.Exit(0) from None
        return count
    partial = output.with_name(output.name + ".part")
    try:
        with partial.open("wb") as out:
            count = write(out)
        os.replace(partial, output)
    finally:
        partial.unlink(missing_ok=True)
    return count
