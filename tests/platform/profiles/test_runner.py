"""The profile runner: follows profile-enabled datasets, and no single row can stop it."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from deltalake import write_deltalake

from koppla.core.layout import Layout
from koppla.platform.catalog.demo import ensure_demo
from koppla.platform.catalog.store import Catalog
from koppla.platform.datasets.tables import dataset_arrow_schema, provision
from koppla.platform.profiles import stage
from koppla.platform.profiles.identity import Identity
from koppla.platform.profiles.lookup import ProfileLookup
from koppla.platform.profiles.runner import ProfileRunner
from koppla.platform.profiles.store import ProfileStore
from koppla.xdm.registry import builtin_registry

POISON = Identity("Email", "poison@example.com")


def _event(n: int, email: str) -> dict[str, Any]:
    return {
        "_id": f"e{n}",
        "eventType": "userAccount.login",
        "timestamp": datetime(2026, 12, 1, 10, n, tzinfo=UTC),
        "identityMap": [
            ("ECID", [{"id": f"{n:038d}", "primary": True}]),
            ("Email", [{"id": email}]),
        ],
    }


@pytest.fixture
def home(tmp_path: Path) -> Any:
    layout = Layout(tmp_path)
    catalog = Catalog(layout.catalog)
    stream = ensure_demo(catalog)
    dataset = catalog.dataset(stream.event_dataset_id)
    provision(layout, builtin_registry(), dataset)
    store = ProfileStore(f"sqlite:///{tmp_path / 'profiles.sqlite'}")
    yield layout, catalog, dataset, store
    store.close()
    catalog.close()


def _append(layout: Layout, dataset: Any, rows: list[dict[str, Any]]) -> None:
    schema = dataset_arrow_schema(builtin_registry().get(dataset.schema_id))
    write_deltalake(
        str(layout.dataset(dataset.id)), pa.Table.from_pylist(rows, schema=schema), mode="append"
    )


def test_rows_added_to_an_enabled_dataset_become_profiles_once(home: Any) -> None:
    layout, catalog, dataset, store = home
    runner = ProfileRunner(layout, catalog, builtin_registry(), store)
    _append(layout, dataset, [_event(1, "ann@example.com")])
    first = runner.step()
    _append(layout, dataset, [_event(2, "bob@example.com")])

    second = runner.step()
    idle = runner.step()

    assert (first.observations, second.observations, idle.observations) == (1, 1, 0)
    assert ProfileLookup(store).profile(Identity("Email", "bob@example.com")) is not None
    catalog.set_profile_enabled(dataset.id, False)
    _append(layout, dataset, [_event(3, "cy@example.com")])
    assert runner.step().observations == 0


def test_an_observation_the_stage_cannot_apply_is_skipped_and_the_rest_land(
    home: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    layout, catalog, dataset, store = home
    real_link = stage.link

    def fragile(region: Any, observed: Any, *args: Any) -> Any:
        if POISON in observed:
            raise RuntimeError("a bug this observation alone trips")
        return real_link(region, observed, *args)

    monkeypatch.setattr(stage, "link", fragile)
    runner = ProfileRunner(layout, catalog, builtin_registry(), store)
    _append(
        layout, dataset, [_event(1, "ann@example.com"), _event(2, POISON.id), _event(3, "bo@x.io")]
    )

    runner.step()

    lookup = ProfileLookup(store)
    assert lookup.profile(Identity("Email", "ann@example.com")) is not None
    assert lookup.profile(Identity("Email", "bo@x.io")) is not None
    assert lookup.profile(POISON) is None
    assert runner.skipped == 1
    assert store.cursors()[dataset.id] >= 1
    assert runner.step().observations == 0  # the chunk is done: the cursor moved past it


def test_when_the_store_itself_fails_nothing_is_skipped_and_the_failure_stops_the_pass(
    home: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    layout, catalog, dataset, store = home
    runner = ProfileRunner(layout, catalog, builtin_registry(), store)
    runner.step()  # the first pass (no rows yet) records its cursors
    _append(layout, dataset, [_event(1, "ann@example.com"), _event(2, "bo@x.io")])

    def broken(change: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(store, "write", broken)
    with pytest.raises(OSError):
        runner.step()

    assert runner.skipped == 0
    monkeypatch.undo()
    assert runner.step().observations == 2  # read again once the store works
