"""The tenant store: per organization and sandbox, checked inside the write, generation."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from koppla.core.errors import Conflict, InvalidInput, NotFound
from koppla.platform.schemas.models import Tenant
from koppla.platform.schemas.store import SchemaStore
from koppla.xdm.experience_event import SCHEMA_ID

ORG = "KOPPLADEMO00000000000000@AdobeOrg"
OTHER = "OTHERORG0000000000000000@AdobeOrg"
DEFINITION = {"properties": {"_kopplademo": {"properties": {"x": {"type": "string"}}}}}


def accept(before: Tenant, after: Tenant) -> None:
    """A check that lets everything through."""


def refuse(before: Tenant, after: Tenant) -> None:
    """A check that refuses everything."""
    raise InvalidInput("refused", field="x")


@pytest.fixture
def store(tmp_path: Path, schemas_url: str) -> Iterator[SchemaStore]:
    opened = SchemaStore(tmp_path / "schemas.sqlite", url=schemas_url)
    yield opened
    opened.close()


def make_group(store: SchemaStore, title: str = "Gift", org: str = ORG) -> Any:
    return store.create_field_group(
        org, "prod", title=title, description="", definition=DEFINITION, check=accept
    )


def test_ids_look_like_aep_and_every_key_form_finds_the_resource(store: SchemaStore) -> None:
    group = make_group(store)
    assert group.id.startswith("https://ns.adobe.com/kopplademo/mixins/")
    assert len(group.id.rsplit("/", 1)[1]) == 32
    assert group.alt_id == "_kopplademo.mixins." + group.id.rsplit("/", 1)[1]
    for key in (group.id, quote(group.id, safe=""), group.alt_id):
        assert store.field_group(key, ORG, "prod") == group
    schema = store.create_schema(
        ORG,
        "prod",
        title="Orders",
        description="d",
        base=SCHEMA_ID,
        field_groups=[group.alt_id],
        check=accept,
    )
    assert schema.id.startswith("https://ns.adobe.com/kopplademo/schemas/")
    assert schema.field_groups == (group.id,)
    assert store.schema(schema.alt_id, ORG, "prod") == schema


def test_another_organization_or_sandbox_sees_nothing(store: SchemaStore) -> None:
    group = make_group(store)
    for org, sandbox in ((OTHER, "prod"), (ORG, "dev")):
        with pytest.raises(NotFound):
            store.field_group(group.id, org, sandbox)
        with pytest.raises(InvalidInput, match="no field group"):
            store.create_schema(
                org,
                sandbox,
                title="Theirs",
                description="",
                base=SCHEMA_ID,
                field_groups=[group.id],
                check=accept,
            )
    assert store.tenant(OTHER, "prod").field_groups == {}


def test_every_change_bumps_the_generation_and_a_refused_one_stores_nothing(
    store: SchemaStore,
) -> None:
    start = store.generation()
    group = make_group(store)
    assert store.generation() == start + 1
    with pytest.raises(InvalidInput):
        store.update_field_group(
            group.id, ORG, "prod", check=refuse, change=lambda g: ("New", "", DEFINITION)
        )
    assert store.generation() == start + 1
    assert store.field_group(group.id, ORG, "prod") == group
    same = store.update_field_group(
        group.id, ORG, "prod", check=refuse, change=lambda g: (g.title, g.description, g.definition)
    )
    assert same == group and store.generation() == start + 1  # nothing changed: no check
    changed = store.update_field_group(
        group.id, ORG, "prod", check=accept, change=lambda g: ("New", "", DEFINITION)
    )
    assert (changed.title, changed.version) == ("New", 2)
    assert store.generation() == start + 2


def test_the_check_sees_before_and_after(store: SchemaStore) -> None:
    seen: list[tuple[int, int]] = []

    def count(before: Tenant, after: Tenant) -> None:
        seen.append((len(before.field_groups), len(after.field_groups)))

    store.create_field_group(
        ORG, "prod", title="A", description="", definition=DEFINITION, check=count
    )
    assert seen == [(0, 1)]


def test_titles_are_unique_and_a_used_field_group_cannot_be_deleted(store: SchemaStore) -> None:
    group = make_group(store)
    with pytest.raises(Conflict, match="title must be unique"):
        make_group(store)
    make_group(store, org=OTHER)  # another organization may use the title
    schema = store.create_schema(
        ORG,
        "prod",
        title="Orders",
        description="",
        base=SCHEMA_ID,
        field_groups=[group.id],
        check=accept,
    )
    with pytest.raises(Conflict, match="used by schema"):
        store.delete_field_group(group.id, ORG, "prod")
    store.update_schema(
        schema.id, ORG, "prod", check=accept, change=lambda s: (s.title, s.description, [])
    )
    store.delete_field_group(group.id, ORG, "prod")
    with pytest.raises(NotFound):
        store.field_group(group.id, ORG, "prod")


def test_a_second_connection_reads_what_the_first_wrote(tmp_path: Path, schemas_url: str) -> None:
    first = SchemaStore(tmp_path / "s.sqlite", url=schemas_url)
    second = SchemaStore(tmp_path / "s.sqlite", url=schemas_url)
    try:
        group = make_group(first)
        generation, groups, schemas = second.snapshot()
        assert generation == first.generation() and groups == {group.id: group}
        assert schemas == {}
    finally:
        first.close()
        second.close()


def test_definitions_are_kept_up_to_a_size_and_limits_count_every_sandbox(
    store: SchemaStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    from koppla.platform.schemas import store as stored

    padded = {**DEFINITION, "definitions": {"pad": {"description": "x" * 70_000}}}
    with pytest.raises(InvalidInput, match="at most 65536"):
        store.create_field_group(
            ORG, "prod", title="Big", description="", definition=padded, check=accept
        )
    group = make_group(store)
    with pytest.raises(InvalidInput, match="at most 65536"):
        store.update_field_group(
            group.id, ORG, "prod", change=lambda g: (g.title, "", padded), check=accept
        )
    monkeypatch.setattr(stored, "MAX_FIELD_GROUPS", 2)
    store.create_field_group(
        ORG, "x1", title="Other", description="", definition=DEFINITION, check=accept
    )
    with pytest.raises(Conflict, match="at most 2"):
        store.create_field_group(
            ORG, "x2", title="Third", description="", definition=DEFINITION, check=accept
        )


def test_changes_since_a_generation_are_only_what_changed_after_it(store: SchemaStore) -> None:
    first = make_group(store, "First")
    second = make_group(store, "Second")
    seen = store.generation()
    store.update_field_group(
        first.id, ORG, "prod", change=lambda g: ("First, renamed", "", g.definition), check=accept
    )
    store.delete_field_group(second.id, ORG, "prod")
    third = make_group(store, "Third")
    changes = store.changes_since(seen)
    assert set(changes.field_groups) == {first.id, third.id}
    assert changes.field_groups[first.id].title == "First, renamed"
    assert changes.removed == {second.id}
    assert changes.generation == store.generation()
    everything = store.changes_since(-1)
    assert set(everything.field_groups) == {first.id, third.id}


def test_processes_writing_at_once_keep_titles_unique_and_readers_miss_nothing(
    tmp_path: Path, schemas_url: str
) -> None:
    """Three writer processes and a reader that follows `changes_since`: two field groups of
    one title never both get in (the check sees exactly what is stored), and the reader,
    reading while they write, ends up with every field group stored."""
    stores = [SchemaStore(tmp_path / "s.sqlite", url=schemas_url) for _ in range(4)]
    reader, writers = stores[0], stores[1:]
    start = threading.Barrier(len(writers))
    made: list[str] = []
    refused: list[str] = []
    errors: list[BaseException] = []

    def write(store: SchemaStore) -> None:
        try:
            start.wait()
            for n in range(8):
                try:
                    made.append(make_group(store, f"Group {n}").id)
                except Conflict:
                    refused.append(f"Group {n}")
        except BaseException as error:  # collected and asserted below
            errors.append(error)

    threads = [threading.Thread(target=write, args=(s,)) for s in writers]
    for thread in threads:
        thread.start()
    seen: set[str] = set()
    generation = -1
    while any(t.is_alive() for t in threads):
        changes = reader.changes_since(generation)
        seen |= set(changes.field_groups)
        generation = changes.generation
    for thread in threads:
        thread.join()
    seen |= set(reader.changes_since(generation).field_groups)
    for store in stores:
        store.close()
    assert errors == []
    assert len(made) == 8 and len(refused) == 16  # each title stored once, by one writer
    assert seen == set(made)
