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


def test_rules_name_the_field(open_catalog: Callable[[], Catalog]) -> None:
    catalog = open_catalog()
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


def test_many_threads_write_through_one_catalog(open_catalog: Callable[[], Catalog]) -> None:
    catalog = open_catalog()
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
    open_catalog: Callable[[], Catalog], monkeypatch: pytest.MonkeyPatch
) -> None:
    catalog = open_catalog()
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


def test_trimming_forgets_the_oldest_opt_outs_and_logs_them(
    open_catalog: Callable[[], Catalog],
) -> None:
    catalog = open_catalog()
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
    open_catalog: Callable[[], Catalog],
) -> None:
    from koppla.platform.catalog.models import Batch

    catalog = open_catalog()
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
    reopened = open_catalog()
    assert reopened.next_ingestion_batch() == waiting[0]
    reopened.close()


def test_two_processes_see_each_others_writes(open_catalog: Callable[[], Catalog]) -> None:
    """Two catalogs on one database (two processes of a deployment, on SQLite one machine's):
    what one stores the other reads at once, and compare-and-set keeps them from overwriting."""
    from koppla.platform.catalog.models import Batch

    edge, api = open_catalog(), open_catalog()
    assert edge.default_org() == api.default_org()
    dataset = api.create_dataset("events", schema_id="s", org_id=ORG)
    stream = api.create_datastream(org_id=ORG, event_dataset="events")
    assert edge.datastream(stream.id, ORG) == stream and edge.dataset("events") == dataset
    with pytest.raises(Conflict):
        edge.create_dataset("events", schema_id="s")
    token = api.add_token("ops", org_id=ORG)
    holder = edge.principal(token)
    assert holder is not None and holder.org_id == ORG
    seq = edge.consent_seq()
    api.set_consent(ORG, "visitor", "out")
    assert edge.consent_changes(seq) == [(seq + 1, ORG, "visitor", "out")]
    assert edge.consents_out() == {(ORG, "visitor")}
    edge.add_to_counter(stream.id, "refused", 2)
    api.add_to_counter(stream.id, "refused", 3)
    assert api.counters(stream.id) == {"refused": 5}
    waiting = Batch("b1", dataset.id, "processing", 0, 0, 1, None, "batch-ingestion")
    api.record_batch(waiting)
    done = Batch("b1", dataset.id, "success", 5, 0, 1, 2, "batch-ingestion")
    assert edge.change_batch(done, expect=("processing",))
    assert not api.change_batch(waiting, expect=("processing",))  # already moved on
    assert api.batch("b1", ORG) == done
    assert api.revoke_token(token) and edge.principal(token) is None


def test_processes_opening_a_new_catalog_at_once_agree_on_it(
    open_catalog: Callable[[], Catalog],
) -> None:
    start = threading.Barrier(4)
    opened: list[Catalog] = []
    errors: list[BaseException] = []

    def open_it() -> None:
        try:
            start.wait()
            opened.append(open_catalog())
        except BaseException as error:  # collected and asserted below
            errors.append(error)

    threads = [threading.Thread(target=open_it) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert {c.default_org() for c in opened} == {opened[0].default_org()}
    opened[0].create_dataset("events", schema_id="s", org_id=ORG)
    assert [d.name for d in opened[-1].datasets(ORG)] == ["events"]


def test_a_catalog_on_postgresql_survives_its_connection_ending() -> None:
    from tests.postgres import fresh_schema, terminate

    urls = fresh_schema()
    url = next(urls)
    catalog = Catalog(Path("unused"), url=url)
    try:
        assert catalog.dialect == "postgresql"
        catalog.create_dataset("events", schema_id="s", org_id=ORG)
        assert terminate(url) == 1  # a restart of the server, a broken network
        assert [d.name for d in catalog.datasets()] == ["events"]
        terminate(url)
        catalog.set_consent(ORG, "visitor", "out")
        assert catalog.consents_out() == {(ORG, "visitor")}
    finally:
        catalog.close()
        next(urls, None)


def test_a_reader_following_the_consent_log_misses_no_change_made_at_once_elsewhere(
    open_catalog: Callable[[], Catalog],
) -> None:
    """The edge's copy of consent follows `consent_changes`; changes numbered while others
    are written by other processes must never become visible out of their order."""
    reader, writers = open_catalog(), [open_catalog() for _ in range(3)]
    errors: list[BaseException] = []

    def write(n: int, catalog: Catalog) -> None:
        try:
            for i in range(30):
                catalog.set_consent(ORG, f"ecid-{n}-{i}", "out")
        except BaseException as error:  # collected and asserted below
            errors.append(error)

    threads = [threading.Thread(target=write, args=(n, c)) for n, c in enumerate(writers)]
    for thread in threads:
        thread.start()
    followed: set[str] = set()
    seq = 0
    while any(t.is_alive() for t in threads):
        changes = reader.consent_changes(seq)
        assert changes is not None
        followed |= {ecid for _, _, ecid, _ in changes}
        seq = changes[-1][0] if changes else seq
    for thread in threads:
        thread.join()
    assert errors == []
    assert followed | {ecid for _, _, ecid, _ in reader.consent_changes(seq) or []} == {
        ecid for _, ecid in reader.consents_out()
    }
    assert len(followed) > 0
