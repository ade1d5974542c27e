"""The catalog: rules on names and ids, and safe use from several threads at once."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from koppla.core.errors import Conflict, InvalidInput, NotFound
from koppla.platform.catalog.store import Catalog

ORG = "ABCDEFGHIJKLMNOPQRSTUVWX@AdobeOrg"


def test_rules_name_the_field(tmp_path: Path) -> None:
    catalog = Catalog(tmp_path / "c.sqlite")
    catalog.create_dataset("events", schema_id="s")
    with pytest.raises(Conflict):
        catalog.create_dataset("events", schema_id="s")
    with pytest.raises(InvalidInput, match="reserved"):
        catalog.create_dataset("quarantine", schema_id="s")
    with pytest.raises(InvalidInput) as bad_org:
        catalog.create_datastream(org_id="nope", event_dataset="events")
    assert bad_org.value.field == "orgId"
    with pytest.raises(NotFound):
        catalog.create_datastream(org_id=ORG, event_dataset="missing")
    catalog.create_dataset("profiles", schema_id="s")
    with pytest.raises(Conflict, match="must differ"):
        catalog.create_datastream(org_id=ORG, event_dataset="events", profile_dataset="events")
    with pytest.raises(InvalidInput, match="allowed origin"):
        catalog.create_datastream(
            org_id=ORG, event_dataset="events", allowed_origins=("shop.example",)
        )


def test_many_threads_write_through_one_catalog(tmp_path: Path) -> None:
    catalog = Catalog(tmp_path / "c.sqlite")
    stream = catalog.create_datastream(
        org_id=ORG, event_dataset=catalog.create_dataset("events", schema_id="s").name
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
