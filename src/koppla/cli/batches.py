"""`koppla batches`: the newest batches, with their status and record counts."""

from __future__ import annotations

from typing import Annotated

import typer

from koppla.cli.common import HomeOption, catalog, console, run, settings


def batches(
    home: HomeOption = None,
    dataset: Annotated[
        str | None, typer.Option(help="Dataset id or name.", show_default="every dataset")
    ] = None,
    limit: Annotated[int, typer.Option(help="How many, newest first.")] = 20,
) -> None:
    """List the newest batches with their status and record counts."""
    opened = catalog(settings(home))
    try:
        dataset_id = run(lambda: opened.dataset(dataset).id) if dataset else None
        for b in opened.batches(dataset_id=dataset_id, limit=limit):
            console.print(f"{b.id}  {b.status:7}  records={b.records} failed={b.failed_records}")
    finally:
        opened.close()
