"""The state of a Koppla home at a glance: datasets, the spool's backlog, datastream counters.

What an operator checks first: is anything waiting to be stored (spool backlog), did the last
batches land, how much was refused (quarantine) or dropped (consent).
"""

from __future__ import annotations

from typing import Any

from koppla.core import clock
from koppla.platform.datasets.quarantine import TABLE_NAME as QUARANTINE
from koppla.platform.pipeline.cursor import Cursors
from koppla.platform.spool.position import segment_name
from koppla.platform.spool.reader import list_streams
from koppla.platform.spool.writer import stream_segments
from koppla.web.services import Services


def spool_backlog(services: Services) -> list[dict[str, Any]]:
    """Per spool stream: bytes accepted but not yet stored, and whether an edge writes to it."""
    layout = services.layout
    cursors = Cursors(layout.pipeline_state / "cursors.json")
    streams = []
    for stream in list_streams(layout.spool):
        directory = layout.spool / stream
        at = cursors.get(stream)
        backlog = 0
        for number in stream_segments(directory):
            size = (directory / segment_name(number)).stat().st_size
            if number > at.segment:
                backlog += size
            elif number == at.segment:
                backlog += max(0, size - at.offset)
        streams.append({"stream": stream, "backlogBytes": backlog})
    return streams


def status(services: Services) -> dict[str, Any]:
    """A JSON-ready overview of datasets, batches, spool and counters."""
    counts = {t.name: t.row_count for t in services.query.tables_info()}
    datasets = []
    for dataset in services.catalog.datasets():
        last = services.catalog.batches(dataset_id=dataset.id, limit=1)
        datasets.append(
            {
                "name": dataset.name,
                "id": dataset.id,
                "rows": counts.get(dataset.name),
                "lastBatch": None
                if not last
                else {
                    "id": last[0].id,
                    "status": last[0].status,
                    "records": last[0].records,
                    "failedRecords": last[0].failed_records,
                    "at": clock.iso(clock.from_ms(last[0].completed_ms or last[0].created_ms)),
                },
            }
        )
    return {
        "datasets": datasets,
        "quarantinedRecords": counts.get(QUARANTINE),
        "spool": spool_backlog(services),
        "datastreams": [
            {"id": s.id, "orgId": s.org_id, "counters": services.catalog.counters(s.id)}
            for s in services.catalog.datastreams()
        ],
    }
