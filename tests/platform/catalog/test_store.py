"""The catalog: rules on names and ids, and safe use from several threads at once."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from koppla.core.errors import Conflict, InvalidInput, NotFound
from koppla.platform.catalog import store
from koppla.platform.catalog.models import (
    check_dataset_name,
    check_datastream_id,
    check_org_id,
    check_origin,
)
from koppla.platform.catalog.store import Catalog

ORG = "ABCDEFGHIJKLMNOPQRSTUVWX@AdobeOrg"


def test_rules_name_the_field(tmp_path: Path) -> None:
    catalog = Catalog(tmp_path / "c.sqlite")
    catalog.create_dataset("events", schema_id="s", org_id=ORG)
    with pytest.raises(Conflict):
        catalog.create_dataset("events", schema_id="s")
    with pytest.raises(InvalidInput, match="reserved"):
        catalog.create_dataset("quarantine", schema_id="s")
    for shadowed in ("profiles", "identities"):  # the profile store's SQL tables
        with pytest.raises(InvalidInput, match="reserved"):
            catalog.create_dataset(shadowed, schema_id="s")
    with pytest.raises(InvalidInput) as bad_org:
        catalog.create_datastream(org_id="nope", event_dataset="events")
    assert bad_org.value.field == "orgId"
    with pytest.raises(NotFound):
        catalog.create_datastream(org_id=ORG, event_dataset="missing")
    catalog.create_dataset("profile_events", schema_id="s", org_id=ORG)
    with pytest.raises(Conflict, match="must differ"):
        catalog.create_datastream(org_id=ORG, event_dataset="events", profile_dataset="events")
    with pytest.raises(InvalidInput, match="allowed origin"):
        catalog.create_datastream(
            org_id=ORG, event_dataset="events", allowed_origins=("shop.example",)
        )


def test_many_threads_write_through_one_catalog(tmp_path: Path) -> None:
    catalog = Catalog(tmp_path / "c.sqlite")
    stream = catalog.create_datastream(
        org_id=ORG, event_dataset=catalog.create_dataset("events", schema_id="s", org_id=ORG).name
    )
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(50):
                catalog.add_to_counter(stream.id, "hits", 1)
                catalog.set_consent(ORG, f"ecid-{n}-{i}", "out" if i % 2 else "in")
                catalog.datastreams()
        except BaseException as error:  # collected and asserted below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert catalog.counters(stream.id) == {"hits": 400}
    assert len(catalog.consents_out()) == 200


def test_consent_keeps_opt_outs_only_and_logs_every_choice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    catalog = Catalog(tmp_path / "c.sqlite")
    catalog.set_consent(ORG, "a", "out")
    catalog.set_consent(ORG, "b", "in")
    catalog.set_consent(ORG, "a", "in")
    assert catalog.consents_out() == set()
    assert catalog.consent_seq() == 3
    assert catalog.consent_changes(1) == [(2, ORG, "b", "in"), (3, ORG, "a", "in")]
    monkeypatch.setattr(store, "CONSENT_CHANGES_KEPT", 2)
    catalog.set_consent(ORG, "c", "out")
    assert catalog.consent_changes(1) is None  # entry 2 is gone: reload consents_out()
    assert catalog.consent_changes(2) == [(3, ORG, "a", "in"), (4, ORG, "c", "out")]


def test_trimming_forgets_the_oldest_opt_outs_and_logs_them(tmp_path: Path) -> None:
    catalog = Catalog(tmp_path / "c.sqlite")
    for name in ("a", "b", "c", "d"):
        catalog.set_consent(ORG, name, "out")
    assert catalog.trim_consents(5) == 0
    assert catalog.trim_consents(2) == 2
    assert catalog.consents_out() == {(ORG, "c"), (ORG, "d")}
    forgotten = catalog.consent_changes(4)
    assert forgotten is not None
    assert sorted((ecid, general) for _, _, ecid, general in forgotten) == [
        ("a", "in"),
        ("b", "in"),
    ]


@pytest.mark.parametrize(
    ("check", "value"),
    [
        (check_dataset_name, "abc\n"),
        (check_datastream_id, "zz\n"),
        (check_org_id, "ABCDEFGHIJKLMNOPQRSTUVWX@AdobeOrg\n"),
        (check_origin, "https://shop.example\n"),
    ],
)
def test_names_and_ids_with_a_trailing_newline_are_refused(
    check: Callable[[str], str], value: str
) -> None:
    with pytest.raises(InvalidInput):
        check(value)
    assert check(value.rstrip("\n")) == value.rstrip("\n")


def test_the_next_ingestion_batch_is_the_one_completed_first_however_many_wait(
    tmp_path: Path,
) -> None:
    from koppla.platform.catalog.models import Batch

    catalog = Catalog(tmp_path / "c.sqlite")
    waiting = [
        Batch(
            id=f"b{n:05d}",
            dataset_id="d",
            status="processing",
            records=0,
            failed_records=0,
            created_ms=n,  # more than 1,000 newer batches wait behind the first
            completed_ms=None,
            source="batch-ingestion",
            input_format="json",
            started_ms=20_000 + n,
        )
        for n in range(1_200)
    ]
    for batch in reversed(waiting):
        catalog.record_batch(batch)
    catalog.record_batch(
        Batch("streaming", "d", "processing", 0, 0, 1, None, "spool", started_ms=0)
    )
    assert catalog.next_ingestion_batch() == waiting[0]
    assert catalog.next_ingestion_batch(skip={"b00000", "b00001"}) == waiting[2]
    catalog.close()
    reopened = Catalog(tmp_path / "c.sqlite")
    assert reopened.next_ingestion_batch() == waiting[0]
    reopened.close()
