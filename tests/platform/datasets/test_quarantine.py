"""The quarantine takes any record, even one whose text is not valid Unicode."""

from __future__ import annotations

from datetime import UTC, datetime

from koppla.platform.datasets.quarantine import QuarantinedRecord, to_arrow


def held(event_id: str, record: str) -> QuarantinedRecord:
    return QuarantinedRecord(
        dataset_id="d",
        batch_id="b",
        datastream_id="s",
        request_id="r",
        event_id=event_id,
        event_type=None,
        received_at=datetime(2026, 12, 1, tzinfo=UTC),
        errors=(("", "internal", "bad \udc80 text"),),
        record=record,
    )


def test_text_that_is_not_valid_unicode_is_kept_with_replacement_characters() -> None:
    table = to_arrow([held("fine", "{}"), held("lone-\ud800", '{"a":"\udcff"}')])
    rows = table.to_pylist()
    assert [r["event_id"] for r in rows] == ["fine", "lone-?"]
    assert rows[1]["record"] == '{"a":"?"}'
    assert rows[1]["errors"] == [{"path": "", "code": "internal", "message": "bad ? text"}]


def test_ordinary_records_are_stored_as_they_are() -> None:
    (row,) = to_arrow([held("é", '{"name":"Zoë"}')]).to_pylist()
    assert (row["event_id"], row["record"]) == ("é", '{"name":"Zoë"}')
